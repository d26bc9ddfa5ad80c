"""`platforma esign verify FILE [--trust PEM]`: the JSON it prints and its exit codes (0, 1, 2), run as a
person runs it, in a separate process."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from platforma.instance import render_config
from tests.unit.test_esign_pki import LETTER, PESEL, make_pki, pem, sign

ROOT = Path(__file__).resolve().parents[2]
BOMB = b'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaa"><!ENTITY c "&a;&a;&a;">]><b>&c;</b>'


@pytest.fixture(scope="module")
def pki():
    return make_pki("rsa")


@pytest.fixture
def files(tmp_path, pki):
    signed_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    paths = {
        "valid": tmp_path / "pismo.xml",
        "changed": tmp_path / "pismo-zmienione.xml",
        "bomb": tmp_path / "bomba.xml",
        "trust": tmp_path / "zaufani.pem",
    }
    signed = sign(LETTER, pki, signing_time=signed_at)
    paths["valid"].write_bytes(signed)
    paths["changed"].write_bytes(signed.replace("niezaleganiu".encode(), "zaleganiu".encode()))
    paths["bomb"].write_bytes(BOMB)
    paths["trust"].write_bytes(pem(pki.root.cert))
    return paths


def run(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMA")}
    if config is not None:
        env["PLATFORMA_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "platforma.cli", "esign", "verify", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_valid_letter_exits_0_with_the_signer(files):
    result = run(str(files["valid"]), "--trust", str(files["trust"]))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"valid", "signer", "signed_at", "format", "errors", "warnings"}
    assert report["valid"] is True and report["format"] == "XAdES-BES" and report["errors"] == []
    assert report["signer"]["name"] == "Jan Kowalski" and report["signer"]["pesel"] == PESEL
    assert report["signed_at"].endswith("Z")
    assert "został" in result.stdout  # Polish letters printed as such (ensure_ascii=False)


def test_a_changed_letter_exits_1_with_the_reason(files):
    result = run(str(files["changed"]), "--trust", str(files["trust"]))
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"] == ["zmieniono treść podpisanego dokumentu"]


def test_an_untrusted_signer_exits_1(files, tmp_path):
    other = tmp_path / "inni.pem"
    other.write_bytes(pem(make_pki("ec").root.cert))
    result = run(str(files["valid"]), "--trust", str(other))
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"][0].startswith("certyfikat nie pochodzi od zaufanego wystawcy")


@pytest.mark.parametrize("name, message", [
    ("bomb", "DOCTYPE lub ENTITY"),
    ("missing", "nie można odczytać pliku"),
])
def test_an_unreadable_file_exits_2_with_a_polish_message_and_no_traceback(files, tmp_path, name, message):
    path = files.get(name, tmp_path / "brak.xml")
    result = run(str(path), "--trust", str(files["trust"]))
    assert result.returncode == 2
    assert message in json.loads(result.stdout)["errors"][0]
    assert result.stderr.startswith("Błąd: ") and "Traceback" not in result.stderr


def test_trust_anchors_come_from_the_configuration_by_default(files, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "zaufani.pem").write_bytes(files["trust"].read_bytes())
    config = instance / "gmina.toml"
    config.write_text(render_config().replace('trust_anchors = ""', 'trust_anchors = "zaufani.pem"'), encoding="utf-8")
    assert run(str(files["valid"]), config=config).returncode == 0
    config.write_text(render_config(), encoding="utf-8")
    unconfigured = run(str(files["valid"]), config=config)
    assert unconfigured.returncode == 1
    assert "nie skonfigurowano zaufanych wystawców" in json.loads(unconfigured.stdout)["errors"][0]


def test_a_broken_trust_bundle_exits_2(files, tmp_path):
    broken = tmp_path / "zly.pem"
    broken.write_text("to nie jest PEM")
    result = run(str(files["valid"]), "--trust", str(broken))
    assert result.returncode == 2 and "nie zawiera certyfikatów" in result.stderr and "Traceback" not in result.stderr
