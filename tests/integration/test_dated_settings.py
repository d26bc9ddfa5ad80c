"""Dated settings on SQLite and PostgreSQL: the seeded law values, adding values, validation."""
from __future__ import annotations

import datetime as dt
import os
import uuid
from decimal import Decimal
from typing import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from platforma.core import settings as dated
from platforma.core.db import make_engine, make_session_factory, normalise_url, transaction, utcnow
from platforma.core.migrate import alembic_config, current_revision, head_revision, upgrade
from platforma.core.settings import DatedSetting
from platforma.taxes.data import interest_rates

STANDARD_RATE = "interest.standard_rate"


def migration_0003():
    return ScriptDirectory.from_config(alembic_config()).get_revision("0003").module


def reseed(engine: sa.Engine) -> None:
    """Put back what migration 0003 seeds: on PostgreSQL the conftest truncates every table between tests."""
    with engine.begin() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(DatedSetting)).scalar_one() == 0:
            conn.execute(sa.insert(DatedSetting), migration_0003().seed_rows(utcnow()))


@pytest.fixture
def seeded(runtime):
    reseed(runtime.engine)
    return runtime


# -- what migration 0003 seeds ---------------------------------------------------------------------

@pytest.mark.parametrize("day, rate", [
    (dt.date(2024, 4, 15), "14.50"),
    (dt.date(2025, 5, 8), "13.50"),   # the first day of a new rate
    (dt.date(2025, 5, 7), "14.50"),   # the last day of the old one
    (dt.date(2022, 3, 8), "8.50"),
    (dt.date(2016, 6, 1), "8.00"),
    (dt.date(2014, 10, 9), "8.00"),
    (dt.date(2030, 1, 1), "10.50"),   # the latest known rate applies until a newer one is added
])
def test_the_seeded_standard_rate_on_a_day(seeded, day, rate):
    with seeded.session_factory() as session:
        assert dated.value_on(session, STANDARD_RATE, day) == rate
        assert dated.decimal_on(session, STANDARD_RATE, day) == Decimal(rate)


def test_before_the_first_rate_there_is_no_value(seeded):
    with seeded.session_factory() as session:
        with pytest.raises(KeyError, match="brak wartości ustawienia .* obowiązującej 08.10.2014"):
            dated.value_on(session, STANDARD_RATE, dt.date(2014, 10, 8))


def test_threshold_and_reminder_cost_are_seeded_and_no_waste_schedule(seeded):
    with seeded.session_factory() as session:
        assert dated.value_on(session, "interest.threshold", dt.date(2025, 3, 17)) == "8.70"
        # ASSUMPTION (DOMAIN.md says "verify the effective date"): 16.00 zł seeded from 2024-01-01
        assert dated.value_on(session, "reminder.cost", dt.date(2024, 1, 1)) == "16.00"
        with pytest.raises(KeyError):
            dated.value_on(session, "reminder.cost", dt.date(2023, 12, 31))
        # each rada gminy sets its own waste-fee schedule: nothing is assumed
        with pytest.raises(KeyError, match="waste.schedule"):
            dated.value_on(session, "waste.schedule", dt.date(2025, 1, 1))


def test_the_seed_is_the_package_table_and_follows_art_56(seeded):
    cutoff = migration_0003().SEED_UNTIL
    table = [r for r in interest_rates() if r.effective_from <= cutoff]
    with seeded.session_factory() as session:
        stored = [(r.effective_from, r.value) for r in dated.history(session, STANDARD_RATE)]
    assert stored == [(r.effective_from, str(r.rate)) for r in table]
    assert len(stored) == 26
    for r in table:
        # art. 56 §1 OP: since 2016, 200% of the lombard rate + 2 pp; before, 200% of it; never below 8%
        formula = 2 * r.lombard + (2 if r.effective_from >= dt.date(2016, 1, 1) else 0)
        assert r.rate == max(Decimal(8), formula), r


# -- adding values ------------------------------------------------------------------------------

def test_set_value_appends_a_row_that_applies_from_its_day(seeded, create_user):
    admin = create_user("admin")
    with transaction(seeded.session_factory) as session:
        row = dated.set_value(session, STANDARD_RATE, dt.date(2026, 5, 7), Decimal("10.00"),
                              author_id=admin.id, note="test: obniżka stopy lombardowej")
        assert row.value == "10.00"
    with seeded.session_factory() as session:
        assert dated.value_on(session, STANDARD_RATE, dt.date(2026, 5, 6)) == "10.50"
        assert dated.value_on(session, STANDARD_RATE, dt.date(2026, 5, 7)) == "10.00"
        last = dated.history(session, STANDARD_RATE)[-1]
        assert (last.created_by_id, last.note) == (admin.id, "test: obniżka stopy lombardowej")
        assert len(dated.history(session, STANDARD_RATE)) == 27


def test_a_second_value_from_the_same_day_is_refused(seeded):
    with pytest.raises(ValueError, match="wartość od tego dnia już istnieje"):
        with transaction(seeded.session_factory) as session:
            dated.set_value(session, STANDARD_RATE, dt.date(2025, 5, 8), "13.00", author_id=None)
    with seeded.session_factory() as session:
        assert dated.value_on(session, STANDARD_RATE, dt.date(2025, 5, 8)) == "13.50"
    # the database holds the rule too, for a writer that skips set_value
    with pytest.raises(sa.exc.IntegrityError):
        with transaction(seeded.session_factory) as session:
            session.add(DatedSetting(key=STANDARD_RATE, effective_from=dt.date(2025, 5, 8), value="13.00"))


@pytest.mark.parametrize("key, value, message", [
    (STANDARD_RATE, 14.5, "jako tekst"),
    (STANDARD_RATE, "14.505", "więcej niż 2 miejsca"),
    (STANDARD_RATE, "-1", "nie jest liczbą nieujemną"),
    (STANDARD_RATE, "0", "większa niż 0"),
    (STANDARD_RATE, "abc", "nie jest liczbą"),
    ("interest.threshold", True, "jako tekst"),
    ("waste.schedule", {"frequency": "weekly", "day": 15, "in_advance": True}, "częstotliwość"),
    ("waste.schedule", {"frequency": "monthly", "day": 32, "in_advance": True}, "od 1 do 31"),
    ("waste.schedule", {"frequency": "monthly", "day": 15}, "z góry"),
    ("waste.schedule", {"frequency": "monthly", "day": 15, "in_advance": True, "dzien": 1}, "nieznane pola"),
    ("waste.schedule", {"frequency": "custom", "due_dates": ["09-15", "03-15"]}, "uporządkowane"),
    ("waste.schedule", {"frequency": "custom", "due_dates": ["02-29"]}, "MM-DD"),
    ("waste.schedule", "monthly", "obiektem"),
])
def test_values_are_validated_before_they_are_stored(seeded, key, value, message):
    with seeded.session_factory() as session:
        with pytest.raises(ValueError, match=message):
            dated.set_value(session, key, dt.date(2027, 1, 1), value, author_id=None)
        assert session.scalar(sa.select(sa.func.count()).select_from(DatedSetting).where(DatedSetting.effective_from == dt.date(2027, 1, 1))) == 0


def test_values_are_normalised(seeded):
    with transaction(seeded.session_factory) as session:
        dated.set_value(session, "interest.threshold", dt.date(2027, 1, 1), "9,3", author_id=None)
        dated.set_value(session, "waste.schedule", dt.date(2025, 1, 1),
                        {"in_advance": False, "day": 31, "frequency": "quarterly"}, author_id=None, note="uchwała XII/85/2024")
        dated.set_value(session, "waste.schedule", dt.date(2026, 1, 1),
                        {"frequency": "custom", "due_dates": ["03-15", "05-15", "09-15", "11-15"]}, author_id=None)
    with seeded.session_factory() as session:
        assert dated.value_on(session, "interest.threshold", dt.date(2027, 6, 1)) == "9.30"
        assert dated.value_on(session, "waste.schedule", dt.date(2025, 7, 1)) == {"frequency": "quarterly", "day": 31, "in_advance": False}
        assert dated.value_on(session, "waste.schedule", dt.date(2026, 7, 1))["due_dates"][-1] == "11-15"
    with seeded.engine.connect() as conn:
        # stored as JSON text with a decimal string, the same on both databases
        assert conn.execute(sa.text("SELECT value FROM dated_setting WHERE key = 'interest.threshold' ORDER BY effective_from DESC")).scalars().first() == '"9.30"'


def test_unknown_keys_and_wrong_days_are_refused(seeded):
    with seeded.session_factory() as session:
        with pytest.raises(KeyError, match="nieznane ustawienie: interest.rate"):
            dated.value_on(session, "interest.rate", dt.date(2025, 1, 1))
        with pytest.raises(KeyError, match="nieznane ustawienie"):
            dated.set_value(session, "interest.rate", dt.date(2025, 1, 1), "1.00", author_id=None)
        with pytest.raises(TypeError, match="must be a date"):
            dated.value_on(session, STANDARD_RATE, dt.datetime(2025, 1, 1, 12, 0))
        with pytest.raises(sa.exc.StatementError, match="float"):
            session.add(DatedSetting(key=STANDARD_RATE, effective_from=dt.date(2027, 1, 1), value={"rate": 1.5}))
            session.flush()


# -- the migration itself on a database of its own -------------------------------------------------

@pytest.fixture
def fresh_database_url(database_url, tmp_path) -> Iterator[str]:
    """An empty database of the same kind as `database_url`, dropped afterwards."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    admin = make_engine(os.environ["PLATFORMA_TEST_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    name = f"platforma_fresh_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(normalise_url(os.environ["PLATFORMA_TEST_DATABASE_URL"])).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migration_0003_seeds_a_new_database_and_downgrades_cleanly(fresh_database_url):
    import platforma.episma.forms  # noqa: F401  (registers the stamp duty's setting)

    engine = make_engine(fresh_database_url)
    try:
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with make_session_factory(engine)() as session:
            assert dated.value_on(session, STANDARD_RATE, dt.date(2024, 4, 15)) == "14.50"
            # 28 rows of migration 0003 (rates, threshold, reminder cost) and the stamp duty of 0009
            assert session.scalar(sa.select(sa.func.count()).select_from(DatedSetting)) == 29
            assert dated.value_on(session, "stamp_duty.tax_clearance_certificate", dt.date(2026, 1, 1)) == "21.00"
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        assert not {"posting", "liability", "dated_setting"} & set(sa.inspect(engine).get_table_names())
        upgrade(engine)  # and up again: the append-only trigger function and the seed are recreated
        with make_session_factory(engine)() as session:
            assert dated.value_on(session, STANDARD_RATE, dt.date(2025, 5, 8)) == "13.50"
    finally:
        engine.dispose()
