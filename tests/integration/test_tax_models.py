"""The tax model on SQLite and PostgreSQL: constraints, the append-only ledger, exact amounts."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from platforma.core.db import transaction
from platforma.taxes.models import (
    Decision,
    Installment,
    Liability,
    LiabilityBasis,
    LiabilityParty,
    Posting,
    Quantity,
    TaxObject,
)

DAY = dt.date(2025, 3, 17)


def add_liability(session, *taxpayers, amount: str = "1234.00", key: str = "L1", **fields: Any) -> Liability:
    """A property-tax liability by decision; the first taxpayer is the principal, the others co-owners."""
    decision = Decision(number=f"FN.3120.{key}.2025", document_type="decyzja", year=2025,
                        issued_on=dt.date(2025, 2, 20), delivered_on=dt.date(2025, 2, 27), source_key=f"D-{key}")
    values = dict(decision=decision, tax_kind="nieruchomosci", payer_type="natural", year=2025,
                  period_from=dt.date(2025, 1, 1), period_to=dt.date(2025, 12, 31), amount=Decimal(amount),
                  description="Podatek od nieruchomości 2025", source_key=key)
    values.update(fields)
    liability = Liability(**values)
    for n, taxpayer in enumerate(taxpayers):
        liability.parties.append(LiabilityParty(taxpayer_id=taxpayer.id, role="principal" if n == 0 else "co_owner"))
    session.add(liability)
    session.flush()
    return liability


def posting(liability: Liability | None, taxpayer_id: int, kind: str, amount: str, **fields: Any) -> Posting:
    values: dict[str, Any] = dict(taxpayer_id=taxpayer_id, kind=kind, amount=Decimal(amount), booked_on=DAY, value_date=DAY)
    if liability is not None:
        values["liability"] = liability
    values.update(fields)
    return Posting(**values)


@pytest.fixture
def liability_id(runtime, create_taxpayer) -> tuple[int, int]:
    """A liability of one taxpayer with a przypis on the ledger: (liability id, taxpayer id)."""
    taxpayer = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        liability = add_liability(session, taxpayer)
        session.add(posting(liability, taxpayer.id, "przypis", "1234.00", source="local", source_key="P1"))
    return liability.id, taxpayer.id


def refused(runtime, *objects_or_builder) -> None:
    """Adding these objects must fail on a database constraint, and leave nothing behind."""
    with pytest.raises(sa.exc.IntegrityError):
        with transaction(runtime.session_factory) as session:
            for item in objects_or_builder:
                session.add(item(session) if callable(item) else item)
            session.flush()


# -- the ledger is append-only ---------------------------------------------------------------------

def test_postings_refuse_update_and_delete_in_the_database(runtime, liability_id):
    for statement in ("UPDATE posting SET amount = amount + 1", "UPDATE posting SET reason = 'x'", "DELETE FROM posting"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with runtime.engine.begin() as conn:
                conn.execute(sa.text(statement))
    with runtime.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*), sum(amount) FROM posting")).one() == (1, 123400)


def test_the_orm_refuses_to_change_or_delete_a_posting(runtime, liability_id):
    with pytest.raises(RuntimeError, match="append-only"):
        with transaction(runtime.session_factory) as session:
            session.scalars(sa.select(Posting)).one().amount = Decimal("1.00")
    with pytest.raises(RuntimeError, match="append-only"):
        with transaction(runtime.session_factory) as session:
            session.delete(session.scalars(sa.select(Posting)).one())
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(Posting.amount)).one() == Decimal("1234.00")


def test_a_correction_is_a_new_posting_that_names_the_one_it_corrects(runtime, liability_id):
    lid, tid = liability_id
    with transaction(runtime.session_factory) as session:
        original = session.scalars(sa.select(Posting)).one()
        liability = session.get(Liability, lid)
        session.add(posting(liability, tid, "korekta", "-34.00", corrects=original, origin="manual",
                            reason="błąd w powierzchni budynku"))
        session.add(posting(liability, tid, "wplata", "200.00", payment_ref="MT940/2025/03/17/5", value_date=dt.date(2025, 3, 14)))
    # a korekta without the posting it corrects is refused by the database
    refused(runtime, posting(None, tid, "korekta", "-10.00", liability_id=lid))
    with runtime.session_factory() as session:
        korekta = session.scalars(sa.select(Posting).where(Posting.kind == "korekta")).one()
        assert korekta.corrects.kind == "przypis" and korekta.signed_amount == Decimal("-34.00")
        postings = session.scalars(sa.select(Posting).where(Posting.liability_id == lid)).all()
        assert sum(p.signed_amount for p in postings) == Decimal("1000.00")
        # the same balance summed by the database, exactly
        balance = session.scalar(sa.select(sa.func.sum(Posting.signed_amount_sql())).where(Posting.taxpayer_id == tid))
        assert balance == Decimal("1000.00") and isinstance(balance, Decimal)


@pytest.mark.parametrize("kind, amount, extra", [
    ("wplata", "-5.00", {}),            # only a korekta may be negative
    ("przypis", "0.00", {}),            # a posting always moves money
    ("korekta", "0.00", {}),
    ("przypis", "5.00", {"liability_id": None}),  # tax assessed belongs to a liability
    ("wydatek", "5.00", {}),            # unknown kind
    ("wplata", "5.00", {"origin": "import"}),  # an imported posting needs its idempotency key
])
def test_the_database_refuses_malformed_postings(runtime, liability_id, kind, amount, extra):
    lid, tid = liability_id
    refused(runtime, posting(None, tid, kind, amount, **({"liability_id": lid} | extra)))


def test_a_manual_posting_needs_a_reason(runtime, liability_id, create_user):
    lid, tid = liability_id
    clerk = create_user("clerk")
    for reason in ("", "   "):
        refused(runtime, posting(None, tid, "odpis", "34.00", liability_id=lid, origin="manual", reason=reason, created_by_id=clerk.id))
    with transaction(runtime.session_factory) as session:
        session.add(posting(None, tid, "odpis", "34.00", liability_id=lid, origin="manual",
                            reason="umorzenie zaległości (art. 67a OP)", created_by_id=clerk.id))
    # a reminder cost and an overpayment may stand without a liability, on the taxpayer's account
    with transaction(runtime.session_factory) as session:
        session.add(posting(None, tid, "koszty_upomnienia", "16.00"))
        session.add(posting(None, tid, "nadplata", "0.01", payment_ref="P24/1"))


def test_a_repeated_import_is_refused_by_its_key(runtime, liability_id):
    lid, tid = liability_id
    line = dict(liability_id=lid, origin="import", source="mt940", source_key="2025-03-17/0001")
    with transaction(runtime.session_factory) as session:
        session.add(posting(None, tid, "wplata", "100.00", **line))
    refused(runtime, posting(None, tid, "wplata", "100.00", **line))
    # the same key in another source is another record
    with transaction(runtime.session_factory) as session:
        session.add(posting(None, tid, "wplata", "100.00", **(line | {"source": "przelewy24"})))
    # manual postings have no key: any number of them is allowed
    with transaction(runtime.session_factory) as session:
        for _ in range(2):
            session.add(posting(None, tid, "koszty_upomnienia", "16.00", origin="manual", reason="upomnienie"))
    # the other records imported from a domain system are idempotent the same way
    refused(runtime, TaxObject(kind="budynek", source="dziedzina", source_key="O1"),
            TaxObject(kind="budynek", source="dziedzina", source_key="O1"))
    refused(runtime, lambda session: add_liability(session, key="L1", decision=None))
    refused(runtime, Decision(number="FN.3120.L1.2025", document_type="decyzja", year=2025,
                              issued_on=dt.date(2025, 2, 20), source_key="other"))


# -- liabilities and who sees them ------------------------------------------------------------------

def test_a_co_owned_liability_is_seen_whole_by_each_co_owner(runtime, create_taxpayer):
    wife, husband, neighbour = create_taxpayer(), create_taxpayer(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        liability = add_liability(session, wife, husband, amount="2000.00")
        add_liability(session, neighbour, key="L2", amount="50.00")
        session.add(posting(liability, wife.id, "przypis", "2000.00"))
        # a payment by either co-owner counts for both (art. 3 ust. 4 upol, art. 91 OP)
        session.add(posting(liability, husband.id, "wplata", "500.00"))

    def liabilities_of(session, taxpayer_id: int) -> list[tuple[int, Decimal, str]]:
        query = (sa.select(Liability.id, Liability.amount, LiabilityParty.role)
                 .join(LiabilityParty).where(LiabilityParty.taxpayer_id == taxpayer_id))
        return [tuple(row) for row in session.execute(query)]

    with runtime.session_factory() as session:
        seen_by_wife, seen_by_husband = liabilities_of(session, wife.id), liabilities_of(session, husband.id)
        assert seen_by_wife == [(liability.id, Decimal("2000.00"), "principal")]
        assert seen_by_husband == [(liability.id, Decimal("2000.00"), "co_owner")]
        assert len(liabilities_of(session, neighbour.id)) == 1
        owed = session.scalar(sa.select(sa.func.sum(Posting.signed_amount_sql())).where(Posting.liability_id == liability.id))
        assert owed == Decimal("1500.00")
        loaded = session.get(Liability, liability.id)
        assert sorted(p.taxpayer.id for p in loaded.parties) == sorted([wife.id, husband.id])
    # a taxpayer is named once per liability, and there is at most one principal
    refused(runtime, LiabilityParty(liability_id=liability.id, taxpayer_id=husband.id, role="co_owner"))
    refused(runtime, LiabilityParty(liability_id=liability.id, taxpayer_id=neighbour.id, role="principal"))


def test_liability_constraints(runtime, create_taxpayer):
    taxpayer = create_taxpayer()
    refused(runtime, lambda s: add_liability(s, taxpayer, key="A", period_from=dt.date(2025, 7, 1), period_to=dt.date(2025, 6, 30)))
    refused(runtime, lambda s: add_liability(s, taxpayer, key="B", tax_kind="psy"))
    refused(runtime, lambda s: add_liability(s, taxpayer, key="C", payer_type="alien"))
    refused(runtime, lambda s: add_liability(s, taxpayer, key="D", amount="-1.00"))
    refused(runtime, Decision(number="FN/1", document_type="decyzja", year=2025, source_key="no-issue-date"))
    refused(runtime, Decision(number="FN/2", document_type="decyzja", year=2025, issued_on=dt.date(2025, 2, 20),
                              delivered_on=dt.date(2025, 2, 19), source_key="delivered-before-issued"))
    refused(runtime, TaxObject(kind="statek", source_key="S1"))
    with transaction(runtime.session_factory) as session:
        # a declaration has no issue date; a part-year liability (bought in June, taxed from July)
        declaration = Decision(number="DN-1/2025/17", document_type="deklaracja", year=2025, source_key="DN1-17")
        add_liability(session, taxpayer, key="E", decision=declaration, payer_type="legal",
                      period_from=dt.date(2025, 7, 1), period_to=dt.date(2025, 12, 31), amount="0.00")
    with runtime.session_factory() as session:
        liability_e = session.scalars(sa.select(Liability).where(Liability.source_key == "E")).one()
    refused(runtime, Installment(liability_id=liability_e.id, number=1, due_on=dt.date(2025, 3, 15), amount=Decimal("0.00")))
    refused(runtime, Installment(liability_id=liability_e.id, number=0, due_on=dt.date(2025, 3, 15), amount=Decimal("1.00")))
    refused(runtime, Installment(liability_id=liability_e.id, number=1, due_on=dt.date(2025, 3, 15), amount=Decimal("1.00")),
            Installment(liability_id=liability_e.id, number=1, due_on=dt.date(2025, 5, 15), amount=Decimal("1.00")))


def test_bases_and_installments_keep_exact_amounts(runtime, create_taxpayer):
    taxpayer = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        building = TaxObject(kind="budynek", description="Budynek mieszkalny", location="ul. Polna 3, obręb 0003, dz. 125/4", source_key="O1")
        land = TaxObject(kind="grunt", description="Grunt pozostały", location="obręb 0003, dz. 125/4", source_key="O2")
        car = TaxObject(kind="pojazd", description="Ciągnik siodłowy", location="", registration_number="WPI 12345", source_key="O3")
        liability = add_liability(session, taxpayer, amount="159.00")
        liability.bases += [
            LiabilityBasis(tax_object=building, basis=Decimal("120.55"), unit="m2", rate=Decimal("1.15"), amount=Decimal("138.63")),
            LiabilityBasis(tax_object=land, basis=Decimal("0.1234"), unit="ha", rate=Decimal("167.90"), amount=Decimal("20.72")),
        ]
        liability.installments += [
            Installment(number=1, due_on=dt.date(2025, 3, 15), amount=Decimal("39.00")),
            Installment(number=2, due_on=dt.date(2025, 5, 15), amount=Decimal("40.00")),
            Installment(number=3, due_on=dt.date(2025, 9, 15), amount=Decimal("40.00")),
            Installment(number=4, due_on=dt.date(2025, 11, 15), amount=Decimal("40.00")),
        ]
        session.add(car)
    with runtime.session_factory() as session:
        loaded = session.get(Liability, liability.id)
        assert [(b.tax_object.kind, b.basis, b.rate, b.amount) for b in loaded.bases] == [
            ("budynek", Decimal("120.5500"), Decimal("1.1500"), Decimal("138.63")),
            ("grunt", Decimal("0.1234"), Decimal("167.9000"), Decimal("20.72")),
        ]
        assert sum(i.amount for i in loaded.installments) == loaded.amount == Decimal("159.00")
        assert [i.number for i in loaded.installments] == [1, 2, 3, 4]
        assert session.scalars(sa.select(Installment.number).where(Installment.due_on <= dt.date(2025, 5, 15)).order_by(Installment.due_on)).all() == [1, 2]
        assert session.scalars(sa.select(TaxObject.registration_number).where(TaxObject.kind == "pojazd")).one() == "WPI 12345"
    with runtime.engine.connect() as conn:
        # in the database: ten-thousandths and grosze as integers
        assert conn.execute(sa.text("SELECT basis, rate, amount FROM liability_basis ORDER BY id")).first() == (1205500, 11500, 13863)
    refused(runtime, LiabilityBasis(liability_id=liability.id, tax_object_id=building.id, basis=Decimal("1"), unit="m2", rate=Decimal("1"), amount=Decimal("1")))
    refused(runtime, LiabilityBasis(liability_id=liability.id, tax_object_id=car.id, basis=Decimal("1"), unit="km", rate=Decimal("1"), amount=Decimal("1")))
    refused(runtime, LiabilityBasis(liability_id=liability.id, tax_object_id=car.id, basis=Decimal("-1"), unit="szt", rate=Decimal("1"), amount=Decimal("1")))


# -- Quantity is exact ---------------------------------------------------------------------------

quantity_table = sa.Table(
    "quantity_probe", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", Quantity),
)
QUANTITY_MAX = Decimal(2**63 - 1) / 10_000


@pytest.fixture
def probe(runtime):
    quantity_table.create(runtime.engine)
    yield runtime.engine
    quantity_table.drop(runtime.engine)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.decimals(min_value=-QUANTITY_MAX, max_value=QUANTITY_MAX, places=4))
def test_quantity_round_trips_exactly(probe, value):
    with probe.begin() as conn:
        row_id = conn.execute(quantity_table.insert().values(value=value)).inserted_primary_key[0]
        back = conn.execute(sa.select(quantity_table.c.value).where(quantity_table.c.id == row_id)).scalar_one()
    assert back == value and isinstance(back, Decimal)


def test_quantity_refuses_floats_and_finer_fractions(probe):
    for value, error, message in [
        (0.1, TypeError, "float"),
        (Decimal("1.00005"), ValueError, "finer than 0.0001"),
        (Decimal("NaN"), ValueError, "not a finite number"),
    ]:
        with probe.begin() as conn:
            with pytest.raises(sa.exc.StatementError, match=message) as caught:
                conn.execute(quantity_table.insert().values(value=value))
            assert isinstance(caught.value.orig, error)
    with probe.begin() as conn:
        conn.execute(quantity_table.insert(), [{"value": 3}, {"value": Decimal("2.5")}, {"value": None}])
        assert conn.execute(sa.select(quantity_table.c.value).order_by(quantity_table.c.id)).scalars().all() == [
            Decimal("3.0000"), Decimal("2.5000"), None]
