"""The payments benchmarks' tooling works and checks what it claims: a tiny run of each (nothing is timed).

A small gmina is generated into a PostgreSQL database of its own; `bench.notification_storm` then
confirms 20 payments through the Przelewy24 simulator (each notification twice) and must find none
lost and none posted twice; `bench.reconciliation` imports statements of 100 and 200 entries in a
transaction it rolls back, and the gmina must be exactly as it was afterwards.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from platforma.core.db import make_engine, normalise_url

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "PLATFORMA_TEST_DATABASE_URL"


@pytest.fixture(scope="module")
def gmina() -> Iterator[str]:
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    name = f"platforma_bench_pay_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    try:
        done = subprocess.run([sys.executable, "-m", "bench.generate", "--taxpayers", "300", "--years", "2026",
                               "--database", url, "--results", ""],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {table: conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()
                    for table in ("posting", "bank_statement", "statement_line", "payment", "taxpayer")}
    finally:
        engine.dispose()


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, check=False)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="the storm needs wrk (apt-get install wrk)")
def test_the_storm_confirms_every_payment_once(gmina, tmp_path):
    before = _counts(gmina)
    results = tmp_path / "storm.json"
    done = _run("bench.notification_storm", "--database", gmina, "--payments", "20", "--warmup-payments", "4",
                "--baseline-runs", "1", "--workers", "2", "--threads", "4", "--results", str(results))
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads(results.read_text(encoding="utf-8"))
    assert json.loads(done.stdout) == data
    summary, checks = data["summary"], data["checks"]
    assert summary["lost"] == 0 and summary["posted_twice"] == 0 and summary["checks_ok"]
    assert summary["all_answered_200"] and data["storm"]["requests"] == 40
    assert checks["confirmed"] == 20 and checks["amount_not_posted_exactly"] == 0
    # every first notification made the server verify with the simulator (twins in flight may verify too)
    assert 20 <= data["storm"]["verify_calls"] <= 40
    assert data["trivial_before"][0]["requests"] == 40 and summary["ratio_met"] in (True, False)
    assert {"load_average_at_start", "load_average_at_end"} <= set(data["host"])
    after = _counts(gmina)
    assert after["payment"] == before["payment"] + 24 and after["posting"] > before["posting"]
    assert "PASS: 0 lost, 0 posted twice" in done.stderr


def test_the_reconciliation_imports_and_leaves_the_gmina_as_it_was(gmina, tmp_path):
    before = _counts(gmina)
    results = tmp_path / "reconciliation.json"
    done = _run("bench.reconciliation", "--database", gmina, "--entries", "200", "--small-entries", "100",
                "--baseline-runs", "1", "--no-prewarm", "--results", str(results))
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads(results.read_text(encoding="utf-8"))
    summary = data["summary"]
    assert summary["import_checks_ok"] and set(summary["peak_rss_mb"]) == {"100", "200"}
    for size in ("100", "200"):
        run = data["runs"][size]
        assert run["iterparse"]["entries"] == run["import"]["entries"] == int(size)
        result = run["import"]["result"]
        assert result["matched"] > 0.8 * int(size) and result["debits"] > 0
        assert result["matched"] + result["unmatched"] + result["debits"] + result["gateway"] == int(size)
        assert run["import"]["checks"]["payments_posted"] == result["matched"]
    assert data["runs"]["200"]["parse"]["entries"] == 200
    assert {"load_average_at_start", "load_average_at_end"} <= set(data["host"])
    # rolled back: nothing of the imports stayed
    assert _counts(gmina) == before
