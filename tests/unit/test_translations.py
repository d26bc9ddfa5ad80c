"""The English catalogue covers every Polish message, matches its compiled .mo, keeps placeholders.

Polish is the source language (msgid = Polish). When a test here fails, run
scripts/update_translations.sh, translate what it reports and commit the .po and the .mo.
"""
from __future__ import annotations

import io
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "platforma" / "translations"
PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.mo"
FIX = "run scripts/update_translations.sh, translate, and commit messages.po and messages.mo"

# printf-style named placeholders: %(name)s, %(n)d, %(amount).2f ...
PLACEHOLDER = re.compile(r"%\([^)]*\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]")


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale="en")


def _strings(message) -> tuple[str, ...]:
    value = message.string
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _ids(message) -> tuple[str, ...]:
    value = message.id
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _show(message) -> str:
    text = _ids(message)[0]
    where = ", ".join(f"{path}:{line}" for path, line in message.locations[:2])
    return f"  {text!r}" + (f"  ({where})" if where else "")


@pytest.fixture(scope="module")
def english() -> Catalog:
    return _read_po(PO)


@pytest.fixture(scope="module")
def fresh_extraction(tmp_path_factory) -> Catalog:
    """The messages in the code right now, extracted exactly as scripts/update_translations.sh does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    result = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract",
         "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "platforma"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"pybabel extract failed:\n{result.stderr[-3000:]}"
    catalog = _read_po(pot)
    assert len([m for m in catalog if m.id]) > 0, "extraction found no messages: is babel.cfg right?"
    return catalog


def test_every_extracted_message_has_an_english_translation(fresh_extraction: Catalog, english: Catalog) -> None:
    missing = []
    for message in fresh_extraction:
        if not message.id:
            continue
        translated = english.get(message.id, context=message.context)
        if translated is None or translated.fuzzy or not all(s and s.strip() for s in _strings(translated)):
            missing.append(message)
    assert not missing, (
        f"{len(missing)} message(s) without an English translation (missing, empty or fuzzy) in "
        f"{PO.relative_to(ROOT)}; {FIX}:\n" + "\n".join(_show(m) for m in missing)
    )


def test_catalogue_has_no_fuzzy_entries(english: Catalog) -> None:
    fuzzy = [m for m in english if m.id and m.fuzzy]
    assert not fuzzy, "fuzzy entries are not compiled into the .mo; review them:\n" + "\n".join(_show(m) for m in fuzzy)


def test_compiled_mo_matches_the_po(english: Catalog) -> None:
    assert MO.exists(), f"{MO.relative_to(ROOT)} is missing; {FIX}"

    def translations(catalog: Catalog) -> dict:
        return {(m.id, m.context): m.string for m in catalog if m.id}

    compiled = io.BytesIO()
    write_mo(compiled, english)
    compiled.seek(0)
    expected = translations(read_mo(compiled))
    with MO.open("rb") as f:
        committed = translations(read_mo(f))

    stale = sorted(
        (str(key[0]) for key in expected.keys() | committed.keys() if expected.get(key) != committed.get(key)),
    )
    assert not stale, (
        f"{MO.relative_to(ROOT)} is out of date with messages.po ({len(stale)} difference(s)); "
        "run: pybabel compile -d platforma/translations -D messages\n" + "\n".join(f"  {s!r}" for s in stale[:50])
    )


def test_placeholders_are_kept_in_translations(english: Catalog) -> None:
    wrong = []
    for message in english:
        if not message.id:
            continue
        wanted = Counter(p for text in _ids(message) for p in PLACEHOLDER.findall(text))
        for text in _strings(message):
            if not text:
                continue
            found = Counter(PLACEHOLDER.findall(text))
            # a plural form may drop the count, but never add or rename a placeholder
            ok = found == wanted or (isinstance(message.id, (list, tuple)) and set(found) <= set(wanted))
            if not ok:
                wrong.append(f"  {_ids(message)[0]!r}\n    -> {text!r}\n    expected {sorted(wanted.elements())}, found {sorted(found.elements())}")
    assert not wrong, "placeholders differ between msgid and msgstr:\n" + "\n".join(wrong)
