"""Configuration: defaults < file < environment; a bad value names its key in Polish."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from platforma.config import ConfigError, contrast_ratio, load_settings
from platforma.instance import render_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gmina.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_generated_config_is_valid_and_commented(tmp_path):
    text = render_config({"demo": "true"})
    assert text.count("\n#") > 10
    settings = load_settings(write(tmp_path, text), environ={})
    assert settings.gmina.name == "Gmina Przykładowo"
    assert settings.demo is True
    assert settings.gmina.bank_accounts[0].nrb == "49909000042001000000001234"
    # relative SQLite paths live in the instance directory
    assert settings.database_url == f"sqlite:///{(tmp_path / 'platforma.sqlite3').resolve()}"


def test_each_init_gets_its_own_secret():
    assert render_config().split('secret_key = "')[1][:40] != render_config().split('secret_key = "')[1][:40]


def test_environment_overrides_file(tmp_path):
    path = write(tmp_path, render_config())
    settings = load_settings(
        path,
        environ={
            "PLATFORMA__DATABASE__URL": "postgresql://u@db/platforma",
            "PLATFORMA__SECURITY__LOCKOUT_MINUTES": "30",
            "PLATFORMA__GMINA__COLOURS__BRAND": "#00303f",
        },
    )
    assert settings.database_url == "postgresql://u@db/platforma"
    assert settings.security.lockout_minutes == 30
    assert settings.gmina.colours.brand == "#00303f"


def test_missing_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "brak.toml", environ={})
    assert "platforma init" in str(info.value)


@pytest.mark.parametrize(
    "old, new, key, words",
    [
        ('nip = "7794242429"', 'nip = "7794242420"', "gmina.nip", "cyfrę kontrolną"),
        ('regon = "724242429"', 'regon = "724242420"', "gmina.regon", "REGON"),
        ('nrb = "49909000042001000000001234"', 'nrb = "48909000042001000000001234"', "gmina.bank_accounts.0.nrb", "NRB"),
        ('teryt = "3021052"', 'teryt = "302105"', "gmina.teryt", "TERYT"),
        ('brand_text = "#ffffff"', 'brand_text = "#3060a0"', "gmina.colours", "kontrast"),
        ('postal_code = "62-100"', 'postal_code = "62100"', "gmina.address.postal_code", "00-000"),
        ('port = 25', 'port = "dwadzieścia"', "mail.port", "liczba całkowita"),
        ('backend = "immediate"', 'backend = "celery"', "jobs.backend", "dozwolone wartości"),
        ('url = "sqlite:///platforma.sqlite3"', 'url = "mysql://x"', "database.url", "PostgreSQL"),
        ("[security]", "[security]\nlokout_minutes = 3", "security.lokout_minutes", "nieznany klucz"),
    ],
)
def test_bad_values_name_their_key(tmp_path, old, new, key, words):
    text = render_config()
    assert old in text
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text.replace(old, new, 1)), environ={})
    message = str(info.value)
    assert key in message and words in message, message


def test_short_secret_is_refused(tmp_path):
    text = render_config()
    start = text.index('secret_key = "')
    end = text.index('"', start + 14)
    with pytest.raises(ConfigError, match="server.secret_key: klucz musi mieć co najmniej 32 znaki"):
        load_settings(write(tmp_path, text[:start] + 'secret_key = "krótki' + text[end:]), environ={})


def test_toml_syntax_error(tmp_path):
    with pytest.raises(ConfigError, match="błąd składni TOML"):
        load_settings(write(tmp_path, "[gmina\nname = 1"), environ={})


def test_contrast_ratio_matches_wcag_examples():
    assert round(contrast_ratio("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast_ratio("#777777", "#ffffff"), 2) == 4.48  # the classic "just fails AA" grey


def test_command_with_broken_config_prints_polish_message_without_traceback(tmp_path):
    path = write(tmp_path, render_config().replace('nip = "7794242429"', 'nip = "123"'))
    result = subprocess.run(
        [sys.executable, "-m", "platforma.cli", "db", "current"],
        env={"PLATFORMA_CONFIG": str(path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 2
    assert "gmina.nip: NIP ma nieprawidłową długość" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
