"""bench.generate loads a correct gmina: shares, valid identifiers, links, readable by the app, refuses to mix.

The generator runs as the command it is (a subprocess); nothing here is timed.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.generate import ACCESS_COLUMNS, PostgresLoader, TableGenerator
from platforma.accounts.models import TaxpayerAccess, User
from platforma.accounts.passwords import verify_password
from platforma.core.db import make_engine, normalise_url
from platforma.taxes.identifiers import validate_nip, validate_pesel, validate_regon
from platforma.taxes.models import Taxpayer

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "PLATFORMA_TEST_DATABASE_URL"
TAXPAYERS = 2000
# the defaults: 8 % legal persons, a resident account for 25 % of the natural persons
LEGAL = round(TAXPAYERS * 0.08)
NATURAL = TAXPAYERS - LEGAL
USERS = round(NATURAL * 0.25)


def generate(url: str, results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.generate", "--taxpayers", str(TAXPAYERS), "--database", url,
         "--results", str(results), "--batch", "500", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


def check_load(url: str, tmp_path: Path) -> None:
    results = tmp_path / "generate.json"
    done = generate(url, results)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert json.loads(results.read_text(encoding="utf-8")) == summary
    assert {table: t["rows"] for table, t in summary["tables"].items()} == {
        "taxpayer": TAXPAYERS, "user_account": USERS, "taxpayer_access": USERS,
    }

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            count = lambda query: conn.execute(sa.text(query)).scalar_one()
            assert count("SELECT count(*) FROM taxpayer WHERE kind = 'legal'") == LEGAL
            assert count("SELECT count(*) FROM taxpayer WHERE kind = 'natural'") == NATURAL
            assert count("SELECT count(*) FROM taxpayer WHERE source = 'bench'") == TAXPAYERS
            assert count("SELECT count(*) FROM user_account WHERE role = 'resident' AND email_confirmed_at IS NOT NULL") == USERS
            assert count("SELECT count(DISTINCT password_hash) FROM user_account") == 1
            assert count("SELECT count(*) FROM taxpayer_access WHERE relation = 'self' AND revoked_at IS NULL") == USERS

            for pesel, nip in conn.execute(sa.text("SELECT pesel, nip FROM taxpayer WHERE kind = 'natural'")):
                assert validate_pesel(pesel) == pesel and nip is None
            for pesel, nip, regon in conn.execute(sa.text("SELECT pesel, nip, regon FROM taxpayer WHERE kind = 'legal'")):
                assert pesel is None and validate_nip(nip) == nip and validate_regon(regon) == regon
            assert count("SELECT count(DISTINCT pesel) FROM taxpayer") == NATURAL

            # every link joins an existing user to an existing natural person, one user per person
            linked = conn.execute(sa.text(
                "SELECT u.full_name, u.declared_pesel, t.first_name, t.last_name, t.pesel, t.kind FROM taxpayer_access a "
                "JOIN user_account u ON u.id = a.user_id JOIN taxpayer t ON t.id = a.taxpayer_id"
            )).all()
            assert len(linked) == USERS
            assert all(
                kind == "natural" and full == f"{first} {last}" and declared == pesel
                for full, declared, first, last, pesel, kind in linked
            )
            assert count("SELECT count(DISTINCT taxpayer_id) FROM taxpayer_access") == USERS
            assert count("SELECT count(DISTINCT user_id) FROM taxpayer_access") == USERS

        with Session(engine) as session:
            taxpayer = session.scalars(sa.select(Taxpayer).where(Taxpayer.source_key == "F0000001")).one()
            assert taxpayer.kind == "legal" and taxpayer.display_name and taxpayer.identifier_label.startswith("NIP ")
            assert taxpayer.created_at.tzinfo is not None and taxpayer.created_at.utcoffset() == dt.timedelta(0)
            user = session.get(User, 1)
            assert user.email == "mieszkaniec1@example.com" and user.is_active and not user.needs_totp
            assert user.created_at.tzinfo is not None and user.created_at.utcoffset() == dt.timedelta(0)
            assert user.email_confirmed_at > user.created_at
            assert verify_password(user.password_hash, "Bench-Mieszkaniec-2026")
            access = session.scalars(sa.select(TaxpayerAccess).where(TaxpayerAccess.user_id == user.id)).one()
            assert access.taxpayer.display_name == user.full_name
    finally:
        engine.dispose()

    # a second load into the same database is refused, and nothing is touched
    again = generate(url, tmp_path / "again.json")
    assert again.returncode != 0
    assert "not empty" in again.stderr and "--fresh" in again.stderr
    assert not (tmp_path / "again.json").exists()


def test_generate_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'gmina.sqlite3'}"
    check_load(url, tmp_path)

    # --fresh drops everything and loads the same gmina again
    fresh = generate(url, tmp_path / "fresh.json", "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM taxpayer")).scalar_one() == TAXPAYERS
            # SQLAlchemy's own storage format for DateTime on SQLite: naive UTC with microseconds
            stored = conn.execute(sa.text("SELECT created_at FROM user_account WHERE id = 1")).scalar_one()
            assert stored == "2024-03-01 06:00:00.000000"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_generate_postgresql(tmp_path):
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        pytest.skip("PostgreSQL tests need PLATFORMA_TEST_DATABASE_URL")
    name = f"bench_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    try:
        check_load(url, tmp_path)

        # ids were set by the generator; the sequences were moved past them, so the app can insert
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                taxpayer = Taxpayer(kind="natural", first_name="Nowy", last_name="Podatnik", source_key="nowy-1")
                user = User(email="nowy@example.com", full_name="Nowy Podatnik", password_hash="x")
                session.add_all([taxpayer, user])
                session.flush()
                session.add(TaxpayerAccess(user_id=user.id, taxpayer_id=taxpayer.id))
                session.commit()
                assert (taxpayer.id, user.id) == (TAXPAYERS + 1, USERS + 1)
                assert session.scalar(sa.select(sa.func.max(TaxpayerAccess.id))) == USERS + 1

            # the loader drops foreign keys for the COPY and adds them back: a dangling row still fails
            broken = TableGenerator(
                "taxpayer_access", ACCESS_COLUMNS, lambda plan: 1,
                lambda plan: iter([(USERS + 10, 1, TAXPAYERS + 999, "self", dt.datetime.now(dt.UTC), "")]),
            )
            loader = PostgresLoader(engine)
            try:
                with pytest.raises(psycopg.errors.ForeignKeyViolation):
                    loader.load(broken, broken.rows(None), 100, lambda done: None)
            finally:
                loader.close()
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM taxpayer_access")).scalar_one() == USERS + 1
                assert conn.execute(sa.text(
                    "SELECT count(*) FROM pg_constraint WHERE conrelid = 'taxpayer_access'::regclass AND contype = 'f'"
                )).scalar_one() == 4
        finally:
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
