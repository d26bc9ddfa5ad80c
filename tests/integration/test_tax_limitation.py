"""Przedawnienie (art. 70 OP) on both databases: an installment whose liability expired is not owed on
the account page, in `platforma taxes balance`, in the reminders run, in what can be paid online, nor
chosen by a payment's allocation; it is in the archive with the day it expired. A clerk's
interruption, suspension and its end recompute the date at once (the page's kept rendering too),
are audited and cannot be changed."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.accounts import operations as account_ops
from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from platforma.payments.queries import payable
from platforma.taxes import operations as ops
from platforma.taxes import views
from platforma.taxes.cli import account_json
from platforma.taxes.models import Decision, LimitationRecord
from platforma.taxes.queries import account
from platforma.web.filters import today_warsaw
from tests.conftest import csrf_from, login
from tests.integration.test_tax_reminders_run import produced, reference

D = dt.date
TODAY = D(2026, 12, 7)


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).replace("\xa0", " "))


def zl(value) -> str:
    return f"{Decimal(value):,.2f}".replace(",", " ").replace(".", ",") + " zł"


def quarters(year):
    return [D(year, 3, 15), D(year, 5, 15), D(year, 9, 15), D(year, 11, 15)]


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch):
    """The pages and `today_warsaw` answer as on 7 December 2026 (the 2020 liability has expired)."""
    monkeypatch.setattr(views, "today_warsaw", lambda: TODAY)
    monkeypatch.setattr("platforma.taxes.backoffice.today_warsaw", lambda: TODAY)


@pytest.fixture
def old_debts(runtime, create_user, create_taxpayer):
    """A resident whose 2020 property tax is unpaid after its first installment (expired with the end
    of 2025), with a 2021 tax (expires with the end of 2026) and a 2026 one, both unpaid."""
    resident, person = create_user(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        def assess(year, amounts, dues, key):
            decision = Decision(number=f"FN.3120.{key}.{year}", document_type="decyzja", year=year,
                                issued_on=D(year, 2, 10), delivered_on=D(year, 2, 14), source="local", source_key=f"D-{key}")
            return ops.assess_liability(
                session, tax_kind="nieruchomosci", payer_type="natural", year=year, amount=sum(Decimal(a) for a in amounts),
                parties=[(person.id, "principal")], installments=[(d, Decimal(a)) for d, a in zip(dues, amounts)],
                booked_on=D(year, 2, 14), source="local", source_key=key, decision=decision, description=f"Podatek {year}")
        old = assess(2020, [500, 500, 500, 500], quarters(2020), "OLD")
        young = assess(2021, [300], [D(2021, 3, 15)], "YOUNG")
        current = assess(2026, [400], [D(2026, 3, 15)], "NEW")
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("500.00"), paid_on=D(2020, 3, 16), payment_ref="P1")
        account_ops.link_taxpayer(session, user=session.merge(resident), taxpayer=session.merge(person), relation="self",
                                  granted_by=None)
        ids = {"old": old.id, "young": young.id, "current": current.id,
               "old_installments": [i.id for i in old.installments]}
    return {"resident": resident, "person": person, **ids}


def state_on(runtime, taxpayer_id, day=TODAY):
    with runtime.session_factory() as session:
        return account(session, taxpayer_id, day)


def test_an_expired_liability_is_not_owed_anywhere(runtime, logged_in, old_debts):
    person = old_debts["person"]
    state = state_on(runtime, person.id)
    old = next(item for item in state.liabilities if item.id == old_debts["old"])
    assert [i.status for i in old.installments] == ["paid", "expired", "expired", "expired"]
    assert (old.zaleglosc, old.odsetki, old.biezace, old.przedawnione) == (0, 0, 0, Decimal("1500.00"))
    assert old.przedawnione_on == D(2025, 12, 31) and old.archived and old.przedawnione_odsetki > 0
    owed = [item for item in state.liabilities if item.id != old_debts["old"]]
    assert state.zaleglosc == Decimal("700.00") == sum(item.zaleglosc for item in owed)
    assert state.do_zaplaty == state.zaleglosc + state.odsetki
    # the day before it expired it was still owed, with its interest
    before = state_on(runtime, person.id, D(2025, 12, 31))
    assert next(i for i in before.liabilities if i.id == old_debts["old"]).zaleglosc == Decimal("1500.00")

    # the page: not in the year's table, in the archive with the day; the same figures as the JSON
    client = logged_in(old_debts["resident"])
    response = client.get(f"/podatki/{person.id}/")
    html, page = response.get_data(as_text=True), text_of(response)
    assert f'data-liability="{old_debts["old"]}"' not in html and "Rok 2020" not in page
    archived = re.search(rf'<tr class="govuk-table__row" data-archived="{old_debts["old"]}">(.*?)</tr>', html, re.S).group(1)
    archived = text_of_html(archived)
    assert "31.12.2025" in archived and zl("1500") in archived and zl(old.przedawnione_odsetki) in archived
    assert "Archiwum (zobowiązania przedawnione)" in page
    assert re.search(r'id="do-zaplaty-dzis">([^<]+)<', html).group(1).replace("\xa0", " ") == zl(state.do_zaplaty)
    data = account_json(state)
    [old_json] = [item for item in data["liabilities"] if item["id"] == old_debts["old"]]
    assert (old_json["przedawnione"], old_json["przedawnione_on"], old_json["archived"]) == ("1500.00", "2025-12-31", True)
    assert (old_json["zaleglosc"], old_json["do_zaplaty"]) == ("0", "0")
    assert [i["status"] for i in old_json["installments"]] == ["paid", "expired", "expired", "expired"]
    assert data["do_zaplaty"] == str(state.do_zaplaty) and data["przedawnione"] == str(state.przedawnione)
    liability_page = text_of(client.get(f"/podatki/{person.id}/zobowiazania/{old_debts['old']}"))
    assert "przedawniona" in liability_page and "31.12.2025" in liability_page

    with runtime.session_factory() as session:
        # nothing of it can be paid online, and a payment does not reach it
        offered = payable(session, person.id, TODAY)
        assert not {i.id for i in offered.installments} & set(old_debts["old_installments"])
        plan = ops.plan_allocation(session, taxpayer_id=person.id, amount=Decimal("5000.00"), paid_on=TODAY)
        assert not {int(p.key) for p in plan.parts} & set(old_debts["old_installments"])
        assert plan.overpayment == Decimal("5000.00") - state.do_zaplaty
        # nor a designated one (art. 62 §1 cannot designate what no longer exists)
        designated = ops.plan_allocation(session, taxpayer_id=person.id, amount=Decimal("100.00"), paid_on=TODAY,
                                         designated_installment_ids=[old_debts["old_installments"][1]])
        assert int(designated.parts[0].key) not in old_debts["old_installments"]


def text_of_html(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment).replace("\xa0", " "))


@pytest.mark.parametrize("day", [D(2025, 12, 31), D(2026, 1, 1), TODAY, D(2027, 1, 1)])
def test_the_reminders_run_agrees(runtime, old_debts, day):
    with runtime.session_factory() as session:
        lines = produced(session, day)
        assert lines == reference(session, day)
    names = [item[2] for line in lines for item in line[4]]
    assert ("Podatek 2020" in names) == (day <= D(2025, 12, 31))
    assert ("Podatek 2021" in names) == (day <= D(2026, 12, 31))


def test_a_clerk_interrupts_the_limitation_and_the_page_shows_it_at_once(runtime, logged_in, create_user, old_debts):
    person = old_debts["person"]
    resident = logged_in(old_debts["resident"])
    before = resident.get(f"/podatki/{person.id}/")
    assert f'data-archived="{old_debts["old"]}"' in before.get_data(as_text=True)
    assert text_of(resident.get(f"/podatki/{person.id}/")) == text_of(before)  # served from the kept rendering

    clerk = create_user("clerk")
    office = resident.application.test_client()
    assert login(office, clerk).status_code == 302
    form = office.get(f"/urzad/podatnicy/{person.id}/przedawnienie")
    assert form.status_code == 200 and "31.12.2025" in text_of(form)
    data = {"liability": str(old_debts["old"]), "kind": "przerwanie", "occurred_on": "2024-05-10", "until": "", "ends": "",
            "csrf_token": csrf_from(form.data)}
    refused = office.post(f"/urzad/podatnicy/{person.id}/przedawnienie", data={**data, "reason": " "})
    assert refused.status_code == 400 and "Podaj podstawę wpisu" in text_of(refused)
    future = office.post(f"/urzad/podatnicy/{person.id}/przedawnienie", data={**data, "occurred_on": "2027-01-01", "reason": "x"})
    assert future.status_code == 400 and "nie może być późniejsza niż dziś" in text_of(future)
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(LimitationRecord)) == 0
    done = office.post(f"/urzad/podatnicy/{person.id}/przedawnienie",
                       data={**data, "reason": "zajęcie rachunku bankowego, tytuł wykonawczy 12/2024, zawiadomienie 10.05.2024"})
    assert done.status_code == 302

    after = resident.get(f"/podatki/{person.id}/")
    html = after.get_data(as_text=True)
    assert f'data-archived="{old_debts["old"]}"' not in html and f'data-liability="{old_debts["old"]}"' in html
    state = state_on(runtime, person.id)
    old = next(item for item in state.liabilities if item.id == old_debts["old"])
    assert old.zaleglosc == Decimal("1500.00") and old.installments[1].limitation_date == D(2029, 5, 10)
    assert re.search(r'id="do-zaplaty-dzis">([^<]+)<', html).group(1).replace("\xa0", " ") == zl(state.do_zaplaty)
    pages = runtime.extras["taxes.account_pages"]
    assert (pages.misses, pages.hits) == (2, 1)  # rendered again: the trigger raised the liability's revision
    with runtime.session_factory() as session:
        [entry] = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "limitation.recorded")).all()
        assert entry.taxpayer_id == person.id and entry.actor_id == clerk.id and entry.details["kind"] == "przerwanie"
    # append-only: the database refuses a change and a deletion
    for statement in ("UPDATE limitation_record SET occurred_on = '2025-01-01'", "DELETE FROM limitation_record"):
        with pytest.raises(sa.exc.DBAPIError):
            with transaction(runtime.session_factory) as session:
                session.execute(sa.text(statement))


def test_a_suspension_then_its_end(runtime, create_user, old_debts):
    person, clerk = old_debts["person"], create_user("clerk")

    def record(**values):
        with transaction(runtime.session_factory) as session:
            return ops.record_limitation(session, taxpayer_id=person.id, liability_id=old_debts["old"], author=clerk,
                                         today=TODAY, reason="skarga do WSA na decyzję", **values).id

    suspension = record(kind="zawieszenie", occurred_on=D(2025, 6, 1))
    old = next(i for i in state_on(runtime, person.id).liabilities if i.id == old_debts["old"])
    assert old.zaleglosc == Decimal("1500.00") and old.installments[1].limitation_date is None
    with pytest.raises(ops.PostingError, match="Wskaż zawieszenie"):
        record(kind="koniec_zawieszenia", occurred_on=D(2025, 6, 30))
    record(kind="koniec_zawieszenia", occurred_on=D(2025, 6, 30), ends_id=suspension)  # 30 days suspended
    with pytest.raises(ops.PostingError, match="ma już datę końca"):
        record(kind="koniec_zawieszenia", occurred_on=D(2025, 7, 30), ends_id=suspension)
    old = next(i for i in state_on(runtime, person.id).liabilities if i.id == old_debts["old"])
    assert old.przedawnione_on == D(2026, 1, 30) and old.zaleglosc == 0
    assert next(i for i in state_on(runtime, person.id, D(2026, 1, 30)).liabilities if i.id == old_debts["old"]).zaleglosc > 0
    with runtime.session_factory() as session:
        assert produced(session, D(2026, 1, 30)) == reference(session, D(2026, 1, 30))
    # a mortgage (art. 70 §8): it does not expire
    record(kind="zabezpieczenie", occurred_on=D(2021, 4, 1))
    assert next(i for i in state_on(runtime, person.id).liabilities if i.id == old_debts["old"]).zaleglosc == Decimal("1500.00")


def test_residents_cannot_record(runtime, logged_in, old_debts):
    client = logged_in(old_debts["resident"])
    assert client.get(f"/urzad/podatnicy/{old_debts['person'].id}/przedawnienie").status_code == 403
