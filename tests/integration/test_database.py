"""The schema on SQLite and PostgreSQL: migrations match the models, money is exact, history is append-only."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from platforma.core import audit
from platforma.core.audit import AuditEntry
from platforma.core.db import COPY_FROM_ROWS, Money, UTCDateTime, insert_rows, transaction
from platforma.core.migrate import current_revision, head_revision
from platforma.models import metadata
from platforma.taxes.models import Posting


def test_migrations_reach_head_and_match_the_models(runtime):
    assert current_revision(runtime.engine) == head_revision()
    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


money_table = sa.Table(
    "money_probe", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", Money),
    sa.Column("at", UTCDateTime),
)


@pytest.fixture
def probe(runtime):
    money_table.create(runtime.engine)
    yield runtime.engine
    money_table.drop(runtime.engine)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.decimals(min_value=Decimal("-999999999999.99"), max_value=Decimal("999999999999.99"), places=2))
def test_money_round_trips_exactly(probe, amount):
    with probe.begin() as conn:
        row_id = conn.execute(money_table.insert().values(amount=amount)).inserted_primary_key[0]
        back = conn.execute(sa.select(money_table.c.amount).where(money_table.c.id == row_id)).scalar_one()
    assert back == amount and isinstance(back, Decimal)


def test_money_refuses_floats_and_fractions_of_a_grosz(probe):
    with probe.begin() as conn:
        with pytest.raises(sa.exc.StatementError, match="float"):
            conn.execute(money_table.insert().values(amount=0.1))
    with probe.begin() as conn:
        with pytest.raises(sa.exc.StatementError, match="fraction of a grosz"):
            conn.execute(money_table.insert().values(amount=Decimal("1.005")))


def test_money_sums_in_sql_are_exact(probe):
    # 0.10 added 1000 times is 100.00 exactly in grosze; a float column would drift
    with probe.begin() as conn:
        conn.execute(money_table.insert(), [{"amount": Decimal("0.10")}] * 1000)
        total = conn.execute(sa.select(sa.func.sum(sa.cast(money_table.c.amount, sa.BigInteger)))).scalar_one()
    assert total == 10000


def test_timestamps_come_back_aware_utc(probe):
    warsaw = dt.timezone(dt.timedelta(hours=1))
    moment = dt.datetime(2026, 3, 15, 23, 30, tzinfo=warsaw)
    with probe.begin() as conn:
        conn.execute(money_table.insert().values(at=moment))
        back = conn.execute(sa.select(money_table.c.at)).scalar_one()
    assert back == moment and back.utcoffset() == dt.timedelta(0)
    with probe.begin() as conn, pytest.raises(sa.exc.StatementError, match="naive"):
        conn.execute(money_table.insert().values(at=dt.datetime(2026, 1, 1)))


@pytest.mark.parametrize("table", ["audit_entry", "login_attempt", "legal_page_version"])
def test_history_tables_refuse_update_and_delete_in_the_database(runtime, table):
    with transaction(runtime.session_factory) as session:
        if table == "audit_entry":
            audit.record(session, "test.event", details={"a": 1})
        elif table == "login_attempt":
            session.execute(sa.text("INSERT INTO login_attempt (at, email, outcome, stage, ip, user_agent) VALUES (:at, 'a@b.pl', 'bad_password', 'password', '', '')"),
                            {"at": dt.datetime(2026, 1, 1) if runtime.engine.dialect.name == "sqlite" else dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
        else:
            session.execute(sa.text("INSERT INTO legal_page_version (slug, version, title, body, fields, created_at) VALUES ('rodo', 1, 't', 'b', '{}', :at)"),
                            {"at": dt.datetime(2026, 1, 1) if runtime.engine.dialect.name == "sqlite" else dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)})
    for statement in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with runtime.engine.begin() as conn:
                conn.execute(sa.text(statement))
    with runtime.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 1


def test_the_orm_refuses_to_change_an_audit_entry(runtime):
    with transaction(runtime.session_factory) as session:
        audit.record(session, "test.event")
    with pytest.raises(RuntimeError, match="append-only"):
        with transaction(runtime.session_factory) as session:
            entry = session.scalars(sa.select(AuditEntry)).one()
            entry.action = "changed"
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(AuditEntry.action)).one() == "test.event"


def test_transaction_rolls_back_everything_on_error(runtime, create_taxpayer):
    from platforma.taxes.models import Taxpayer

    with pytest.raises(ZeroDivisionError):
        with transaction(runtime.session_factory) as session:
            session.add(Taxpayer(kind="natural", first_name="A", last_name="B", source="local", source_key="X1"))
            session.flush()
            audit.record(session, "taxpayer.created")
            1 / 0
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Taxpayer)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_constraints_hold(runtime):
    from platforma.taxes.models import Taxpayer

    with pytest.raises(sa.exc.IntegrityError):
        with transaction(runtime.session_factory) as session:
            session.add(Taxpayer(kind="legal", name="Firma", source="local", source_key="F1"))  # a legal person needs a NIP
    with pytest.raises(sa.exc.IntegrityError):
        with transaction(runtime.session_factory) as session:
            session.add(Taxpayer(kind="alien", last_name="X", source="local", source_key="F2"))


@pytest.mark.parametrize("count", [3, COPY_FROM_ROWS + 7])
def test_insert_rows_stores_what_an_insert_would_and_fails_as_one(runtime, create_taxpayer, count):
    """`insert_rows` (an executemany; from COPY_FROM_ROWS rows on PostgreSQL, a COPY): every row with
    its values through the column types (Money in grosze) and the Python-side defaults filled; a
    uniqueness error is SQLAlchemy's IntegrityError, as an INSERT's, and leaves nothing behind."""
    taxpayer = create_taxpayer()
    rows = [{"taxpayer_id": taxpayer.id, "liability_id": None, "installment_id": None, "kind": "nadplata",
             "amount": Decimal(n).scaleb(-2), "booked_on": dt.date(2026, 3, 1), "value_date": dt.date(2026, 3, 1),
             "payment_ref": f"R{n}", "reason": "ąę „test”\t\\ \n", "source": "test", "source_key": f"K{n}"}
            for n in range(1, count + 1)]
    with transaction(runtime.session_factory) as session:
        insert_rows(session, Posting.__table__, rows)
    with runtime.session_factory() as session:
        stored = session.execute(sa.select(Posting.amount, Posting.reason, Posting.origin, Posting.created_at)
                                 .where(Posting.source == "test").order_by(Posting.id)).all()
    assert [row.amount for row in stored] == [Decimal(n).scaleb(-2) for n in range(1, count + 1)]
    assert {(row.reason, row.origin) for row in stored} == {("ąę „test”\t\\ \n", "system")}
    assert all(row.created_at.tzinfo is not None for row in stored)
    again = [{**row, "source_key": f"N{n}"} for n, row in enumerate(rows)] + [rows[0]]
    with pytest.raises(sa.exc.IntegrityError):
        with transaction(runtime.session_factory) as session:
            insert_rows(session, Posting.__table__, again)
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Posting).where(Posting.source == "test")) == count
