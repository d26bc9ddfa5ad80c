"""The reminders run on both databases gives, to the grosz and in the same order, what replaying every
liability in arrears through `account.account_as_of` gives (the account page's computation):
late and partial payments with the art. 55 §2 split, co-owners, decisions delivered late, write-offs,
corrections, overpayments, installments not yet due, names that sort by their Polish letters."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.core.db import transaction
from platforma.taxes import operations as ops
from platforma.taxes import reminders
from platforma.taxes.account import account_as_of
from platforma.taxes.models import Decision, Posting, Taxpayer
from platforma.taxes.queries import liability_records, posting_records
from platforma.taxes.settings import interest_threshold, rate_table

D = dt.date
QUARTERS = [D(2025, 3, 15), D(2025, 5, 15), D(2025, 9, 15), D(2025, 11, 15)]


def reference(session, day, minimum=Decimal(0)):
    """The reminders run as it was first written: every liability in arrears through `account_as_of`."""
    rates, threshold = rate_table(session), interest_threshold(session, day)
    by_taxpayer = defaultdict(list)
    for record in liability_records(session, reminders.liabilities_in_arrears(session, day)):
        postings = posting_records(session, sa.and_(Posting.liability_id == record.id, Posting.value_date <= day))
        state = account_as_of([record], postings, day, rates, threshold).liabilities[0]
        if state.zaleglosc > 0:
            by_taxpayer[record.party_ids[0]].append(
                (state.tax_kind, state.year, state.description, state.decision_number, str(state.zaleglosc), str(state.odsetki)))
    lines = []
    for taxpayer in session.scalars(sa.select(Taxpayer).where(Taxpayer.id.in_(list(by_taxpayer)))):
        items = by_taxpayer[taxpayer.id]
        if sum(Decimal(item[4]) + Decimal(item[5]) for item in items) > minimum:
            lines.append((taxpayer.display_name, taxpayer.id, taxpayer.address, taxpayer.identifier_label, items))
    return sorted(lines, key=lambda line: (line[0], line[1]))


def produced(session, day, minimum=Decimal(0)):
    return [(line.name, line.taxpayer_id, line.address, line.identifier,
             [(i.tax_kind, i.year, i.description, i.decision_number, str(i.zaleglosc), str(i.odsetki)) for i in line.liabilities])
            for line in reminders.iter_reminder_lines(session, day, minimum)]


def liability(session, key, parties, amounts, *, dues=QUARTERS, kind="nieruchomosci", payer="natural", year=2025,
              delivered=D(2025, 2, 20), document="decyzja"):
    """A liability by decision (delivered on `delivered`), by declaration (document="deklaracja") or without a document."""
    decision = None
    if document == "decyzja":
        decision = Decision(number=f"FN.3120.{key}.{year}", document_type="decyzja", year=year,
                            issued_on=delivered - dt.timedelta(days=3), delivered_on=delivered, source="local", source_key=f"D-{key}")
    elif document == "deklaracja":
        decision = Decision(number=f"DN-1/{key}/{year}", document_type="deklaracja", year=year, source="local", source_key=f"D-{key}")
    return ops.assess_liability(
        session, tax_kind=kind, payer_type=payer, year=year, amount=sum(Decimal(a) for a in amounts), parties=parties,
        installments=[(due, Decimal(a)) for due, a in zip(dues, amounts)], booked_on=delivered or D(year, 1, 31),
        source="local", source_key=key, decision=decision, description=f"{kind} {key}",
    )


@pytest.fixture
def ledger(runtime, create_taxpayer, create_user):
    clerk = create_user("clerk")
    late = create_taxpayer(first_name="Łukasz", last_name="Żak")
    twin = create_taxpayer(first_name="Łukasz", last_name="Żak")
    partner = create_taxpayer(first_name="Anna", last_name="Zalewska")
    company = create_taxpayer("legal", name="Żuraw sp. z o.o.")
    punctual = create_taxpayer(first_name="Adam", last_name="Abacki")
    lower = create_taxpayer(first_name="ewa", last_name="adamska")
    with transaction(runtime.session_factory) as session:
        # delivered 10 March: the first installment falls due 14 days later (art. 47 §2 OP)
        main = liability(session, "A", [(late.id, "principal")], [3000, 3000, 3000, 3000], delivered=D(2025, 3, 10))
        shared = liability(session, "S", [(partner.id, "principal"), (late.id, "co_owner")], [400, 400, 400, 400])
        liability(session, "T", [(twin.id, "principal")], [150, 150, 150, 150])
        liability(session, "P", [(punctual.id, "principal")], [100, 100, 100, 100])
        small = liability(session, "E", [(lower.id, "principal")], [60, 60, 60, 60])
        monthly = [D(2025, month, 15) for month in range(1, 13)]
        liability(session, "C", [(company.id, "principal")], [1000] * 12, dues=monthly, payer="legal", delivered=None,
                  document="deklaracja")
        liability(session, "W", [(late.id, "principal")], ["90.50", "90.50", "90.50", "90.50"], kind="odpady",
                  year=2026, dues=[D(2026, 3, 15), D(2026, 5, 15), D(2026, 9, 15), D(2026, 11, 15)], delivered=D(2026, 1, 2),
                  document=None)
        session.flush()
        pay = ops.post_payment
        pay(session, taxpayer_id=late.id, amount=Decimal("3000.00"), paid_on=D(2025, 3, 24), payment_ref="L1")  # on time
        pay(session, taxpayer_id=late.id, amount=Decimal("1000.00"), paid_on=D(2025, 7, 10), payment_ref="L2")  # partial, late
        pay(session, taxpayer_id=late.id, amount=Decimal("2500.00"), paid_on=D(2025, 12, 1), payment_ref="L3")
        pay(session, taxpayer_id=partner.id, amount=Decimal("400.00"), paid_on=D(2025, 3, 14), payment_ref="S1")
        pay(session, taxpayer_id=late.id, amount=Decimal("400.00"), paid_on=D(2025, 8, 1), payment_ref="S2")  # the co-owner, late
        pay(session, taxpayer_id=punctual.id, amount=Decimal("400.00"), paid_on=D(2025, 3, 1), payment_ref="P1")
        pay(session, taxpayer_id=company.id, amount=Decimal("7000.00"), paid_on=D(2025, 6, 30), payment_ref="C1")
        pay(session, taxpayer_id=company.id, amount=Decimal("2000.01"), paid_on=D(2026, 1, 10), payment_ref="C2")
        pay(session, taxpayer_id=late.id, amount=Decimal("90.50"), paid_on=D(2026, 6, 1), payment_ref="W1")
        pay(session, taxpayer_id=lower.id, amount=Decimal("60.00"), paid_on=D(2025, 4, 1), payment_ref="E1")
        pay(session, taxpayer_id=punctual.id, amount=Decimal("9999.99"), paid_on=D(2025, 5, 2), payment_ref="P2")  # too much
        ops.manual_posting(session, taxpayer_id=partner.id, kind="odpis", amount=Decimal("150.00"), value_date=D(2025, 10, 1),
                           reason="decyzja zmieniająca", author=session.merge(clerk), installment_id=shared.installments[3].id)
        # a correction of the last installment of the main liability, and one on the liability as a whole
        przypis = session.scalars(sa.select(Posting).where(Posting.installment_id == main.installments[3].id,
                                                           Posting.kind == "przypis")).one()
        session.add(Posting(taxpayer_id=late.id, liability_id=main.id, installment_id=main.installments[3].id, kind="korekta",
                            amount=Decimal("-500.00"), booked_on=D(2025, 10, 2), value_date=D(2025, 10, 2), origin="system",
                            corrects_id=przypis.id, source="local", source_key="K1"))
        session.add(Posting(taxpayer_id=lower.id, liability_id=small.id, kind="korekta", amount=Decimal("-20.00"),
                            booked_on=D(2025, 10, 2), value_date=D(2025, 10, 2), origin="system", corrects_id=przypis.id,
                            source="local", source_key="K2"))
    return {"late": late, "twin": twin, "partner": partner, "company": company, "punctual": punctual, "lower": lower}


@pytest.mark.parametrize("day", [D(2025, 3, 20), D(2025, 6, 30), D(2025, 12, 31), D(2026, 11, 22)])
def test_the_run_gives_what_the_account_gives(runtime, ledger, day):
    with runtime.session_factory() as session:
        expected = reference(session, day)
    with runtime.session_factory() as session:
        assert produced(session, day) == expected
    assert expected, "the ledger has arrears on every day asked"


def test_the_lines_come_in_the_order_of_the_names_and_the_minimum_holds(runtime, ledger):
    day = D(2026, 11, 22)
    with runtime.session_factory() as session:
        lines = reminders.reminder_lines(session, day)
    names = [(line.name, line.taxpayer_id) for line in lines]
    assert names == sorted(names)  # code point order: "Anna..." < "ewa..." (lower case after upper), "Ł" after "Z"
    twins = [line.taxpayer_id for line in lines if line.name == "Łukasz Żak"]
    assert twins == sorted(twins) and len(twins) == 2
    assert ledger["punctual"].id not in {line.taxpayer_id for line in lines}
    # a co-owner's arrears are on the principal's line, the co-owner's own liabilities on theirs
    partner = next(line for line in lines if line.taxpayer_id == ledger["partner"].id)
    assert [item.description for item in partner.liabilities] == ["nieruchomosci S"]
    smallest = min(line.zaleglosc + line.odsetki for line in lines)
    with runtime.session_factory() as session:
        above = produced(session, day, smallest)
        assert above == reference(session, day, smallest)
    assert len(above) == len(lines) - 1
    # the CSV export takes the lines as they come
    csv_text = reminders.reminders_csv(iter(lines), day)
    assert csv_text.count("\n") == len(lines) + 1


def test_a_run_leaves_nothing_behind_and_can_run_again(runtime, ledger):
    day = D(2026, 11, 22)
    with runtime.session_factory() as session:
        first = produced(session, day)
        second = produced(session, day)  # the same transaction: the temporary table was dropped
        partly = reminders.iter_reminder_lines(session, day)
        next(partly)
        partly.close()  # a consumer that stops early
        assert produced(session, day) == first == second


def test_a_gmina_without_arrears(runtime):
    with runtime.session_factory() as session:
        assert reminders.reminder_lines(session, D(2026, 11, 22)) == []
