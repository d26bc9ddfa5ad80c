"""The demo gmina's taxes on both databases: every kind, three years, payments of every sort, loaded once.

The whole demo is loaded once per database in one test (it posts some seven thousand payments), then
every expectation is checked on it, and a second load must add nothing.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa

from platforma.core.db import transaction
from platforma.demo.load import load_demo
from platforma.demo.taxes import TODAY
from platforma.taxes.models import TAX_KINDS, Decision, Installment, Liability, LiabilityBasis, LiabilityParty, Posting, Taxpayer
from platforma.taxes.queries import account


def _counts(session) -> dict[str, int]:
    return {model.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Liability, Installment, Posting, Decision, LiabilityBasis, LiabilityParty)}


def test_demo_taxes_cover_every_kind_and_every_way_of_paying(runtime):
    with transaction(runtime.session_factory) as session:
        created = load_demo(session)
    assert created["liabilities"] > 1000 and created["payments"] > 1000
    # the demo's bank statement: matched by individual account, PESEL and decision number; two wait for a clerk
    assert created["statement_entries"] == 8
    with runtime.session_factory() as session:
        from platforma.payments.models import StatementLine

        statuses = dict(session.execute(sa.select(StatementLine.matched_by, sa.func.count()).group_by(StatementLine.matched_by)).all())
        unmatched = session.scalar(sa.select(sa.func.count()).select_from(StatementLine).where(StatementLine.status == "unmatched"))
    assert statuses == {"account": 3, "pesel": 1, "decision": 1, "": 3} and unmatched == 2

    with runtime.session_factory() as session:
        ids = dict(session.execute(sa.select(Taxpayer.source_key, Taxpayer.id).where(Taxpayer.source == "demo")).all())
        liabilities = session.execute(sa.select(Liability.id, Liability.tax_kind, Liability.payer_type, Liability.year,
                                                Liability.amount, Liability.decision_id)).all()
        # every kind the platform knows is in the demo, for each of the three years
        assert {(kind, year) for _, kind, _, year, _, _ in liabilities} == {(k, y) for k in TAX_KINDS for y in (2024, 2025, 2026)}
        assert all(decision_id is not None for *_, decision_id in liabilities)

        # installments sum to the liability; taxes are whole złoty (art. 63 OP), the waste fee is in grosze
        sums: dict[int, Decimal] = defaultdict(Decimal)
        parts: dict[int, list[Decimal]] = defaultdict(list)
        for liability_id, amount in session.execute(sa.select(Installment.liability_id, Installment.amount)):
            sums[liability_id] += amount
            parts[liability_id].append(amount)
        for liability_id, kind, _payer, _year, amount, _ in liabilities:
            assert sums[liability_id] == amount > 0
            if kind != "odpady":
                assert all(a == a.to_integral_value() for a in [amount, *parts[liability_id]])
        waste = [a for liability_id, kind, *_ in liabilities if kind == "odpady" for a in parts[liability_id]]
        assert any(a != a.to_integral_value() for a in waste)  # e.g. 3 months × 31.50 zł = 94.50 zł

        # natural persons by decision, legal persons by declaration (without a delivery date)
        documents = dict(session.execute(sa.select(Liability.id, Decision.document_type).join(Decision)).all())
        delivered = dict(session.execute(sa.select(Liability.id, Decision.delivered_on).join(Decision)).all())
        for liability_id, kind, payer, *_ in liabilities:
            if kind in ("nieruchomosci", "laczne") and payer == "natural":
                assert documents[liability_id] == "decyzja" and delivered[liability_id] is not None
            else:
                assert documents[liability_id] == "deklaracja" and delivered[liability_id] is None

        # co-ownership: one decision naming two taxpayers, Jan Kowalski's among them
        parties: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for liability_id, taxpayer_id, role in session.execute(
                sa.select(LiabilityParty.liability_id, LiabilityParty.taxpayer_id, LiabilityParty.role)):
            parties[liability_id].append((taxpayer_id, role))
        shared = [p for p in parties.values() if len(p) == 2]
        assert shared and all(sorted(r for _, r in p) == ["co_owner", "principal"] for p in shared)
        assert any((ids["P00001"], "principal") in p for p in shared)
        assert not any(ids["P00002"] in {t for t, _ in p} for p in shared)  # his mother has her own house

        # the firm Jan represents pays its property tax monthly
        firm_2025 = session.scalars(
            sa.select(Liability).join(LiabilityParty).where(LiabilityParty.taxpayer_id == ids["F00001"], Liability.year == 2025,
                                                          Liability.tax_kind == "nieruchomosci")).one()
        assert len(firm_2025.installments) == 12 and firm_2025.installments[0].due_on == dt.date(2025, 1, 31)

        # no payment after the last bank statement of the demo
        assert session.scalar(sa.select(sa.func.max(Posting.value_date)).where(Posting.kind == "wplata")) <= dt.date(2026, 11, 20)

        jan = account(session, ids["P00001"], TODAY)
        assert jan.zaleglosc > 0 and jan.odsetki > 0
        [jan_2026] = [item for item in jan.liabilities if item.year == 2026 and item.tax_kind == "nieruchomosci"]
        assert [i.status for i in jan_2026.installments] == ["paid", "paid", "overdue", "paid"]
        assert account(session, ids["P00002"], TODAY).nadplata > 0
        assert account(session, ids["F00001"], TODAY).zaleglosc == 0

        # somewhere an installment is paid in part, and somebody owes interest
        partly = odsetki = 0
        for taxpayer_id in ids.values():
            state = account(session, taxpayer_id, TODAY)
            partly += sum(1 for item in state.liabilities for i in item.installments if 0 < i.paid and i.left > 0)
            odsetki += state.odsetki > 0
        assert partly > 0 and odsetki > 1
        before = _counts(session)

    with transaction(runtime.session_factory) as session:
        again = load_demo(session)
    assert again == {key: 0 for key in again}
    with runtime.session_factory() as session:
        assert _counts(session) == before
