"""The stamp duty of a certificate request, paid online through the payments module (sandbox gateway),
on SQLite and PostgreSQL: recorded with the letter once, never posted to the taxpayer's tax ledger."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.episma.models import Letter
from tests.conftest import csrf_from
from tests.integration.episma_support import (
    count, letter_pki, letter_settings, link, now_utc, signed, upload,
)
from tests.unit.test_esign_pki import PESEL

__all__ = ["letter_pki"]


@pytest.fixture
def settings(tmp_path, database_url, letter_pki):
    return letter_settings(tmp_path, database_url, letter_pki, payments={"gateways": ["sandbox"]})


@pytest.fixture
def resident(create_user, create_taxpayer, runtime, logged_in):
    user = create_user("resident")
    taxpayer = create_taxpayer(pesel=PESEL)
    link(runtime, user, taxpayer)
    client = logged_in(user)
    client.taxpayer = taxpayer
    return client


def _file_certificate_request(client, pki, copies: str = "2") -> int:
    page = client.get("/pisma/nowe/zaswiadczenie_o_niezaleganiu")
    created = client.post("/pisma/nowe/zaswiadczenie_o_niezaleganiu", data={
        "csrf_token": csrf_from(page.data), "taxpayer": str(client.taxpayer.id), "scope": "all", "purpose": "do banku",
        "copies": copies, "delivery": "platform"})
    assert created.status_code == 302, created.data.decode()[:3000]
    letter_id = int(created.headers["Location"].rsplit("/", 1)[1])
    document = signed(client.get(f"/pisma/{letter_id}/do-podpisu.xml").data, pki)
    assert upload(client, letter_id, document).status_code == 302
    return letter_id


def test_the_stamp_duty_is_paid_online_and_recorded_with_the_letter_once(resident, runtime, letter_pki):
    letter_id = _file_certificate_request(resident, letter_pki, copies="2")
    with runtime.session_factory() as session:
        letter = session.get(Letter, letter_id)
        assert letter.stamp_duty == Decimal("42.00")  # 21 zł for each of two certificates
    page = resident.get(f"/pisma/{letter_id}").data.decode()
    assert "Zapłać opłatę skarbową online" in page and "42,00" in page

    form = resident.get(f"/pisma/{letter_id}/oplata")
    assert form.status_code == 200
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.data.decode()).group(1)
    started = resident.post(f"/pisma/{letter_id}/oplata", data={"csrf_token": csrf_from(form.data), "idempotency_key": key})
    assert started.status_code == 303, started.data.decode()[:2000]
    reference = re.search(r"/platnosci/piaskownica/(PF-[0-9A-Z]+)", started.headers["Location"]).group(1)
    assert "czeka na potwierdzenie" in resident.get(f"/pisma/{letter_id}/oplata").data.decode()

    sandbox = resident.get(f"/platnosci/piaskownica/{reference}")
    paid = resident.post(f"/platnosci/piaskownica/{reference}", data={"csrf_token": csrf_from(sandbox.data), "action": "pay"})
    assert paid.status_code == 303

    assert count(runtime, "posting", "payment_ref = :r", r=reference) == 0  # not a tax payment
    assert count(runtime, "letter_event", "letter_id = :id AND kind = 'fee_paid'", id=letter_id) == 1
    assert count(runtime, "payment", "reference = :r AND state = 'confirmed' AND posted_at IS NOT NULL", r=reference) == 1
    letter_page = resident.get(f"/pisma/{letter_id}").data.decode()
    assert "Opłata skarbowa zapłacona" in letter_page and "Zapłać opłatę skarbową online" not in letter_page

    # a second payment of the same duty is refused, with nothing started
    again = resident.get(f"/pisma/{letter_id}/oplata")
    assert "zapłacona" in again.data.decode()
    assert resident.post(f"/pisma/{letter_id}/oplata", data={"csrf_token": csrf_from(again.data),
                                                              "idempotency_key": "x" * 24}).status_code == 200
    assert count(runtime, "payment") == 1


def test_a_letter_without_stamp_duty_has_no_fee_page(resident, runtime, letter_pki):
    from tests.integration.episma_support import file_general_letter

    letter_id, _ = file_general_letter(resident, letter_pki)
    assert resident.get(f"/pisma/{letter_id}/oplata").status_code == 404


def _pay_online(client, letter_id: int) -> str:
    form = client.get(f"/pisma/{letter_id}/oplata")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.data.decode()).group(1)
    started = client.post(f"/pisma/{letter_id}/oplata", data={"csrf_token": csrf_from(form.data), "idempotency_key": key})
    reference = re.search(r"/platnosci/piaskownica/(PF-[0-9A-Z]+)", started.headers["Location"]).group(1)
    sandbox = client.get(f"/platnosci/piaskownica/{reference}")
    assert client.post(f"/platnosci/piaskownica/{reference}", data={
        "csrf_token": csrf_from(sandbox.data), "action": "pay"}).status_code == 303
    return reference


def test_a_refunded_stamp_duty_is_unpaid_again_and_never_touches_the_tax_ledger(resident, runtime, letter_pki):
    from platforma.core.db import transaction
    from platforma.payments.gateways.base import RefundReport
    from platforma.payments.operations import apply_refund
    from platforma.taxes.queries import account
    from platforma.web.filters import today_warsaw

    letter_id = _file_certificate_request(resident, letter_pki, copies="1")
    reference = _pay_online(resident, letter_id)
    with runtime.session_factory() as session:
        before = account(session, resident.taxpayer.id, today_warsaw())
    # the treasury returns the duty through the gateway (e.g. the certificate was not needed after all)
    with transaction(runtime.session_factory) as session:
        outcome = apply_refund(session, "sandbox", RefundReport(
            reference=reference, gateway_txn_id=None, refund_id="R-1", outcome="completed", amount=Decimal("21.00")))
    assert outcome.result == "moved"
    assert count(runtime, "posting", "payment_ref = :r", r=reference) == 0  # no zwrot in the tax ledger
    with runtime.session_factory() as session:
        after = account(session, resident.taxpayer.id, today_warsaw())
    assert (after.nadplata, after.zaleglosc) == (before.nadplata, before.zaleglosc)
    assert count(runtime, "letter_event", "letter_id = :id AND kind = 'fee_refunded'", id=letter_id) == 1
    assert count(runtime, "payment_refund", "settled_at IS NOT NULL AND posted_amount = 0") == 1
    page = resident.get(f"/pisma/{letter_id}").data.decode()
    assert "Opłata skarbowa zwrócona przez operatora płatności" in page
    assert "Zapłać opłatę skarbową online" in page  # the duty is owed again
    # the same report again changes nothing
    with transaction(runtime.session_factory) as session:
        apply_refund(session, "sandbox", RefundReport(
            reference=reference, gateway_txn_id=None, refund_id="R-1", outcome="completed", amount=Decimal("21.00")))
    assert count(runtime, "letter_event", "letter_id = :id AND kind = 'fee_refunded'", id=letter_id) == 1


def test_a_second_online_payment_waits_while_the_first_is_pending(resident, runtime, letter_pki):
    letter_id = _file_certificate_request(resident, letter_pki, copies="1")
    form = resident.get(f"/pisma/{letter_id}/oplata")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.data.decode()).group(1)
    assert resident.post(f"/pisma/{letter_id}/oplata", data={
        "csrf_token": csrf_from(form.data), "idempotency_key": key}).status_code == 303
    again = resident.get(f"/pisma/{letter_id}/oplata")
    refused = resident.post(f"/pisma/{letter_id}/oplata", data={"csrf_token": csrf_from(again.data),
                                                                 "idempotency_key": "y" * 24})
    assert refused.status_code == 400
    assert "czeka jeszcze na potwierdzenie operatora" in refused.data.decode()
    assert count(runtime, "payment") == 1


def test_without_a_stamp_duty_account_no_transfer_details_are_shown(resident, runtime, letter_pki):
    """The taxes' account must never be offered for the duty: a transfer there would be booked as a tax."""
    letter_id = _file_certificate_request(resident, letter_pki, copies="1")
    page = resident.get(f"/pisma/{letter_id}/oplata").data.decode()
    assert "Albo zapłać przelewem" not in page
    assert "Opłatę skarbową możesz też zapłacić w kasie urzędu." in page
