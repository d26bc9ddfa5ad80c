"""Clerk pages of the taxes module: ledger, manual postings, interest calculator, reminders run."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from platforma.taxes import operations as ops
from platforma.taxes.models import Posting
from tests.conftest import csrf_from

D = dt.date


def assess(runtime, taxpayer_id, key="L1", amount=12000):
    with transaction(runtime.session_factory) as session:
        parts = [(D(2025, 3, 15), amount // 4), (D(2025, 5, 15), amount // 4), (D(2025, 9, 15), amount // 4), (D(2025, 11, 15), amount // 4)]
        liability = ops.assess_liability(
            session, tax_kind="nieruchomosci", payer_type="natural", year=2025, amount=Decimal(amount), parties=[(taxpayer_id, "principal")],
            installments=[(d, Decimal(a)) for d, a in parts], booked_on=D(2025, 2, 20), source="local", source_key=key,
            description="Podatek od nieruchomości 2025",
        )
        return [i.id for i in liability.installments]


def test_ledger_is_audited_and_manual_posting_needs_a_reason(logged_in, create_user, create_taxpayer, runtime):
    clerk, person = create_user("clerk"), create_taxpayer()
    inst = assess(runtime, person.id)
    client = logged_in(clerk)
    page = client.get(f"/urzad/podatnicy/{person.id}/ksiegowania")
    assert page.status_code == 200 and page.get_data(as_text=True).count("przypis") >= 4
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(AuditEntry.action).where(AuditEntry.taxpayer_id == person.id)).all() == ["taxpayer.ledger_view"]

    form = client.get(f"/urzad/podatnicy/{person.id}/ksiegowania/nowe")
    data = {"kind": "odpis", "installment": str(inst[3]), "amount": "1 000,00", "value_date": "2025-06-01", "csrf_token": csrf_from(form.data)}
    refused = client.post(f"/urzad/podatnicy/{person.id}/ksiegowania/nowe", data={**data, "reason": ""})
    assert refused.status_code == 200 and "Podaj podstawę księgowania" in refused.get_data(as_text=True)
    bad = client.post(f"/urzad/podatnicy/{person.id}/ksiegowania/nowe", data={**data, "amount": "tysiąc", "reason": "x"})
    assert "Wpisz kwotę w złotych" in bad.get_data(as_text=True)
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Posting).where(Posting.origin == "manual")) == 0

    done = client.post(f"/urzad/podatnicy/{person.id}/ksiegowania/nowe", data={**data, "reason": "decyzja zmieniająca FN.3120.7.2025"})
    assert done.status_code == 302
    with runtime.session_factory() as session:
        posting = session.scalars(sa.select(Posting).where(Posting.origin == "manual")).one()
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "posting.manual")).one()
    assert (posting.kind, posting.amount, posting.created_by_id) == ("odpis", Decimal("1000.00"), clerk.id)
    assert entry.taxpayer_id == person.id and entry.details["reason"] == "decyzja zmieniająca FN.3120.7.2025"


def test_residents_cannot_post(logged_in, create_user, create_taxpayer):
    person = create_taxpayer()
    client = logged_in(create_user())
    assert client.get(f"/urzad/podatnicy/{person.id}/ksiegowania/nowe").status_code == 403


def test_interest_calculator_matches_the_rules(logged_in, create_user):
    client = logged_in(create_user("clerk"))
    page = client.get("/urzad/narzedzia/odsetki?amount=1000,00&due=2024-03-15&paid=2024-04-15&rate=standard").get_data(as_text=True)
    assert "Odsetki: 12,00\u00a0zł" in page and "12,3151" in page and "14,50%" in page
    shifted = client.get("/urzad/narzedzia/odsetki?amount=500&due=2025-03-15&paid=2025-03-20&rate=standard").get_data(as_text=True)
    assert "przesunięty z 15.03.2025" in shifted and "Odsetek nie pobiera się" in shifted
    bad = client.get("/urzad/narzedzia/odsetki?amount=abc&due=2024-02-30&paid=2024-04-15&rate=standard").get_data(as_text=True)
    assert "Wpisz kwotę w złotych" in bad and "Odsetki:" not in bad


def test_reminders_run_lists_arrears_exports_csv_and_posts_costs_once(logged_in, create_user, create_taxpayer, runtime):
    late, punctual = create_taxpayer(), create_taxpayer()
    assess(runtime, late.id, "L1")
    assess(runtime, punctual.id, "L2")
    with transaction(runtime.session_factory) as session:
        ops.post_payment(session, taxpayer_id=punctual.id, amount=Decimal("6000.00"), paid_on=D(2025, 3, 1), payment_ref="P")
    client = logged_in(create_user("clerk"))
    page = client.get("/urzad/narzedzia/upomnienia?as_of=2025-06-30").get_data(as_text=True)
    assert "Podatnicy z zaległościami: 1" in page and late.display_name in page and punctual.display_name not in page
    # 3000 due 17 March: 105 days at 14.50/13.50%; 3000 due 15 May: 46 days at 13.50%
    csv_text = client.get("/urzad/narzedzia/upomnienia?as_of=2025-06-30&format=csv").get_data(as_text=True)
    assert csv_text.startswith("\ufeffnumer podatnika;") and f"{late.id};{late.display_name}" in csv_text
    assert ";6000,00;" in csv_text

    form = client.get("/urzad/narzedzia/upomnienia?as_of=2025-06-30")
    for _ in range(2):  # issuing twice on the same day posts the cost once
        response = client.post("/urzad/narzedzia/upomnienia", data={"as_of": "2025-06-30", "minimum": "", "csrf_token": csrf_from(form.data)})
        assert response.status_code == 200 and response.mimetype == "application/pdf" and response.data.startswith(b"%PDF")
    with runtime.session_factory() as session:
        costs = session.scalars(sa.select(Posting).where(Posting.kind == "koszty_upomnienia")).all()
    assert [(c.taxpayer_id, c.amount) for c in costs] == [(late.id, Decimal("16.00"))]
    big = client.get("/urzad/narzedzia/upomnienia?as_of=2025-06-30&minimum=100000").get_data(as_text=True)
    assert "Podatnicy z zaległościami: 0" in big
