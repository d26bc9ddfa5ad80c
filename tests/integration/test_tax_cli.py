"""`platforma taxes interest` and `platforma taxes schedule` against a real instance on both databases."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from platforma.instance import render_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(runtime, database_url, tmp_path):
    """Runs the command against the test database (migrated, so the rates are seeded)."""
    config = tmp_path / "gmina.toml"
    config.write_text(render_config().replace('url = "sqlite:///platforma.sqlite3"', f'url = "{database_url}"'), encoding="utf-8")

    def invoke(*args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMA")}
        env["PLATFORMA_CONFIG"] = str(config)
        return subprocess.run([sys.executable, "-m", "platforma.cli", "taxes", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    return invoke


def test_interest_prints_the_documented_json(run):
    result = run("interest", "--amount", "1000.00", "--due", "2024-03-15", "--paid", "2024-04-15")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        '{"effective_due": "2024-03-15", "days": 31, "periods": [{"from": "2024-03-16", "to": "2024-04-15", '
        '"days": 31, "rate": "14.50", "interest": "12.3151"}], "unrounded": "12.3151", "interest": "12", "charged": true}'
    )


def test_interest_shifts_the_due_date_and_applies_the_threshold(run):
    # 15 March 2025 was a Saturday: interest runs from the day after Monday 17 March
    shifted = json.loads(run("interest", "--amount", "1234.56", "--due", "2025-03-15", "--paid", "2025-11-30").stdout)
    assert shifted["effective_due"] == "2025-03-17" and shifted["days"] == 258
    assert shifted["unrounded"] == "114.1714" and shifted["interest"] == "114"
    small = json.loads(run("interest", "--amount", "500", "--due", "2024-05-15", "--paid", "2024-05-20").stdout)
    assert small["unrounded"] == "0.9932" and small["interest"] == "0" and small["charged"] is False
    reduced = json.loads(run("interest", "--amount", "1000.00", "--due", "2024-03-15", "--paid", "2024-04-15", "--rate", "reduced").stdout)
    assert reduced["periods"][0]["rate"] == "7.25" and reduced["unrounded"] == "6.1575" and reduced["charged"] is False


def test_schedule_prints_whole_zloty_summing_to_the_tax(run):
    result = run("schedule", "--tax", "nieruchomosci", "--payer", "natural", "--amount", "1234", "--year", "2025")
    assert json.loads(result.stdout) == {"installments": [
        {"due": "2025-03-17", "amount": "309"}, {"due": "2025-05-15", "amount": "309"},
        {"due": "2025-09-15", "amount": "309"}, {"due": "2025-11-17", "amount": "307"}]}
    late = json.loads(run("schedule", "--tax", "nieruchomosci", "--payer", "natural", "--amount", "1234", "--year", "2025",
                          "--delivered", "2025-03-10").stdout)
    assert late["installments"][0] == {"due": "2025-03-24", "amount": "309"}
    june = json.loads(run("schedule", "--tax", "laczne", "--payer", "natural", "--amount", "700", "--year", "2025",
                          "--from", "2025-06-01", "--delivered", "2025-06-20").stdout)
    assert [i["amount"] for i in june["installments"]] == ["100", "300", "300"]


@pytest.mark.parametrize("args, message", [
    (("interest", "--amount", "12,5x", "--due", "2024-03-15", "--paid", "2024-04-15"), "błędna wartość opcji '--amount': kwota musi być liczbą"),
    (("interest", "--amount", "100", "--due", "15.03.2024", "--paid", "2024-04-15"), "data musi mieć postać RRRR-MM-DD"),
    (("interest", "--amount", "100.001", "--due", "2024-03-15", "--paid", "2024-04-15"), "z dokładnością do grosza"),
    (("schedule", "--tax", "laczne", "--payer", "legal", "--amount", "500", "--year", "2025"), "natural persons only"),
    (("schedule", "--tax", "rolny", "--payer", "natural", "--amount", "12.50", "--year", "2025"), "whole number of złoty"),
    (("interest", "--amount", "100", "--due", "2010-03-15", "--paid", "2010-04-15"), "brak stopy odsetek"),
])
def test_bad_input_gets_a_clear_message_and_no_traceback(run, args, message):
    result = run(*args)
    assert result.returncode in (1, 2)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
