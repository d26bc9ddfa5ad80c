"""`platforma esign seal FILE [--out FILE]` on an instance made by `platforma init`: the development seal
works out of the box, `platforma esign verify` accepts the sealed receipt and refuses a changed one, and a
broken seal configuration is refused in Polish. Run as an administrator runs it, in separate processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from platforma.esign.seal import create_development_seal
from tests.unit.test_esign_seal import GMINA_NIP, receipt

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMA")}
    if config is not None:
        env["PLATFORMA_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "platforma.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          timeout=300)


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("gmina") / "inst"
    result = run("init", "--instance", str(directory))
    assert result.returncode == 0, result.stderr.decode()
    return directory / "gmina.toml"


def test_init_configures_a_development_seal(instance):
    text = instance.read_text(encoding="utf-8")
    assert 'seal_key = "seal-key.pem"' in text and 'seal_certificate = "seal-cert.pem"' in text
    assert "DEWELOPERSKĄ" in text and "kwalifikowaną pieczęcią" in text
    assert oct((instance.parent / "seal-key.pem").stat().st_mode & 0o777) == "0o600"


def test_a_receipt_sealed_on_a_fresh_instance_verifies_and_a_changed_one_does_not(instance, tmp_path):
    source, sealed, changed = tmp_path / "upo.xml", tmp_path / "upo-opieczetowane.xml", tmp_path / "upo-zmienione.xml"
    source.write_bytes(receipt())
    result = run("esign", "seal", str(source), "--out", str(sealed), config=instance)
    assert result.returncode == 0, result.stderr.decode()
    assert "Opieczętowano" in result.stderr.decode()

    verified = run("esign", "verify", str(sealed), config=instance)
    assert verified.returncode == 0, verified.stdout.decode()
    report = json.loads(verified.stdout)
    assert report["valid"] is True and report["format"] == "XAdES-BES" and report["errors"] == []
    assert report["signer"]["nip"] == GMINA_NIP and report["signer"]["name"] == "Urząd Gminy Przykładowo"
    assert report["signer"]["organization"] == "Gmina Przykładowo"

    changed.write_bytes(sealed.read_bytes().replace(b"KP.0152.17.2026", b"KP.0152.99.2026"))
    refused = run("esign", "verify", str(changed), config=instance)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["errors"] == ["zmieniono treść podpisanego dokumentu"]


def test_sealing_to_standard_output(instance, tmp_path):
    source = tmp_path / "upo.xml"
    source.write_bytes(receipt())
    result = run("esign", "seal", str(source), config=instance)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.startswith(b"<?xml") and b"SigningCertificateV2" in result.stdout
    (tmp_path / "out.xml").write_bytes(result.stdout)
    assert run("esign", "verify", str(tmp_path / "out.xml"), config=instance).returncode == 0


def test_a_receipt_of_another_instance_is_not_trusted(instance, tmp_path):
    other = tmp_path / "inna"
    assert run("init", "--instance", str(other)).returncode == 0
    source, sealed = tmp_path / "upo.xml", tmp_path / "upo-inna.xml"
    source.write_bytes(receipt())
    assert run("esign", "seal", str(source), "--out", str(sealed), config=other / "gmina.toml").returncode == 0
    result = run("esign", "verify", str(sealed), config=instance)
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"][0].startswith("certyfikat nie pochodzi od zaufanego wystawcy")


def test_unreadable_input_exits_2_in_polish(instance, tmp_path):
    (tmp_path / "bomba.xml").write_bytes(b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>')
    for path, words in ((tmp_path / "bomba.xml", "DOCTYPE"), (tmp_path / "brak.xml", "nie można odczytać pliku")):
        result = run("esign", "seal", str(path), config=instance)
        stderr = result.stderr.decode()
        assert result.returncode == 2 and stderr.startswith("Błąd: ") and words in stderr, stderr
        assert "Traceback" not in stderr and result.stdout == b""


def test_a_wrong_key_certificate_pair_is_refused_with_a_polish_message(instance, tmp_path):
    _, other_cert = create_development_seal(tmp_path, office_name="Urząd Gminy Inne", gmina_name="Gmina Inne")
    config = tmp_path / "gmina.toml"
    config.write_text(instance.read_text(encoding="utf-8").replace(
        'seal_key = "seal-key.pem"', f'seal_key = "{instance.parent / "seal-key.pem"}"').replace(
        'seal_certificate = "seal-cert.pem"', f'seal_certificate = "{other_cert}"'), encoding="utf-8")
    (tmp_path / "upo.xml").write_bytes(receipt())
    result = run("esign", "seal", str(tmp_path / "upo.xml"), config=config)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "esign.seal_key:" in stderr and "nie pasuje do certyfikatu pieczęci" in stderr
    assert "Traceback" not in stderr


def test_a_missing_seal_file_is_refused_with_a_polish_message(instance, tmp_path):
    config = tmp_path / "gmina.toml"
    config.write_text(instance.read_text(encoding="utf-8").replace(
        'seal_key = "seal-key.pem"', 'seal_key = "brak-klucza.pem"'), encoding="utf-8")
    result = run("esign", "verify", str(tmp_path / "cokolwiek.xml"), config=config)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "esign.seal_key: nie ma pliku klucza pieczęci" in stderr, stderr
    assert "Traceback" not in stderr


def test_sealing_without_a_configured_seal_says_what_to_set(instance, tmp_path):
    config = tmp_path / "gmina.toml"
    config.write_text(instance.read_text(encoding="utf-8").replace('seal_key = "seal-key.pem"', 'seal_key = ""')
                      .replace('seal_certificate = "seal-cert.pem"', 'seal_certificate = ""'), encoding="utf-8")
    (tmp_path / "upo.xml").write_bytes(receipt())
    result = run("esign", "seal", str(tmp_path / "upo.xml"), config=config)
    assert result.returncode == 2 and "nie skonfigurowano pieczęci urzędu" in result.stderr.decode()
