"""The `platforma` command: init, db, demo, users, plugins."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from platforma.accounts.models import TaxpayerAccess, User
from platforma.config import load_settings
from platforma.core.db import make_engine
from platforma.core.migrate import current_revision, head_revision
from platforma.taxes.models import Taxpayer
from platforma.taxes.identifiers import validate_nip, validate_pesel

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, config: Path | None = None, input: str | None = None, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMA")}
    if config is not None:
        env["PLATFORMA_CONFIG"] = str(config)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "platforma.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, input=input, timeout=600)


@pytest.fixture
def instance(tmp_path) -> Path:
    result = run("init", "--instance", str(tmp_path / "inst"), "--demo")
    assert result.returncode == 0, result.stderr
    return tmp_path / "inst" / "gmina.toml"


def test_init_creates_a_migrated_instance_and_refuses_to_overwrite(instance):
    settings = load_settings(instance, environ={})
    engine = make_engine(settings.database_url)
    assert current_revision(engine) == head_revision()
    assert oct(instance.stat().st_mode & 0o777) == "0o600"
    again = run("init", "--instance", str(instance.parent))
    assert again.returncode == 1 and "instancja już istnieje" in again.stderr
    assert run("db", "current", config=instance).returncode == 0
    assert "->" in run("db", "upgrade", config=instance).stdout


def test_demo_load_is_idempotent_and_valid(instance):
    first = run("demo", "load", config=instance)
    assert first.returncode == 0 and "nowi podatnicy 360" in first.stdout
    second = run("demo", "load", config=instance)
    assert "nowi podatnicy 0, nowe konta 0, nowe powiązania 0" in second.stdout
    engine = make_engine(load_settings(instance, environ={}).database_url)
    with engine.connect() as conn:
        people = conn.execute(sa.select(Taxpayer.pesel).where(Taxpayer.kind == "natural")).scalars().all()
        firms = conn.execute(sa.select(Taxpayer.nip).where(Taxpayer.kind == "legal")).scalars().all()
        roles = conn.execute(sa.select(User.role)).scalars().all()
        links = conn.execute(sa.select(sa.func.count()).select_from(TaxpayerAccess)).scalar_one()
    assert len(people) == 320 and all(validate_pesel(p) for p in people)
    assert len(firms) == 40 and all(validate_nip(n) for n in firms)
    assert sorted(roles) == ["admin", "clerk", "resident"] and links == 3
    logins = run("demo", "logins", config=instance).stdout
    assert "jan.kowalski@example.com" in logins and "klucz TOTP" in logins
    # e-pisma: the office's catalogues and one letter of Jan Kowalski, filed, sealed and answered
    assert "e-pisma 12" in first.stdout and "e-pisma 0" in second.stdout
    with engine.connect() as conn:
        letters = conn.execute(sa.text("SELECT status, registration_number, receipt_issued_at FROM letter")).all()
    assert [(status, number) for status, number, _ in letters] == [("answered", f"KO.1.{letters[0][1][-4:]}")]
    assert letters[0][2] is not None


def test_demo_sign_signs_a_letter_the_demo_instance_trusts(instance, tmp_path):
    """The demo signer's XML and PDF signatures verify against the demo instance's trust anchors."""
    from platforma.esign import load_trust_anchors, verify_document, verify_pdf

    document = tmp_path / "pismo.xml"
    document.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?><pismo><tresc>Wniosek</tresc></pismo>')
    result = run("demo", "sign", str(document), config=instance)
    assert result.returncode == 0, result.stderr
    signed = Path(result.stdout.strip())
    anchors = load_trust_anchors(instance.parent / "demo-ca.pem")
    report = verify_document(signed.read_bytes(), trust_anchors=anchors)
    assert report.valid and report.signer.name == "Jan Kowalski" and report.signer.pesel
    from tests.unit.test_esign_pades import make_pdf

    pdf = tmp_path / "pismo.pdf"
    pdf.write_bytes(make_pdf("Wniosek"))
    result = run("demo", "sign", str(pdf), "--out", str(tmp_path / "p.pdf"), config=instance)
    assert result.returncode == 0, result.stderr
    assert verify_pdf((tmp_path / "p.pdf").read_bytes(), trust_anchors=anchors).valid
    outside = tmp_path / "prod"
    assert run("init", "--instance", str(outside)).returncode == 0
    refused = run("demo", "sign", str(document), config=outside / "gmina.toml")
    assert refused.returncode == 1 and "nie jest instancja demonstracyjna" in refused.stderr


def test_demo_data_is_refused_outside_a_demo_instance(tmp_path):
    assert run("init", "--instance", str(tmp_path / "prod")).returncode == 0
    result = run("demo", "load", config=tmp_path / "prod" / "gmina.toml")
    assert result.returncode == 1 and "to nie jest instancja demonstracyjna" in result.stderr


def test_users_create_and_plugins(instance):
    result = run("users", "create", "--email", "wojt@example.com", "--name", "Wójt Gminy", "--role", "admin",
                 "--password", "Bardzo-Tajne-Haslo-1", config=instance)
    assert result.returncode == 0, result.stderr
    weak = run("users", "create", "--email", "x@example.com", "--name", "X", "--password", "krotkie", config=instance)
    assert weak.returncode == 1 and "co najmniej 12 znaków" in weak.stderr
    duplicate = run("users", "create", "--email", "wojt@example.com", "--name", "X", "--password", "Bardzo-Tajne-Haslo-1", config=instance)
    assert duplicate.returncode == 1 and "już istnieje" in duplicate.stderr
    assert "local" in run("plugins", "list", config=instance).stdout
    check = run("plugins", "check", config=instance)
    assert check.returncode == 0 and "OK  local" in check.stdout


def test_unknown_plugin_stops_start_up_with_a_clear_message(instance):
    text = re.sub(r"(?m)^enabled = \[.*\]$", 'enabled = ["przelewy24-nie-ma"]', instance.read_text(encoding="utf-8"))
    instance.write_text(text, encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", "from platforma.wsgi import app"], cwd=ROOT, capture_output=True, text=True,
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("PLATFORMA")}, "PLATFORMA_CONFIG": str(instance)})
    assert result.returncode != 0 and "nie ma wtyczki o identyfikatorze 'przelewy24-nie-ma'" in result.stderr
    check = run("plugins", "check", config=instance)
    assert check.returncode == 1 and "BŁĄD przelewy24-nie-ma" in check.stdout


def test_migrations_run_on_postgresql_through_the_command(pg_database, tmp_path):
    """`platforma db upgrade` against PostgreSQL (the production set-up) reaches head and is repeatable."""
    assert run("init", "--instance", str(tmp_path / "pg")).returncode == 0
    config = tmp_path / "pg" / "gmina.toml"
    result = run("db", "upgrade", config=config, extra_env={"PLATFORMA__DATABASE__URL": pg_database})
    assert result.returncode == 0, result.stderr
    result = run("db", "current", config=config, extra_env={"PLATFORMA__DATABASE__URL": pg_database})
    assert result.returncode == 0 and head_revision() in result.stdout
