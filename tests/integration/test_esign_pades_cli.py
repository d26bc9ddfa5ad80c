"""`platforma esign verify FILE --trust PEM` on signed PDFs: the same JSON and exit codes (0, 1, 2) as for
XAdES, run as a person runs it, in a separate process."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.integration.test_esign_cli import run
from tests.unit.test_esign_pades import add_page, make_pdf, sign_pdf, update
from tests.unit.test_esign_pki import PESEL, make_pki, pem


@pytest.fixture(scope="module")
def pki():
    return make_pki("rsa")


@pytest.fixture
def files(tmp_path, pki):
    letter = make_pdf()
    signed = sign_pdf(letter, pki, signing_time=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    paths = {name: tmp_path / f"{name}.pdf" for name in ("valid", "changed", "unsigned", "truncated")}
    paths["valid"].write_bytes(signed)
    paths["changed"].write_bytes(update(signed, add_page))
    paths["unsigned"].write_bytes(letter)
    paths["truncated"].write_bytes(signed[: len(signed) // 2])
    paths["trust"] = tmp_path / "zaufani.pem"
    paths["trust"].write_bytes(pem(pki.root.cert))
    return paths


def test_a_valid_signed_pdf_exits_0_with_the_signer(files):
    result = run(str(files["valid"]), "--trust", str(files["trust"]))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"valid", "signer", "signed_at", "format", "errors", "warnings"}
    assert report["valid"] is True and report["format"] == "PAdES-B-B" and report["errors"] == []
    assert report["signer"]["name"] == "Jan Kowalski" and report["signer"]["pesel"] == PESEL
    assert report["signed_at"].endswith("Z")
    assert "unieważniony" in result.stdout  # Polish letters printed as such (ensure_ascii=False)
    assert result.stderr == ""  # nothing from pyHanko's log or warnings


def test_a_pdf_changed_after_signing_exits_1_with_the_reason(files):
    result = run(str(files["changed"]), "--trust", str(files["trust"]))
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"] == [
        "dokument zmieniono po złożeniu podpisu (dodano lub usunięto strony); po podpisaniu można dodać tylko kolejne "
        "podpisy, znaczniki czasu i dane do weryfikacji"]
    assert "Traceback" not in result.stderr


def test_an_untrusted_signer_exits_1(files, tmp_path):
    other = tmp_path / "inni.pem"
    other.write_bytes(pem(make_pki("ec").root.cert))
    result = run(str(files["valid"]), "--trust", str(other))
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"][0].startswith("certyfikat nie pochodzi od zaufanego wystawcy")


@pytest.mark.parametrize("name, message", [
    ("unsigned", "dokument PDF nie zawiera podpisu elektronicznego"),
    ("truncated", "dokument PDF jest niekompletny"),
])
def test_an_unreadable_pdf_exits_2_with_a_polish_message_and_no_traceback(files, name, message):
    result = run(str(files[name]), "--trust", str(files["trust"]))
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False and message in report["errors"][0]
    assert result.stderr.startswith("Błąd: ") and "Traceback" not in result.stderr
