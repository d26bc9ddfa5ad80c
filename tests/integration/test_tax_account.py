"""A taxpayer's account on both databases: assessment, payments allocated by law, interest as of any day.

The expected figures are worked out by hand in the comments from the formula Kz × L × O / 365.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from platforma.taxes import operations as ops
from platforma.taxes.models import Decision, Posting
from platforma.taxes.queries import account

D = dt.date


@pytest.fixture
def assess(runtime):
    def make(taxpayer_ids, amount=12000, parts=None, year=2025, kind="nieruchomosci", key="L1", delivered=D(2025, 2, 20)):
        parts = parts or [(D(year, 3, 15), 3000), (D(year, 5, 15), 3000), (D(year, 9, 15), 3000), (D(year, 11, 15), 3000)]
        with transaction(runtime.session_factory) as session:
            decision = Decision(number=f"FN.3120.{key}.{year}", document_type="decyzja", year=year, issued_on=delivered - dt.timedelta(days=5),
                                delivered_on=delivered, source="local", source_key=f"D-{key}")
            roles = ["principal"] + ["co_owner"] * (len(taxpayer_ids) - 1)
            liability = ops.assess_liability(
                session, tax_kind=kind, payer_type="natural", year=year, amount=Decimal(amount),
                parties=list(zip(taxpayer_ids, roles)), installments=[(d, Decimal(a)) for d, a in parts],
                booked_on=delivered, source="local", source_key=key, decision=decision, description=f"Podatek od nieruchomości {year}",
            )
            return liability.id, [i.id for i in liability.installments]

    return make


def pay(runtime, taxpayer_id, amount, day, ref, designated=None):
    with transaction(runtime.session_factory) as session:
        return ops.post_payment(session, taxpayer_id=taxpayer_id, amount=Decimal(amount), paid_on=day, payment_ref=ref,
                                designated_installment_ids=designated)


def state(runtime, taxpayer_id, day):
    with runtime.session_factory() as session:
        return account(session, taxpayer_id, day)


def test_a_year_of_a_property_tax(runtime, create_taxpayer, assess):
    person = create_taxpayer()
    liability_id, inst = assess([person.id])

    before = state(runtime, person.id, D(2025, 3, 10))
    [item] = before.liabilities
    assert (item.przypis, item.zaleglosc, item.biezace, item.odsetki) == (12000, 0, 12000, 0)
    assert [i.status for i in item.installments] == ["due"] * 4
    assert [i.due for i in item.installments] == [D(2025, 3, 17), D(2025, 5, 15), D(2025, 9, 15), D(2025, 11, 17)]

    pay(runtime, person.id, "3000.00", D(2025, 3, 17), "P1")  # on the (shifted) due date: no interest
    june = state(runtime, person.id, D(2025, 6, 30)).liabilities[0]
    # the 2nd installment is 46 days late (16 May - 30 June) at 13.50%: 3000 × 46 × 13.5 / 36500 = 51.04 -> 51
    assert [i.status for i in june.installments] == ["paid", "overdue", "due", "due"]
    assert (june.zaleglosc, june.odsetki, june.do_zaplaty, june.wplaty) == (3000, 51, 3051, 3000)

    # a partial payment on 10 July: interest 53.2603 (48 days at 13.50%) + 8.5479 (8 days at 13.00%) = 62;
    # art. 55 §2: 1000 × 3000 / 3062 = 979.75 to the arrear, 20.25 to the interest
    posted = pay(runtime, person.id, "1000.00", D(2025, 7, 10), "P2")
    [part] = posted.parts
    assert (part.principal, part.interest, part.interest_due) == (Decimal("979.75"), Decimal("20.25"), 62)
    july = state(runtime, person.id, D(2025, 7, 31)).liabilities[0]
    # left: 2020.25 and 41.75 of interest; since 10 July: 2020.25 × 21 × 13 / 36500 = 15.11 -> 15
    assert july.installments[1].left == Decimal("2020.25")
    assert july.installments[1].interest == Decimal("56.75")
    assert july.installments[1].status == "overdue"

    # 5000 on 1 August clears the 2nd installment (2020.25 + 41.75 + 16) and goes on to the 3rd, not yet due
    pay(runtime, person.id, "5000.00", D(2025, 8, 1), "P3")
    august = state(runtime, person.id, D(2025, 8, 1)).liabilities[0]
    assert [i.status for i in august.installments] == ["paid", "paid", "partly_paid", "due"]
    assert august.installments[2].left == Decimal("78.00")
    assert (august.zaleglosc, august.odsetki) == (0, 0)

    # paying too much leaves an overpayment, kept and shown
    posted = pay(runtime, person.id, "4000.00", D(2025, 8, 2), "P4")
    assert posted.overpayment == Decimal("922.00")
    final = state(runtime, person.id, D(2025, 12, 31))
    assert final.nadplata == Decimal("922.00") and final.do_zaplaty == 0
    assert [i.status for i in final.liabilities[0].installments] == ["paid"] * 4
    assert final.liabilities[0].wplaty == Decimal("12078.00")  # 12,000 of tax + 78 of interest collected
    assert [(p.ref, p.total, p.interest) for p in final.payments] == [
        ("P4", Decimal("4000.00"), 0), ("P3", Decimal("5000.00"), Decimal("57.75")),
        ("P2", Decimal("1000.00"), Decimal("20.25")), ("P1", Decimal("3000.00"), 0)]

    # looking back: the account as of any earlier day is what it was then
    assert state(runtime, person.id, D(2025, 6, 30)).liabilities[0].odsetki == 51


def test_every_grosz_of_every_payment_is_posted_once(runtime, create_taxpayer, assess):
    person = create_taxpayer()
    assess([person.id])
    for ref, amount, day in [("A", "1234.56", D(2025, 4, 1)), ("B", "999.99", D(2025, 6, 1)), ("C", "20000.00", D(2025, 12, 1))]:
        pay(runtime, person.id, amount, day, ref)
    again = pay(runtime, person.id, "1234.56", D(2025, 4, 1), "A")
    assert again.repeated
    with runtime.session_factory() as session:
        rows = session.execute(sa.select(Posting.payment_ref, Posting.kind, Posting.amount).where(Posting.payment_ref.isnot(None))).all()
    for ref, amount in [("A", "1234.56"), ("B", "999.99"), ("C", "20000.00")]:
        assert sum(a for r, k, a in rows if r == ref and k in ("wplata", "nadplata")) == Decimal(amount)


def test_co_owners_share_one_liability(runtime, create_taxpayer, assess):
    wife, husband = create_taxpayer(), create_taxpayer()
    assess([wife.id, husband.id])
    pay(runtime, husband.id, "3000.00", D(2025, 3, 14), "H1")  # either co-owner's payment counts for both
    for taxpayer in (wife, husband):
        [item] = state(runtime, taxpayer.id, D(2025, 4, 1)).liabilities
        assert item.installments[0].status == "paid" and item.przypis == 12000


def test_designated_installment_is_paid_first(runtime, create_taxpayer, assess):
    person = create_taxpayer()
    _, inst = assess([person.id])
    pay(runtime, person.id, "3000.00", D(2025, 3, 1), "X", designated=[inst[3]])
    item = state(runtime, person.id, D(2025, 3, 1)).liabilities[0]
    assert [i.paid for i in item.installments] == [0, 0, 0, 3000]


def test_reminder_costs_are_paid_first_and_manual_postings_need_a_reason(runtime, create_taxpayer, create_user, assess):
    person, clerk = create_taxpayer(), create_user("clerk")
    assess([person.id])
    with pytest.raises(ops.PostingError, match="Podaj podstawę"):
        with transaction(runtime.session_factory) as session:
            ops.manual_posting(session, taxpayer_id=person.id, kind="koszty_upomnienia", amount=Decimal("16.00"),
                               value_date=D(2025, 4, 1), reason="  ", author=clerk)
    with transaction(runtime.session_factory) as session:
        ops.manual_posting(session, taxpayer_id=person.id, kind="koszty_upomnienia", amount=Decimal("16.00"),
                           value_date=D(2025, 3, 10), reason="upomnienie nr 12/2025", author=clerk)
    assert state(runtime, person.id, D(2025, 3, 10)).koszty == Decimal("16.00")
    posted = pay(runtime, person.id, "100.00", D(2025, 3, 17), "K1")  # on the due date: no interest yet
    assert posted.costs == Decimal("16.00") and posted.parts[0].principal == Decimal("84.00")
    assert state(runtime, person.id, D(2025, 3, 17)).koszty == 0
    # 16 days later the rest of the installment carries interest: 2916 × 16 × 14.5 / 36500 = 18.53 -> 19
    assert state(runtime, person.id, D(2025, 4, 2)).liabilities[0].installments[0].interest == 19
    with runtime.session_factory() as session:
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "posting.manual")).one()
    assert entry.taxpayer_id == person.id and entry.details["reason"] == "upomnienie nr 12/2025"


def test_late_delivery_moves_the_due_date_used_for_interest(runtime, create_taxpayer, assess):
    person = create_taxpayer()
    assess([person.id], delivered=D(2025, 3, 10))  # art. 47 §2: the 1st installment is due 24 March
    item = state(runtime, person.id, D(2025, 3, 24)).liabilities[0]
    assert item.installments[0].due == D(2025, 3, 24) and item.installments[0].status == "due"
    assert state(runtime, person.id, D(2025, 3, 25)).liabilities[0].installments[0].status == "overdue"


def test_balance_command_shows_the_same_numbers(runtime, create_taxpayer, assess, database_url, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from platforma.instance import render_config

    person = create_taxpayer()
    assess([person.id])
    pay(runtime, person.id, "1000.00", D(2025, 7, 10), "P1")
    config = tmp_path / "gmina.toml"
    config.write_text(render_config().replace('url = "sqlite:///platforma.sqlite3"', f'url = "{database_url}"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMA")} | {"PLATFORMA_CONFIG": str(config)}
    result = subprocess.run([sys.executable, "-m", "platforma.cli", "taxes", "balance", "--taxpayer", str(person.id), "--as-of", "2025-07-31"],
                            cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    expected = state(runtime, person.id, D(2025, 7, 31))
    assert data["zaleglosc"] == str(expected.zaleglosc) and data["odsetki"] == str(expected.odsetki)
    assert data["liabilities"][0]["installments"][0]["status"] == "partly_paid" or data["liabilities"][0]["installments"][0]["status"] == "overdue"
    assert data["do_zaplaty"] == str(expected.do_zaplaty)
    missing = subprocess.run([sys.executable, "-m", "platforma.cli", "taxes", "balance", "--taxpayer", "999999"],
                             cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "nie ma podatnika o numerze 999999" in missing.stderr
