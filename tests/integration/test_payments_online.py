"""Paying online, end to end on both databases: the resident's pages, the webhook, the state machine,
exactly-once posting under repeated, reordered and concurrent notifications.

The sandbox gateway signs its notifications like a real one (HMAC-SHA256 over the raw body); the real
gateways' protocols are tested against their simulators in test_gateway_protocols.py and, end to end
over HTTP, in test_payments_gateways_http.py.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.accounts import operations as account_ops
from platforma.core.db import transaction
from platforma.payments import flows, operations
from platforma.payments.models import Payment, PaymentEvent
from platforma.payments.queries import payable
from platforma.taxes import operations as tax_ops
from platforma.taxes.models import Decision, Posting
from platforma.taxes.queries import account
from platforma.web.filters import today_warsaw
from tests.conftest import csrf_from

D = dt.date
PAYMENTS = {"gateways": ["sandbox"], "virtual_accounts": {"enabled": True, "sort_code": "90900004", "fixed": "2001"}}


@pytest.fixture
def settings(settings_factory, database_url):
    return settings_factory(database_url, payments=PAYMENTS)


@pytest.fixture
def resident_with_arrears(runtime, create_user, create_taxpayer):
    """A resident linked to a taxpayer whose 2025 property tax (4 × 300 zł) is entirely unpaid."""
    user = create_user("resident")
    taxpayer = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        decision = Decision(number="FN.3120.7.2025", document_type="decyzja", year=2025, issued_on=D(2025, 2, 10),
                            delivered_on=D(2025, 2, 20), source="local", source_key="D7")
        liability = tax_ops.assess_liability(
            session, tax_kind="nieruchomosci", payer_type="natural", year=2025, amount=Decimal(1200),
            parties=[(taxpayer.id, "principal")],
            installments=[(D(2025, 3, 15), Decimal(300)), (D(2025, 5, 15), Decimal(300)), (D(2025, 9, 15), Decimal(300)),
                          (D(2025, 11, 15), Decimal(300))],
            booked_on=D(2025, 2, 20), source="local", source_key="L7", decision=decision, description="Podatek 2025")
        installment_ids = [i.id for i in liability.installments]
        account_ops.link_taxpayer(session, user=session.get(type(user), user.id), taxpayer=session.get(type(taxpayer), taxpayer.id),
                                  relation="self", granted_by=None, note="test")
    return user, taxpayer, installment_ids


def _postings(runtime, ref):
    with runtime.session_factory() as session:
        return session.execute(sa.select(Posting.kind, Posting.amount).where(Posting.payment_ref == ref)).all()


def _start(client, taxpayer_id, **form):
    page = client.get(f"/podatki/{taxpayer_id}/zaplac")
    assert page.status_code == 200
    preview = client.post(f"/podatki/{taxpayer_id}/zaplac", data={"csrf_token": csrf_from(page.data), **form})
    assert preview.status_code == 200, preview.data[:3000]
    html = preview.data.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))
    installments = re.findall(r'<input type="hidden" name="installment" value="(\d+)"', html)
    data = {**fields, "installment": installments}
    return preview, data


def test_resident_pays_all_arrears_and_the_page_tells_the_truth(runtime, client, logged_in, resident_with_arrears):
    user, taxpayer, installment_ids = resident_with_arrears
    logged_in(user)
    today = today_warsaw()
    with runtime.session_factory() as session:
        before = account(session, taxpayer.id, today)
    owed = before.zaleglosc + before.odsetki
    assert before.zaleglosc == Decimal(1200) and before.odsetki > 0

    preview, data = _start(client, taxpayer.id, mode="overdue")
    assert "Zapłać " in preview.data.decode() and data["expected"] == str(owed)
    started = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data)
    assert started.status_code == 303
    reference = re.search(r"/platnosci/piaskownica/(PF-[0-9A-Z]+)", started.headers["Location"]).group(1)

    # before the gateway confirms: pending, nothing posted, and the page says so
    detail = client.get(f"/platnosci/{reference}/powrot")
    assert "Czekamy na potwierdzenie" in detail.data.decode()
    assert _postings(runtime, reference) == []

    sandbox = client.get(f"/platnosci/piaskownica/{reference}")
    paid = client.post(f"/platnosci/piaskownica/{reference}", data={"csrf_token": csrf_from(sandbox.data), "action": "pay"})
    assert paid.status_code == 303
    page = client.get(paid.headers["Location"]).data.decode()
    assert "Płatność zaksięgowana" in page

    postings = _postings(runtime, reference)
    assert sum(a for k, a in postings if k == "wplata") == owed
    assert sum(a for k, a in postings if k == "odsetki") == before.odsetki
    with runtime.session_factory() as session:
        after = account(session, taxpayer.id, today)
        payment = session.scalars(sa.select(Payment).where(Payment.reference == reference)).one()
        events = [(e.kind, e.to_state) for e in session.scalars(sa.select(PaymentEvent).where(PaymentEvent.payment_id == payment.id).order_by(PaymentEvent.id))]
    assert after.zaleglosc == 0 and after.odsetki == 0 and after.nadplata == 0
    assert payment.state == "confirmed" and payment.paid_on == today and payment.designation == installment_ids
    assert events == [("created", "created"), ("registered", "pending"), ("state", "confirmed"), ("posted", None)]

    mine = client.get("/platnosci/").data.decode()
    assert reference in mine and "zapłacona" in mine
    # transfers and the till: each linked account's history of payments, one link away
    assert f'href="/podatki/{taxpayer.id}/wplaty">Historia wpłat: {taxpayer.display_name}</a>' in mine
    pdf = client.get(f"/platnosci/{reference}/potwierdzenie.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_the_same_notification_three_times_and_out_of_order_posts_once(runtime, client, logged_in, resident_with_arrears):
    user, taxpayer, installment_ids = resident_with_arrears
    logged_in(user)
    _preview, data = _start(client, taxpayer.id, mode="installments", installment=[str(installment_ids[2])])
    started = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data)
    reference = started.headers["Location"].rsplit("/", 1)[1]
    gateway = flows.configured_gateways(runtime)["sandbox"]
    with runtime.session_factory() as session:
        amount = session.scalars(sa.select(Payment.amount).where(Payment.reference == reference)).one()

    def send(outcome):
        headers, body = gateway.notification(reference, amount, outcome)
        return client.post("/platnosci/powiadomienia/sandbox", data=body, headers=headers)

    # a late "cancelled" after the confirmation must not undo it; the repeats change nothing
    assert [send("confirmed").status_code for _ in range(3)] == [200, 200, 200]
    assert send("cancelled").status_code == 200
    with runtime.session_factory() as session:
        payment = session.scalars(sa.select(Payment).where(Payment.reference == reference)).one()
        assert payment.state == "confirmed"
        assert session.scalar(sa.select(sa.func.count()).select_from(PaymentEvent).where(PaymentEvent.payment_id == payment.id, PaymentEvent.kind == "posted")) == 1
    postings = _postings(runtime, reference)
    assert sum(a for k, a in postings if k == "wplata") == amount
    # the designated installment (art. 62 §1 OP) took the money, not the oldest
    with runtime.session_factory() as session:
        installments = set(session.scalars(sa.select(Posting.installment_id).where(Posting.payment_ref == reference, Posting.kind == "wplata")))
    assert installments == {installment_ids[2]}


def test_a_cancelled_payment_confirmed_later_is_posted(runtime, client, logged_in, resident_with_arrears):
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    _preview, data = _start(client, taxpayer.id, mode="amount", amount="100,00")
    reference = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data).headers["Location"].rsplit("/", 1)[1]
    gateway = flows.configured_gateways(runtime)["sandbox"]
    for outcome in ("cancelled", "confirmed"):
        headers, body = gateway.notification(reference, Decimal("100.00"), outcome)
        assert client.post("/platnosci/powiadomienia/sandbox", data=body, headers=headers).status_code == 200
    assert sum(a for k, a in _postings(runtime, reference) if k == "wplata") == Decimal("100.00")


def test_bad_notifications_change_nothing(runtime, client, logged_in, resident_with_arrears, caplog):
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    _preview, data = _start(client, taxpayer.id, mode="amount", amount="50")
    reference = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data).headers["Location"].rsplit("/", 1)[1]
    gateway = flows.configured_gateways(runtime)["sandbox"]
    headers, body = gateway.notification(reference, Decimal("50.00"), "confirmed")

    forged = client.post("/platnosci/powiadomienia/sandbox", data=body.replace(b"50.00", b"5.00"), headers=headers)
    assert forged.status_code == 403
    assert "podpis" in caplog.text
    assert client.post("/platnosci/powiadomienia/sandbox", data=b"{", headers={"Signature": gateway.sign(b"{")}).status_code == 400
    unknown_headers, unknown_body = gateway.notification("PF-000000000000", Decimal("50.00"), "confirmed")
    assert client.post("/platnosci/powiadomienia/sandbox", data=unknown_body, headers=unknown_headers).status_code == 200
    assert "nieznanej płatności" in caplog.text
    wrong_amount_headers, wrong_amount_body = gateway.notification(reference, Decimal("5.00"), "confirmed")
    assert client.post("/platnosci/powiadomienia/sandbox", data=wrong_amount_body, headers=wrong_amount_headers).status_code == 200
    assert client.post("/platnosci/powiadomienia/nieznana", data=body, headers=headers).status_code == 404
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(Payment.state).where(Payment.reference == reference)).one() == "pending"
    assert _postings(runtime, reference) == []


def test_pressing_pay_twice_starts_one_payment(runtime, client, logged_in, resident_with_arrears):
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    _preview, data = _start(client, taxpayer.id, mode="overdue")
    first = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data)
    second = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data)
    assert first.status_code == 303 and second.status_code == 303
    assert second.headers["Location"].endswith(first.headers["Location"].rsplit("/", 1)[1] )
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1


def test_bad_choices_get_polish_messages_and_store_nothing(runtime, client, logged_in, resident_with_arrears):
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    page = client.get(f"/podatki/{taxpayer.id}/zaplac")
    token = csrf_from(page.data)
    for form, message in [({}, "Wybierz, co chcesz zapłacić"), ({"mode": "installments"}, "Zaznacz co najmniej jedną ratę"),
                          ({"mode": "amount", "amount": "abc"}, "Wpisz kwotę"), ({"mode": "amount", "amount": "-5"}, "większa od zera"),
                          ({"mode": "amount", "amount": "1,005"}, "dwa miejsca"), ({"mode": "installments", "installment": "999999"}, "Zaznacz")]:
        response = client.post(f"/podatki/{taxpayer.id}/zaplac", data={"csrf_token": token, **form})
        assert response.status_code == 400 and message in response.data.decode(), form
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0


def test_an_overpayment_stays_on_the_account_and_the_resident_sees_it(runtime, client, logged_in, resident_with_arrears):
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    with runtime.session_factory() as session:
        owed = account(session, taxpayer.id, today_warsaw())
    total = owed.zaleglosc + owed.odsetki + sum((l.biezace for l in owed.liabilities), Decimal(0))
    _preview, data = _start(client, taxpayer.id, mode="amount", amount=str(total + Decimal("150.00")))
    assert "Nadpłata" in _preview.data.decode()
    reference = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data).headers["Location"].rsplit("/", 1)[1]
    gateway = flows.configured_gateways(runtime)["sandbox"]
    headers, body = gateway.notification(reference, total + Decimal("150.00"), "confirmed")
    assert client.post("/platnosci/powiadomienia/sandbox", data=body, headers=headers).status_code == 200
    with runtime.session_factory() as session:
        assert account(session, taxpayer.id, today_warsaw()).nadplata == Decimal("150.00")
    assert "Nadpłata" in client.get(f"/platnosci/{reference}").data.decode()


def test_other_peoples_payments_are_not_shown(runtime, client, logged_in, create_user, resident_with_arrears):
    user, taxpayer, _ids = resident_with_arrears
    logged_in(user)
    _preview, data = _start(client, taxpayer.id, mode="overdue")
    reference = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data).headers["Location"].rsplit("/", 1)[1]
    other = create_user("resident")
    from tests.conftest import login

    fresh = client.application.test_client()
    assert login(fresh, other).status_code == 302
    assert fresh.get(f"/platnosci/{reference}").status_code == 403
    assert fresh.get(f"/podatki/{taxpayer.id}/zaplac").status_code == 403
    theirs = fresh.get("/platnosci/").data.decode()
    assert reference not in theirs and f"/podatki/{taxpayer.id}/wplaty" not in theirs


def deliver_at_once(runtime, gateway_id: str, headers, body: bytes, count: int) -> None:
    """`count` threads deliver the same notification to the webhook's code at once. SQLite may answer
    "database is locked" to a racing writer: that is a 503, and the notification is delivered again,
    as the gateway would, until it is answered 200."""
    answers, barrier = [], threading.Barrier(count)

    def deliver():
        barrier.wait()
        answers.append(flows.handle_notification(runtime, gateway_id, headers, body, "127.0.0.1").status)

    threads = [threading.Thread(target=deliver) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(answers) <= {200, 503} and 200 in answers
    while 503 in answers:
        answers.remove(503)
        answers.append(flows.handle_notification(runtime, gateway_id, headers, body, "127.0.0.1").status)


def test_concurrent_notifications_post_once(runtime, create_user, resident_with_arrears):
    """Eight threads deliver the same confirmation at once: one confirms and posts, seven change nothing."""
    user, taxpayer, _ids = resident_with_arrears
    with transaction(runtime.session_factory) as session:
        from platforma.payments import operations

        payment, _ = operations.create_payment(session, taxpayer_id=taxpayer.id, user_id=user.id, gateway="sandbox",
                                               amount=Decimal("321.00"), mode="amount", designation=[],
                                               description="test", idempotency_key="k" * 20)
        reference = payment.reference
    gateway = flows.configured_gateways(runtime)["sandbox"]
    headers, body = gateway.notification(reference, Decimal("321.00"), "confirmed")
    deliver_at_once(runtime, "sandbox", headers, body, 8)
    postings = _postings(runtime, reference)
    # a payment's wplata lines (principal with the interest it settled) and nadplata add up to it
    assert sum(a for k, a in postings if k in ("wplata", "nadplata")) == Decimal("321.00")
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(PaymentEvent).where(PaymentEvent.kind == "posted")) == 1


def test_payments_left_pending_are_expired_and_a_late_confirmation_still_wins(runtime, resident_with_arrears):
    user, taxpayer, _ids = resident_with_arrears
    from platforma.payments import operations

    with transaction(runtime.session_factory) as session:
        payment, _ = operations.create_payment(session, taxpayer_id=taxpayer.id, user_id=user.id, gateway="sandbox",
                                               amount=Decimal("10.00"), mode="amount", designation=[],
                                               description="test", idempotency_key="e" * 20)
        reference = payment.reference
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=5)
    assert flows.reconcile_pending(runtime, now=later)["expired"] == 1
    assert flows.reconcile_pending(runtime, now=later)["expired"] == 0
    gateway = flows.configured_gateways(runtime)["sandbox"]
    headers, body = gateway.notification(reference, Decimal("10.00"), "confirmed")
    assert flows.handle_notification(runtime, "sandbox", headers, body, "127.0.0.1").status == 200
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(Payment.state).where(Payment.reference == reference)).one() == "confirmed"
    assert _postings(runtime, reference)


def _deliver_in_process(settings_data, headers, body, start_at):
    """One process delivering a notification: its own engine and connections, like a gunicorn worker."""
    import time as _time

    from platforma.config import settings_from_dict
    from platforma.core.runtime import Runtime

    runtime = Runtime.from_settings(settings_from_dict(settings_data))
    while _time.time() < start_at:
        _time.sleep(0.001)
    try:
        return flows.handle_notification(runtime, "sandbox", headers, body, "127.0.0.1").status
    finally:
        runtime.engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_notifications_in_separate_processes_post_once(runtime, settings, resident_with_arrears):
    """Six worker processes receive the same confirmation at the same moment (PostgreSQL)."""
    import multiprocessing
    import time

    user, taxpayer, _ids = resident_with_arrears
    from platforma.payments import operations

    with transaction(runtime.session_factory) as session:
        payment, _ = operations.create_payment(session, taxpayer_id=taxpayer.id, user_id=user.id, gateway="sandbox",
                                               amount=Decimal("654.32"), mode="amount", designation=[],
                                               description="test", idempotency_key="p" * 20)
        reference = payment.reference
    headers, body = flows.configured_gateways(runtime)["sandbox"].notification(reference, Decimal("654.32"), "confirmed")
    data = settings.model_dump(mode="json")
    data["instance_dir"] = settings.instance_dir
    start_at = time.time() + 3
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        answers = pool.starmap(_deliver_in_process, [(data, headers, body, start_at)] * 6)
    assert answers == [200] * 6
    postings = _postings(runtime, reference)
    assert sum(a for k, a in postings if k in ("wplata", "nadplata")) == Decimal("654.32")
    with runtime.session_factory() as session:
        payment_id = session.scalars(sa.select(Payment.id).where(Payment.reference == reference)).one()
        assert session.scalar(sa.select(sa.func.count()).select_from(PaymentEvent).where(
            PaymentEvent.payment_id == payment_id, PaymentEvent.kind == "posted")) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(PaymentEvent).where(
            PaymentEvent.payment_id == payment_id, PaymentEvent.to_state == "confirmed")) == 1


def test_the_account_page_offers_zaplac_to_the_resident_only(runtime, client, logged_in, create_user,
                                                             resident_with_arrears):
    """The "Zapłać" button on the taxpayer's account page (and "Zapłać za 2025 r." under the year) leads
    to the payment's first step, that year's installments chosen; a clerk looking at the account pays
    nothing and sees no button."""
    user, taxpayer, installment_ids = resident_with_arrears
    logged_in(user)
    page = client.get(f"/podatki/{taxpayer.id}/").data.decode()
    buttons = re.findall(r'<a href="([^"]+)" role="button"[^>]*>([^<]+)</a>', page)
    assert buttons == [(f"/podatki/{taxpayer.id}/zaplac", "Zapłać"), (f"/podatki/{taxpayer.id}/zaplac?rok=2025", "Zapłać za 2025 r.")]

    chosen = client.get(f"/podatki/{taxpayer.id}/zaplac?rok=2025").data.decode()
    assert re.search(r'id="mode-installments"[^>]*checked', chosen)
    assert sorted(int(i) for i in re.findall(r'name="installment" type="checkbox" value="(\d+)" checked', chosen)) == \
        sorted(installment_ids)
    # another year, or nonsense: the first step as usual, nothing chosen
    for query in ("?rok=2019", "?rok=abc", ""):
        plain = client.get(f"/podatki/{taxpayer.id}/zaplac{query}").data.decode()
        assert re.search(r'id="mode-overdue"[^>]*checked', plain) and " checked aria-describedby=\"installment-" not in plain

    clerk = create_user("clerk")
    from tests.conftest import login

    office = client.application.test_client()
    assert login(office, clerk).status_code == 302
    seen = office.get(f"/podatki/{taxpayer.id}/").data.decode()
    assert "Zaległość" in seen and 'role="button"' not in seen and "/zaplac" not in seen


def test_the_clerks_list_of_payments_pages_through_them(runtime, client, logged_in, create_user, resident_with_arrears):
    user, taxpayer, _ids = resident_with_arrears
    with transaction(runtime.session_factory) as session:
        for n in range(55):
            payment, _ = operations.create_payment(
                session, taxpayer_id=taxpayer.id, user_id=user.id, gateway="sandbox", amount=Decimal(10 + n), mode="amount",
                designation=[], description="t", idempotency_key=f"lista-{n:04d}-" + "x" * 10)
            if n % 2:
                operations.move(session, payment, "pending", "gateway")
    logged_in(create_user("clerk"))

    def references(page: str) -> int:
        return page.count('href="/urzad/platnosci/PF-')

    first = client.get("/urzad/platnosci/").data.decode()
    assert references(first) == 50 and 'rel="next"' in first and 'rel="prev"' not in first
    second = client.get("/urzad/platnosci/?strona=2").data.decode()
    assert references(second) == 5 and 'rel="prev"' in second and 'rel="next"' not in second
    # the filter goes with the pages: 27 pending payments fit on one
    pending = client.get("/urzad/platnosci/", query_string={"stan": "pending"}).data.decode()
    assert references(pending) == 27 and 'rel="next"' not in pending
    assert references(client.get("/urzad/platnosci/?strona=abc").data.decode()) == 50


def test_chosen_installments_with_reminder_costs_are_paid_in_full(runtime, client, logged_in, resident_with_arrears):
    """A payment pays the reminder costs first (art. 55 §1 OP): the page adds them to the chosen
    installments' amount and says so, or the installment would stay partly unpaid."""
    user, taxpayer, installment_ids = resident_with_arrears
    with transaction(runtime.session_factory) as session:
        session.add(Posting(taxpayer_id=taxpayer.id, liability_id=None, kind="koszty_upomnienia", amount=Decimal("16.60"),
                            booked_on=D(2025, 4, 1), value_date=D(2025, 4, 1), origin="system", source="local",
                            source_key="K1"))
    logged_in(user)
    today = today_warsaw()
    with runtime.session_factory() as session:
        first = next(i for i in payable(session, taxpayer.id, today).installments if i.id == installment_ids[0])
    form = client.get(f"/podatki/{taxpayer.id}/zaplac").data.decode()
    assert "Do kwoty doliczymy koszty upomnienia, 16,60" in form
    transfer = client.get(f"/podatki/{taxpayer.id}/przelew", query_string={"rata": installment_ids[0]}).data.decode()
    assert "Doliczyliśmy koszty upomnienia, 16,60" in transfer
    preview, data = _start(client, taxpayer.id, mode="installments", installment=[str(installment_ids[0])])
    assert Decimal(data["expected"]) == first.to_pay + Decimal("16.60")
    started = client.post(f"/podatki/{taxpayer.id}/zaplac/start", data=data)
    reference = re.search(r"/platnosci/piaskownica/(PF-[0-9A-Z]+)", started.headers["Location"]).group(1)
    sandbox = client.get(f"/platnosci/piaskownica/{reference}")
    client.post(f"/platnosci/piaskownica/{reference}", data={"csrf_token": csrf_from(sandbox.data), "action": "pay"})
    with runtime.session_factory() as session:
        after = payable(session, taxpayer.id, today)
    assert after.state.koszty == 0 and after.state.nadplata == 0
    assert installment_ids[0] not in [i.id for i in after.installments]
    transfer = client.get(f"/podatki/{taxpayer.id}/przelew", query_string={"rata": installment_ids[1]}).data.decode()
    assert "Doliczyliśmy koszty upomnienia" not in transfer  # paid: nothing is added any more
