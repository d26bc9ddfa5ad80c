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
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.generate import (
    ACCESS_COLUMNS, DECISION_COLUMNS, LEDGER_AS_OF, LIABILITY_COLUMNS, Plan, PostgresLoader, TableGenerator, TableGroup,
)
from platforma.accounts.models import TaxpayerAccess, User
from platforma.accounts.passwords import verify_password
from platforma.core.db import make_engine, normalise_url
from platforma.core.migrate import upgrade
from platforma.taxes.identifiers import validate_nip, validate_pesel, validate_regon
from platforma.taxes.models import Posting, Taxpayer
from platforma.taxes.queries import account
from platforma.taxes.reminders import reminder_lines
from platforma.taxes.rules import effective_due

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "PLATFORMA_TEST_DATABASE_URL"
TAXPAYERS = 2000
# the defaults: 8 % legal persons, a resident account for 25 % of the natural persons
LEGAL = round(TAXPAYERS * 0.08)
NATURAL = TAXPAYERS - LEGAL
USERS = round(NATURAL * 0.25)
YEARS = (2024, 2025, 2026)  # the default --years
LEDGER_TABLES = ("decision", "liability", "liability_party", "installment", "posting")


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
    rows = {table: t["rows"] for table, t in summary["tables"].items()}
    assert {table: rows[table] for table in ("taxpayer", "user_account", "taxpayer_access")} == {
        "taxpayer": TAXPAYERS, "user_account": USERS, "taxpayer_access": USERS,
    }
    assert set(rows) == {"taxpayer", "user_account", "taxpayer_access", *LEDGER_TABLES}
    assert summary["groups"]["ledger"]["rows"] == sum(rows[table] for table in LEDGER_TABLES)
    assert summary["options"]["years"] == list(YEARS)

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

            check_ledger(conn, rows)

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
            check_accounts(session)
    finally:
        engine.dispose()

    # a second load into the same database is refused, and nothing is touched
    again = generate(url, tmp_path / "again.json")
    assert again.returncode != 0
    assert "not empty" in again.stderr and "--fresh" in again.stderr
    assert not (tmp_path / "again.json").exists()


def check_ledger(conn: sa.Connection, rows: dict[str, int]) -> None:
    """The ledger tables hold together as the app writes them (platforma.taxes.operations)."""
    count = lambda query: conn.execute(sa.text(query)).scalar_one()
    for table in LEDGER_TABLES:
        assert count(f"SELECT count(*) FROM {table}") == rows[table] > 0

    # about four liabilities per taxpayer a year (DESIGN.md), one decision or declaration each
    liabilities = rows["liability"]
    assert 3.6 * TAXPAYERS * len(YEARS) < liabilities < 4.4 * TAXPAYERS * len(YEARS)
    assert count("SELECT count(DISTINCT year) FROM liability") == len(YEARS)
    assert count("SELECT count(*) FROM liability l JOIN decision d ON d.id = l.decision_id AND d.year = l.year") == liabilities
    assert count("SELECT count(*) FROM decision WHERE document_type = 'decyzja' AND (issued_on IS NULL OR delivered_on < issued_on)") == 0
    assert count("SELECT count(*) FROM liability WHERE payer_type = 'legal' AND tax_kind = 'nieruchomosci'") == LEGAL * len(YEARS)
    assert count("SELECT count(*) FROM liability WHERE payer_type = 'natural' AND tax_kind = 'nieruchomosci'") == NATURAL * len(YEARS)

    # the installments of each liability sum to its amount; taxes in whole złoty (art. 63 OP)
    assert count(
        "SELECT count(*) FROM liability l LEFT JOIN (SELECT liability_id, sum(amount) AS total, count(*) AS n "
        "FROM installment GROUP BY liability_id) i ON i.liability_id = l.id WHERE i.total IS NULL OR i.total <> l.amount"
    ) == 0
    assert count("SELECT count(*) FROM installment i JOIN liability l ON l.id = i.liability_id "
                 "WHERE l.tax_kind <> 'odpady' AND i.amount % 100 <> 0") == 0
    # property tax of natural persons: 4 installments, or 1 up to 100 zł; of legal persons: 12
    assert count("SELECT count(*) FROM (SELECT l.id FROM liability l JOIN installment i ON i.liability_id = l.id "
                 "WHERE l.tax_kind = 'nieruchomosci' GROUP BY l.id, l.payer_type, l.amount HAVING NOT ("
                 "(l.payer_type = 'legal' AND count(*) = 12) OR (l.payer_type = 'natural' AND count(*) = 4) "
                 "OR (l.payer_type = 'natural' AND count(*) = 1 AND l.amount <= 10000))) wrong") == 0
    assert count("SELECT count(*) FROM (SELECT liability_id FROM installment i JOIN liability l ON l.id = i.liability_id "
                 "WHERE l.tax_kind = 'odpady' GROUP BY liability_id HAVING count(*) <> 4) wrong") == 0

    # every installment has exactly one przypis, for its amount, on its liability
    assert count("SELECT count(*) FROM posting WHERE kind = 'przypis'") == rows["installment"]
    assert count(
        "SELECT count(*) FROM posting p JOIN installment i ON i.id = p.installment_id AND i.liability_id = p.liability_id "
        "AND i.amount = p.amount WHERE p.kind = 'przypis'"
    ) == rows["installment"]
    assert count("SELECT count(DISTINCT installment_id) FROM posting WHERE kind = 'przypis'") == rows["installment"]

    # payments reference existing installments of their liability, one payment per installment at most;
    # an odsetki line goes with the wpłata of the same payment_ref, day and installment
    assert count(
        "SELECT count(*) FROM posting p LEFT JOIN installment i ON i.id = p.installment_id AND i.liability_id = p.liability_id "
        "WHERE p.kind IN ('wplata', 'odsetki') AND i.id IS NULL"
    ) == 0
    assert count("SELECT count(*) FROM (SELECT installment_id FROM posting WHERE kind = 'wplata' "
                 "GROUP BY installment_id HAVING count(*) > 1) twice") == 0
    assert count(
        "SELECT count(*) FROM posting o LEFT JOIN posting w ON w.kind = 'wplata' AND w.payment_ref = o.payment_ref "
        "AND w.value_date = o.value_date AND w.installment_id = o.installment_id AND w.amount > o.amount "
        "WHERE o.kind = 'odsetki' AND w.id IS NULL"
    ) == 0
    assert count("SELECT count(*) FROM posting WHERE kind = 'odsetki' AND amount % 100 <> 0") == 0
    assert count("SELECT count(*) FROM posting WHERE kind = 'nadplata' AND (liability_id IS NOT NULL OR payment_ref IS NULL)") == 0
    assert count("SELECT count(*) FROM posting WHERE kind = 'odsetki'") > 0
    assert count("SELECT count(*) FROM posting WHERE kind = 'nadplata'") > 0
    assert count(f"SELECT count(*) FROM posting WHERE value_date > '{LEDGER_AS_OF.isoformat()}'") == 0
    # about 80 % of the installments due by then paid on time, 10 % late, 10 % not at all
    due = count(f"SELECT count(*) FROM installment WHERE due_on < '{LEDGER_AS_OF.isoformat()}'")
    unpaid = count(
        f"SELECT count(*) FROM installment i WHERE i.due_on < '{LEDGER_AS_OF.isoformat()}' AND NOT EXISTS "
        "(SELECT 1 FROM posting p WHERE p.installment_id = i.id AND p.kind = 'wplata')"
    )
    day = lambda value: value if isinstance(value, dt.date) else dt.date.fromisoformat(value)  # SQLite: text
    late = sum(
        day(paid_on) > effective_due(day(nominal), delivered and day(delivered))
        for paid_on, nominal, delivered in conn.execute(sa.text(
            "SELECT p.value_date, i.due_on, d.delivered_on FROM posting p JOIN installment i ON i.id = p.installment_id "
            "JOIN liability l ON l.id = i.liability_id JOIN decision d ON d.id = l.decision_id WHERE p.kind = 'wplata'"
        ))
    )
    assert 0.06 < unpaid / due < 0.14 and 0.07 < late / due < 0.13

    # one principal per liability; about 10 % co-owned: a second, natural party
    assert count("SELECT count(*) FROM liability_party WHERE role = 'principal'") == liabilities
    assert count("SELECT count(*) FROM (SELECT liability_id FROM liability_party GROUP BY liability_id HAVING count(*) > 2) x") == 0
    co_owned = count("SELECT count(*) FROM liability_party WHERE role = 'co_owner'")
    assert rows["liability_party"] == liabilities + co_owned
    assert 0.07 * liabilities < co_owned < 0.13 * liabilities
    assert count(
        "SELECT count(*) FROM liability_party c JOIN liability_party p ON p.liability_id = c.liability_id "
        "AND p.role = 'principal' JOIN taxpayer t ON t.id = c.taxpayer_id "
        "WHERE c.role = 'co_owner' AND (c.taxpayer_id = p.taxpayer_id OR t.kind <> 'natural')"
    ) == 0
    # a co-owner pays some installments of the shared liability
    assert count(
        "SELECT count(*) FROM posting w JOIN liability_party c ON c.liability_id = w.liability_id "
        "AND c.taxpayer_id = w.taxpayer_id AND c.role = 'co_owner' WHERE w.kind = 'wplata'"
    ) > 0


def check_accounts(session: Session) -> None:
    """The app reads the generated ledger as intended: a paid installment, late or not, is "paid"
    (the interest the generator posted is the interest the app replays), an unpaid one is overdue."""
    statuses = set()
    for taxpayer_id in range(1, 60):
        state = account(session, taxpayer_id, LEDGER_AS_OF)
        assert len({item.year for item in state.liabilities}) == len(YEARS)
        for item in state.liabilities:
            for installment in item.installments:
                statuses.add(installment.status)
                if installment.paid >= installment.assessed:
                    assert installment.status == "paid" and installment.interest == 0, (taxpayer_id, installment)
                elif installment.due < LEDGER_AS_OF:
                    assert installment.status == "overdue" and installment.left == installment.assessed
    assert {"paid", "overdue"} <= statuses
    lines = reminder_lines(session, LEDGER_AS_OF)
    assert 0.1 * TAXPAYERS < len(lines) < 0.5 * TAXPAYERS
    assert all(line.zaleglosc > 0 for line in lines)


def ledger_digest(url: str) -> list[tuple]:
    """A fingerprint of the ledger tables' contents (for comparing two loads)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(conn.execute(sa.text(query)).one())
                for query in (
                    "SELECT count(*), sum(l.amount), sum(l.id * l.year), max(d.number), max(d.issued_on) "
                    "FROM liability l JOIN decision d ON d.id = l.id",
                    "SELECT count(*), sum(taxpayer_id * liability_id), sum(id * taxpayer_id) FROM liability_party",
                    "SELECT count(*), sum(amount * number), sum(id * liability_id) FROM installment",
                    "SELECT count(*), sum(amount), sum(id * taxpayer_id), sum(id * COALESCE(installment_id, 7)), "
                    "max(source_key), min(payment_ref) FROM posting",
                )
            ]
    finally:
        engine.dispose()


def catalog(url: str) -> set[tuple[str, str, str]]:
    """Every constraint, index and trigger (with whether it is enabled) of the public schema, by table,
    name and definition."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace UNION ALL "
                "SELECT indrelid::regclass::text, indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) UNION ALL "
                "SELECT tgrelid::regclass::text, tgname, tgenabled::text || ' ' || pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)"
            )).all())
    finally:
        engine.dispose()


def sqlite_triggers(url: str) -> set[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all())
    finally:
        engine.dispose()


def test_generate_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'gmina.sqlite3'}"
    reference_url = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    reference = make_engine(reference_url)
    try:
        upgrade(reference)
    finally:
        reference.dispose()
    check_load(url, tmp_path)
    # the triggers the loader dropped for the load (those run on every INSERT) are back
    assert sqlite_triggers(url) == sqlite_triggers(reference_url) != set()

    # --fresh drops everything and loads the same gmina again, whatever --batch is
    before = ledger_digest(url)
    fresh = generate(url, tmp_path / "fresh.json", "--fresh", "--batch", "777")
    assert fresh.returncode == 0, fresh.stderr
    assert ledger_digest(url) == before
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM taxpayer")).scalar_one() == TAXPAYERS
            # SQLAlchemy's own storage format for DateTime on SQLite: naive UTC with microseconds
            stored = conn.execute(sa.text("SELECT created_at FROM user_account WHERE id = 1")).scalar_one()
            assert stored == "2024-03-01 06:00:00.000000"
            # and Date as ISO text
            stored = conn.execute(sa.text("SELECT due_on FROM installment WHERE id = 1")).scalar_one()
            assert isinstance(stored, str) and dt.date.fromisoformat(stored).year == YEARS[0]
    finally:
        engine.dispose()

    # --years picks the ledger's years; a year out of range is refused before anything is done
    fresh = generate(url, tmp_path / "fresh.json", "--fresh", "--years", "2025")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["options"]["years"] == [2025]
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT min(year), max(year) FROM liability")).one() == (2025, 2025)
    finally:
        engine.dispose()
    refused = generate(url, tmp_path / "refused.json", "--fresh", "--years", "2027")
    assert refused.returncode == 2 and "--years" in refused.stderr


def test_plan_natural_ids_and_partners():
    plan = Plan.build(TAXPAYERS, 0.08, 0.25, 2026, YEARS)
    natural = list(plan.natural_ids())
    assert [plan.natural_id(j) for j in range(plan.natural)] == natural
    assert [plan.natural_index(tid) for tid in natural] == list(range(plan.natural))
    partners = {tid: plan.partner_of(tid) for tid in natural}
    assert all(partner in partners and partner != tid for tid, partner in partners.items())
    assert all(partners[partner] == tid for tid, partner in partners.items() if plan.natural % 2 == 0)


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
    reference_url = sa.engine.make_url(url).set(database=f"{name}_ref").render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}_ref"'))
    try:
        # the schema as the migrations make it, to compare with after the loader's drops and rebuilds
        reference = make_engine(reference_url)
        try:
            upgrade(reference)
        finally:
            reference.dispose()
        expected_catalog = catalog(reference_url)

        check_load(url, tmp_path)
        # every constraint and index the loader dropped for the COPY is back, exactly as migrated
        assert catalog(url) == expected_catalog

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
                postings = session.scalar(sa.select(sa.func.count()).select_from(Posting))
                posting = Posting(taxpayer_id=taxpayer.id, kind="nadplata", amount=Decimal("12.34"),
                                  booked_on=LEDGER_AS_OF, value_date=LEDGER_AS_OF, payment_ref="nowa-wplata")
                session.add(posting)
                session.commit()
                assert posting.id == postings + 1

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

            # a group (concurrent COPYs, constraints dropped in a committed transaction) that breaks a
            # foreign key fails, and leaves its tables empty with every constraint back
            created = dt.datetime.now(dt.UTC)
            broken_group = TableGroup("broken", (
                TableGenerator("decision", DECISION_COLUMNS, lambda plan: None, lambda plan: iter(())),
                TableGenerator("liability", LIABILITY_COLUMNS, lambda plan: None, lambda plan: iter(())),
            ), lambda plan: iter([
                (0, (10**8, "X/1", "deklaracja", 2025, None, None, "bench", "X1", created)),
                (1, (10**8, 10**8 + 1, "odpady", "natural", 2025, dt.date(2025, 1, 1), dt.date(2025, 12, 31), 100,
                     "", "bench", "X1", created)),
            ]))
            loader = PostgresLoader(engine)
            try:
                with pytest.raises(psycopg.errors.ForeignKeyViolation):
                    loader.load_group(broken_group, broken_group.rows(None), 100, lambda done: None)
            finally:
                loader.close()
            with engine.connect() as conn:
                for table in LEDGER_TABLES:
                    assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
                assert conn.execute(sa.text("SELECT count(*) FROM taxpayer")).scalar_one() == TAXPAYERS + 1
            assert catalog(url) == expected_catalog
        finally:
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}_ref" WITH (FORCE)'))
        admin.dispose()
