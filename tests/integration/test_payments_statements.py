"""Importing bank statements on both databases: matching, posting once, the unmatched queue, refusals.

The statements are camt.053.001.02 documents written here, entry by entry, the way Polish banks send
them for a gmina's collection account: each credit names the individual account it was paid to
(TxDtls/RltdPties/CdtrAcct), or only a title.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from platforma.demo.statement import PAYER_ACCOUNT
from platforma.demo.statement import camt053 as demo_camt053
from platforma.payments import operations, reconciliation
from platforma.payments.models import BankStatement, StatementLine
from platforma.payments.queries import statement_accounts, transfer_account, virtual_layout
from platforma.payments.rules import nrb_check_digits
from tests.conftest import base_settings
from platforma.taxes import operations as tax_ops
from platforma.taxes.models import Decision, Posting
from tests.conftest import csrf_from

D = dt.date
GMINA_NRB = "49909000042001000000001234"
PAYMENTS = {"gateways": ["sandbox"], "virtual_accounts": {"enabled": True, "sort_code": "90900004", "fixed": "2001"}}


@pytest.fixture
def settings(settings_factory, database_url):
    return settings_factory(database_url, payments=PAYMENTS)


def camt053(entries, *, opening="1000.00", closing=None, statement_id="WYC-2026-0042", account=GMINA_NRB,
            day="2026-11-20"):
    """entries: (amount "12.34", credit bool, title, account_credited NRB or "" (a debit's: the payee's),
    counterparty)."""
    return demo_camt053(entries, account=account, opening=opening, closing=closing, statement_id=statement_id, day=day)


def decided(session, taxpayer, n: int, installments) -> str:
    """A 2026 decision FN.3120.<n>.2026 with the taxpayer its sole principal; its number."""
    decision = Decision(number=f"FN.3120.{n}.2026", document_type="decyzja", year=2026, issued_on=D(2026, 2, 1),
                        delivered_on=D(2026, 2, 10), source="local", source_key=f"D{n}")
    tax_ops.assess_liability(
        session, tax_kind="nieruchomosci", payer_type=taxpayer.kind, year=2026, amount=sum(a for _d, a in installments),
        parties=[(taxpayer.id, "principal")], installments=installments, booked_on=D(2026, 2, 10), source="local",
        source_key=f"L{n}", decision=decision, description="Podatek 2026")
    return decision.number


@pytest.fixture
def gmina(runtime, create_taxpayer, create_user):
    """Four taxpayers with a 2026 liability each; one resident's payment already confirmed online."""
    people = [create_taxpayer() for _ in range(3)] + [create_taxpayer("legal")]
    user = create_user("resident")
    with transaction(runtime.session_factory) as session:
        for n, taxpayer in enumerate(people):
            decided(session, taxpayer, n + 1, [(D(2026, 3, 16), Decimal(200)), (D(2026, 5, 15), Decimal(200))])
        payment, _ = operations.create_payment(session, taxpayer_id=people[0].id, user_id=user.id, gateway="sandbox",
                                               amount=Decimal("99.00"), mode="amount", designation=[], description="t",
                                               idempotency_key="g" * 20)
        assert operations.move(session, payment, "confirmed", "gateway", paid_on=D(2026, 11, 19))
        operations.post_confirmed(session, payment)
        reference = payment.reference
    return people, reference


def _import(runtime, data, name="wyciag.xml"):
    with transaction(runtime.session_factory) as session:
        return reconciliation.import_statement(session, data, file_name=name, layout=virtual_layout(runtime.settings),
                                               accounts=statement_accounts(runtime.settings))


def _posted(runtime, taxpayer_id):
    with runtime.session_factory() as session:
        return session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Posting.amount), 0)).where(
            Posting.taxpayer_id == taxpayer_id, Posting.kind.in_(("wplata", "nadplata")), Posting.source == "bank"))


def test_credits_are_matched_posted_once_and_the_rest_waits(runtime, gmina):
    people, reference = gmina
    layout = virtual_layout(runtime.settings)
    data = camt053([
        ("150.00", True, "podatek od nieruchomosci", layout.account_for(people[0].id), "JAN KOWALSKI"),
        ("200.00", True, "FN.3120.2.2026 rata 1", "", "ANNA NOWAK"),
        ("210.50", True, f"podatek {people[2].pesel}", "", "PIOTR WIŚNIEWSKI"),
        ("400.00", True, f"NIP {people[3].nip[:3]}-{people[3].nip[3:6]}-{people[3].nip[6:8]}-{people[3].nip[8:]} podatek", "", "FIRMA SP. Z O.O."),
        ("99.00", True, f"Wyplata Przelewy24 {reference}", "", "PayPro SA"),
        ("35.00", True, "za smieci", "", "KTOS NIEZNANY"),
        ("12.00", False, "oplata bankowa", "", "BANK"),
    ])
    result = _import(runtime, data)
    assert (result.entries, result.matched, result.gateway, result.unmatched, result.debits) == (7, 4, 1, 1, 1)
    assert result.posted_total == Decimal("960.50") and result.unmatched_total == Decimal("35.00")
    assert [_posted(runtime, p.id) for p in people] == [Decimal("150.00"), Decimal("200.00"), Decimal("210.50"), Decimal("400.00")]
    with runtime.session_factory() as session:
        how = dict(session.execute(sa.select(StatementLine.sequence, StatementLine.matched_by)).all())
        # the gateway's payout was posted when the gateway confirmed: not again
        assert session.scalar(sa.select(sa.func.count()).select_from(Posting).where(Posting.payment_ref == reference, Posting.kind == "wplata")) >= 1
        assert session.scalar(sa.select(sa.func.count()).select_from(Posting).where(Posting.source == "bank", Posting.payment_ref.like("W%"))) >= 4
        statement = session.scalars(sa.select(BankStatement)).one()
    assert how == {1: "account", 2: "decision", 3: "pesel", 4: "nip", 5: "payment", 6: "", 7: ""}
    assert statement.entries == 7 and statement.closing == Decimal("1000.00") + Decimal("1094.50") - Decimal("12.00")

    # the same file again, or the same statement in another file: nothing changes
    again = _import(runtime, data, name="kopia.xml")
    assert again.statements == 0 and again.entries == 0 and again.already_imported == ["WYC-2026-0042 42"]
    assert [_posted(runtime, p.id) for p in people] == [Decimal("150.00"), Decimal("200.00"), Decimal("210.50"), Decimal("400.00")]


def test_a_file_that_does_not_add_up_changes_nothing(runtime, gmina):
    people, _reference = gmina
    layout = virtual_layout(runtime.settings)
    data = camt053([("150.00", True, "x", layout.account_for(people[0].id), "A")], closing="9999.99")
    with pytest.raises(reconciliation.ImportRefused) as refused:
        _import(runtime, data)
    assert "saldo" in str(refused.value).lower()
    for bad in (data[:len(data) // 2], b"<!DOCTYPE x [<!ENTITY a 'b'>]>" + data[38:], b"\xff\xfe garbage"):
        with pytest.raises(reconciliation.ImportRefused):
            _import(runtime, bad)
    with runtime.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(BankStatement)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(StatementLine)) == 0
    assert _posted(runtime, people[0].id) == 0


#: an account of another holder at another bank (valid check digits)
OTHER_NRB = nrb_check_digits("102010260000123456789012") + "102010260000123456789012"
#: the gmina's stamp duty account (art. 13 ustawy o opłacie skarbowej: not the taxes' account)
STAMP_DUTY_NRB = nrb_check_digits("909000040000000000005678") + "909000040000000000005678"


def test_a_statement_of_another_account_is_refused(runtime, gmina, tmp_path):
    """Credits titled with a taxpayer's PESEL or decision on the statement of another account (the
    stamp duty's, another gmina's) did not reach the taxes' account, and euro are not złoty: the file
    is refused whole."""
    people, _reference = gmina
    pesel = people[0].pesel
    data = camt053([("150.00", True, f"podatek PESEL {pesel}", "", "JAN")], account=OTHER_NRB, statement_id="OBCY-1")
    with pytest.raises(reconciliation.ImportRefused) as refused:
        _import(runtime, data)
    assert str(refused.value) == (f"wyciąg OBCY-1 42 jest wyciągiem rachunku {OTHER_NRB}, który nie jest rachunkiem "
                                  "podatków i opłat gminy (gmina.bank_accounts w pliku konfiguracyjnym)")
    euro = camt053([("150.00", True, f"podatek PESEL {pesel}", "", "JAN")], statement_id="EUR-1").replace(
        b'Ccy="PLN"', b'Ccy="EUR"').replace(b"<Ccy>PLN</Ccy>", b"<Ccy>EUR</Ccy>")
    with pytest.raises(reconciliation.ImportRefused) as refused:
        _import(runtime, euro)
    assert str(refused.value) == ("wyciąg EUR-1 42: rachunek jest prowadzony w walucie EUR, a podatki i opłaty księguje "
                                  "się w złotych (PLN)")
    # a statement of one of the gmina's individual accounts (where a bank makes one for each)
    individual = virtual_layout(runtime.settings).account_for(people[1].id)
    assert _import(runtime, camt053([("10.00", True, "podatek", individual, "JAN")], account=individual,
                                    statement_id="IND-1")).matched == 1
    # the gmina's account (the file names it as an IBAN, the configuration as an NRB)
    assert _import(runtime, camt053([("150.00", True, f"podatek PESEL {pesel}", "", "JAN")], statement_id="NASZ-1")).matched == 1
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(BankStatement.statement_id).order_by(BankStatement.id)).all() == ["IND-1 42",
                                                                                                  "NASZ-1 42"]
    assert _posted(runtime, people[0].id) == Decimal("150.00")

    two = base_settings(tmp_path, "sqlite://", gmina={"bank_accounts": [
        {"name": "Podatki", "nrb": GMINA_NRB}, {"name": "Opłata skarbowa", "nrb": STAMP_DUTY_NRB, "purpose": "opłata skarbowa"}]})
    assert statement_accounts(two) == {GMINA_NRB}
    # the transfer slip of a gmina without individual accounts names the taxes' account, even where the
    # stamp duty's is listed first
    stamp_first = base_settings(tmp_path, "sqlite://", gmina={"bank_accounts": [
        {"name": "Opłata skarbowa", "nrb": STAMP_DUTY_NRB, "purpose": "opłata skarbowa"}, {"name": "Podatki", "nrb": GMINA_NRB}]})
    assert transfer_account(stamp_first, people[0].id) == (GMINA_NRB, False)
    # a gmina that names no account: nothing to check a statement against
    assert statement_accounts(base_settings(tmp_path, "sqlite://", gmina={"bank_accounts": []})) is None


def test_clerk_assigns_or_returns_unmatched_credits(runtime, app, client, logged_in, create_user, gmina):
    people, _reference = gmina
    _import(runtime, camt053([("35.00", True, "za smieci", "", "KTOS"), ("20.00", True, "=HYPERLINK(1)", "", "@INNY"),
                              ("40.00", True, "faktura", "", "FIRMA")]))
    clerk = create_user("clerk")
    logged_in(clerk)
    queue = client.get("/urzad/platnosci/wyciagi/nieprzypisane")
    assert queue.status_code == 200 and "za smieci" in queue.data.decode()
    with runtime.session_factory() as session:
        first, second, third = session.scalars(sa.select(StatementLine.id).order_by(StatementLine.sequence)).all()
    page = client.get(f"/urzad/platnosci/wyciagi/pozycje/{first}")
    token = csrf_from(page.data)
    missing = client.post(f"/urzad/platnosci/wyciagi/pozycje/{first}", data={"csrf_token": token, "a-taxpayer": str(people[1].id), "a-reason": "", "a-submit": "1"})
    assert missing.status_code == 400 and "Podaj podstawę" in missing.data.decode()
    nobody = client.post(f"/urzad/platnosci/wyciagi/pozycje/{first}", data={"csrf_token": token, "a-taxpayer": "999999", "a-reason": "telefon", "a-submit": "1"})
    assert nobody.status_code == 400 and "Nie ma podatnika o numerze 999999." in nobody.data.decode()
    # a clerk names the taxpayer by PESEL or NIP (as the payer says it on the phone), or by number
    pesel = people[1].pesel
    wrong = pesel[:10] + str((int(pesel[10]) + 1) % 10)
    for given, message in ((wrong, "PESEL ma błędną cyfrę kontrolną."), ("44051401458", "Nie ma podatnika o numerze PESEL 44051401458."),
                           ("PESEL", "PESEL, NIP i numer podatnika to cyfry")):
        refused = client.post(f"/urzad/platnosci/wyciagi/pozycje/{first}", data={"csrf_token": token, "a-taxpayer": given, "a-reason": "telefon", "a-submit": "1"})
        assert refused.status_code == 400 and message in refused.data.decode(), given
    assert _posted(runtime, people[1].id) == 0
    spaced = f"{pesel[:3]} {pesel[3:6]} {pesel[6:]}"
    done = client.post(f"/urzad/platnosci/wyciagi/pozycje/{first}", data={"csrf_token": token, "a-taxpayer": spaced, "a-reason": "telefon od wpłacającej 21.11", "a-submit": "1"})
    assert done.status_code == 303
    assert f"Wpłatę przypisano podatnikowi {people[1].display_name} (nr {people[1].id}) i zaksięgowano." in client.get(done.headers["Location"]).data.decode()
    assert _posted(runtime, people[1].id) == Decimal("35.00")
    nip = people[3].nip
    by_nip = client.post(f"/urzad/platnosci/wyciagi/pozycje/{third}", data={"csrf_token": token, "a-taxpayer": f"{nip[:3]}-{nip[3:6]}-{nip[6:8]}-{nip[8:]}", "a-reason": "e-mail firmy", "a-submit": "1"})
    assert by_nip.status_code == 303 and _posted(runtime, people[3].id) == Decimal("40.00")
    returned = client.post(f"/urzad/platnosci/wyciagi/pozycje/{second}", data={"csrf_token": token, "r-return_reason": "wpłata nie dotyczy gminy", "r-return_submit": "1"})
    assert returned.status_code == 303
    with runtime.session_factory() as session:
        statuses = dict(session.execute(sa.select(StatementLine.id, StatementLine.status)).all())
        actions = set(session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("payments.%"))))
    assert statuses == {first: "assigned", second: "returned", third: "assigned"}
    # the treasury's list of what to send back, with the payer's account, on screen and for the bank
    listed = " ".join(client.get("/urzad/platnosci/wyciagi/do-zwrotu").data.decode().split())
    assert "Wpłat: 1, razem 20,00" in listed and "@INNY" in listed and "wpłata nie dotyczy gminy" in listed
    assert "za smieci" not in listed and clerk.full_name in listed
    exported = client.get("/urzad/platnosci/wyciagi/do-zwrotu?format=csv")
    assert exported.headers["Content-Disposition"] == 'attachment; filename="wplaty-do-zwrotu.csv"'
    assert exported.data.decode("utf-8-sig").splitlines() == [
        "rachunek_wplacajacego;wplacajacy;kwota;tytul_zwrotu;data_wplaty;powod",
        f"{PAYER_ACCOUNT};'@INNY;20.00;zwrot wpłaty z 20.11.2026: =HYPERLINK(1);2026-11-20;wpłata nie dotyczy gminy"]
    # sent back: off the list (and the file), under "Ostatnio odesłane", once
    token = csrf_from(client.get("/urzad/platnosci/wyciagi/do-zwrotu").data)
    sent = client.post("/urzad/platnosci/wyciagi/do-zwrotu", data={"csrf_token": token, "line": str(second)})
    assert sent.status_code == 303
    after = " ".join(client.get("/urzad/platnosci/wyciagi/do-zwrotu").data.decode().split())
    assert "Wpłatę oznaczono jako odesłaną." in after and "Nie ma wpłat do odesłania." in after
    assert "Ostatnio odesłane" in after and "20,00 zł, @INNY" in after
    again = client.post("/urzad/platnosci/wyciagi/do-zwrotu", data={"csrf_token": token, "line": str(second)})
    assert again.status_code == 400 and "ktoś już ją odesłał" in again.data.decode()
    assert client.post("/urzad/platnosci/wyciagi/do-zwrotu", data={"csrf_token": token, "line": str(first)}).status_code == 400
    assert len(client.get("/urzad/platnosci/wyciagi/do-zwrotu?format=csv").data.decode("utf-8-sig").splitlines()) == 1
    with runtime.session_factory() as session:
        assert session.get(StatementLine, second).sent_back_on is not None
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "payments.statement_line_sent_back")) == 1
    assert {"payments.statement_line_assigned", "payments.statement_line_returned"} <= actions
    # a second assignment of the same line is refused
    again = client.post(f"/urzad/platnosci/wyciagi/pozycje/{first}", data={"csrf_token": token, "a-taxpayer": str(people[2].id), "a-reason": "x", "a-submit": "1"})
    assert again.status_code in (200, 400) and _posted(runtime, people[2].id) == 0


def test_the_banks_debit_of_a_return_closes_it(runtime, create_user, gmina):
    """A credit marked for return is closed by the debit that sends it back on a later statement: the
    same amount to the account it came from (the oldest first); another amount or account closes nothing."""
    people, _reference = gmina
    _import(runtime, camt053([("20.00", True, "pomylka", "", "INNY"), ("20.00", True, "pomylka 2", "", "INNY"),
                              ("7.00", True, "cos", "", "INNY")], statement_id="WYC-1"))
    clerk = create_user("clerk")
    with transaction(runtime.session_factory) as session:
        lines = session.scalars(sa.select(StatementLine).order_by(StatementLine.sequence)).all()
        for line in lines:
            reconciliation.mark_returned(session, line, clerk=clerk, reason="obca wpłata")
        first, second, third = (line.id for line in lines)
    _import(runtime, camt053([("20.00", False, "zwrot", PAYER_ACCOUNT, "INNY"), ("7.00", False, "zwrot", OTHER_NRB, "INNY"),
                              ("8.00", False, "zwrot", PAYER_ACCOUNT, "INNY")], statement_id="WYC-2", day="2026-11-24"))
    with runtime.session_factory() as session:
        sent = dict(session.execute(sa.select(StatementLine.id, StatementLine.sent_back_on).where(
            StatementLine.id.in_([first, second, third]))).all())
        notes = session.scalars(sa.select(StatementLine.note).where(StatementLine.credit.is_(False))
                                .order_by(StatementLine.sequence)).all()
        audited = session.scalars(sa.select(AuditEntry.object_id).where(
            AuditEntry.action == "payments.statement_line_sent_back")).all()
    assert sent == {first: D(2026, 11, 24), second: None, third: None}
    assert notes == [f"zwrot wpłaty z pozycji wyciągu nr {first}", "", ""]
    assert audited == [str(first)]


def test_the_line_page_suggests_whom_a_credit_may_be_from(runtime, client, logged_in, create_user, create_taxpayer, gmina):
    """An unmatched credit's page names the taxpayers earlier credits from the same payer's account went
    to, then the residents whose first and last names the payer's name holds (with the address the
    bank puts after it); the clerk still chooses."""
    people, _reference = gmina
    jan = create_taxpayer(first_name="Jan", last_name="Kowalski")
    create_taxpayer(first_name="Jan", last_name="Nowak")  # the first name alone is no reason
    number = "FN.3120.3.2026"  # people[2]'s decision
    _import(runtime, camt053([("50.00", True, f"{number} rata", "", "KOWALSKI JAN UL. POLNA 5 00-001 WARSZAWA")],
                             statement_id="WYC-1"))
    _import(runtime, camt053([("60.00", True, "podatek", "", "KOWALSKI JAN UL. POLNA 5 00-001 WARSZAWA")],
                             statement_id="WYC-2"))
    with runtime.session_factory() as session:
        line = session.scalars(sa.select(StatementLine).where(StatementLine.status == "unmatched")).one()
        assert [(t.id, why) for t, why in reconciliation.suggestions(session, line)] == [(people[2].id, "account"),
                                                                                      (jan.id, "name")]
    logged_in(create_user("clerk"))
    text = " ".join(client.get(f"/urzad/platnosci/wyciagi/pozycje/{line.id}").data.decode().split())
    assert "Może to wpłata jednego z nich:" in text
    assert (f">{people[2].display_name}</a>, numer podatnika {people[2].id}" in text
            and "wcześniejsze wpłaty z tego rachunku zaliczono na jego konto" in text)
    assert f">{jan.display_name}</a>, numer podatnika {jan.id}" in text and "imię i nazwisko jak u wpłacającego" in text
    assert len(re.findall(r"numer podatnika \d+", text)) == 2
    # the account then pays for two more taxpayers: a shared account (a family's, a bookkeeper's) says
    # less than the name
    _import(runtime, camt053([("1.00", True, "FN.3120.1.2026", "", "KOWALSKI JAN"),
                              ("2.00", True, "FN.3120.2.2026", "", "KOWALSKI JAN")], statement_id="WYC-3"))
    with runtime.session_factory() as session:
        line = session.get(StatementLine, line.id)
        assert [(t.id, why) for t, why in reconciliation.suggestions(session, line)] == [
            (jan.id, "name"), (people[1].id, "shared"), (people[0].id, "shared"), (people[2].id, "shared")]
    shared = " ".join(client.get(f"/urzad/platnosci/wyciagi/pozycje/{line.id}").data.decode().split())
    assert shared.count("z tego rachunku płacono już za niego, ale i za innych podatników") == 3


def test_clerk_marks_a_gateways_payout_and_nothing_is_posted_again(runtime, client, logged_in, create_user, gmina):
    """A gateway pays a day's payments out in one transfer under a title of its own: the clerk sees
    the payments confirmed in the week before it, per day and gateway, and marks the credit as that
    payout. Nothing is posted (each payment was, when the gateway confirmed it)."""
    _people, _reference = gmina  # a sandbox payment of 99.00 zł confirmed, paid on 19 November
    _import(runtime, camt053([("99.00", True, "WYPLATA ZBIORCZA 4471", "", "OPERATOR PLATNOSCI SA")]))
    with runtime.session_factory() as session:
        line_id = session.scalar(sa.select(StatementLine.id))
    logged_in(create_user("clerk"))
    url = f"/urzad/platnosci/wyciagi/pozycje/{line_id}"
    page = client.get(url)
    text = " ".join(page.data.decode().split())
    assert "Albo to wypłata operatora płatności" in text and "czeka na przypisanie" in text
    days = re.findall(r'<td class="govuk-table__cell">([^<]*)</td><td class="govuk-table__cell">([^<]*)</td> '
                      r'<td class="govuk-table__cell govuk-table__cell--numeric">(\d+)</td>'
                      r'<td class="govuk-table__cell govuk-table__cell--numeric">([^<]*)</td>', text)
    assert days == [("19.11.2026", "Piaskownica (demonstracja, bez pieniędzy)", "1", "99,00 zł")]  # (split() folds the no-break space)
    token = csrf_from(page.data)
    form = {"csrf_token": token, "p-gateway": "", "p-payout_reason": "zbiorcza za 19.11", "p-payout_submit": "1"}
    unchosen = client.post(url, data=form)
    assert unchosen.status_code == 400 and "Wybierz operatora" in unchosen.data.decode()
    unexplained = client.post(url, data={**form, "p-gateway": "sandbox", "p-payout_reason": " "})
    assert unexplained.status_code == 400 and "Podaj, którą wypłatę operatora rozpoznajesz" in unexplained.data.decode()
    done = client.post(url, data={**form, "p-gateway": "sandbox"})
    assert done.status_code == 303
    again = client.post(url, data={**form, "p-gateway": "sandbox"})
    assert again.status_code == 400 and "Ta pozycja wyciągu jest już rozliczona." in again.data.decode()
    assert "Albo to wypłata operatora płatności" not in again.data.decode()
    with runtime.session_factory() as session:
        line = session.get(StatementLine, line_id)
        actions = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.object_type == "statement_line")).all()
        bank = session.scalar(sa.select(sa.func.count()).select_from(Posting).where(Posting.source == "bank"))
    assert (line.status, line.matched_by, line.note) == ("gateway", "clerk",
                                                         "Piaskownica (demonstracja, bez pieniędzy): zbiorcza za 19.11")
    assert actions == ["payments.statement_line_payout"] and bank == 0
    assert "wypłata operatora płatności (wpłaty zaksięgowane przy potwierdzeniu)" in client.get(url).data.decode()
    assert "WYPLATA ZBIORCZA" not in client.get("/urzad/platnosci/wyciagi/nieprzypisane").data.decode()


@pytest.mark.parametrize("second", ["returns", "assigns"])
def test_two_clerks_on_one_line_at_once_resolve_it_once(runtime, create_user, gmina, second):
    """Both clerks have the line open and submit at the same moment: one wins, the other is refused.
    Before the compare-and-set, a credit one clerk assigned (posted) could also be marked returned by
    the other: money on a taxpayer's account that the treasury also sends back."""
    people, _reference = gmina
    _import(runtime, camt053([("35.00", True, "bez tytulu", "", "KTOS")]))
    with runtime.session_factory() as session:
        line_id = session.scalar(sa.select(StatementLine.id))
    clerks = [create_user("clerk"), create_user("clerk")]
    barrier = threading.Barrier(2)
    outcomes = []

    def resolve(n):
        try:
            with transaction(runtime.session_factory) as session:
                line = session.get(StatementLine, line_id)
                assert line.status == "unmatched"  # both see the line open
                barrier.wait(timeout=10)
                if n == 0:
                    reconciliation.assign_line(session, line, people[1].id, clerk=clerks[0], reason="telefon")
                elif second == "returns":
                    reconciliation.mark_returned(session, line, clerk=clerks[1], reason="obca wpłata")
                else:
                    reconciliation.assign_line(session, line, people[2].id, clerk=clerks[1], reason="e-mail")
            outcomes.append("done")
        except reconciliation.ImportRefused as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=resolve, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["Ta pozycja wyciągu jest już rozliczona.", "done"], outcomes
    with runtime.session_factory() as session:
        line = session.get(StatementLine, line_id)
        posted = session.execute(sa.select(Posting.taxpayer_id, sa.func.sum(Posting.amount))
                                 .where(Posting.payment_ref == f"W{line_id}", Posting.kind.in_(("wplata", "nadplata")))
                                 .group_by(Posting.taxpayer_id)).all()
        actions = session.scalars(sa.select(AuditEntry.action).where(AuditEntry.object_type == "statement_line")).all()
    assert len(actions) == 1
    if line.status == "returned":
        assert posted == [] and actions == ["payments.statement_line_returned"]
    else:
        assert line.status == "assigned" and posted == [(line.taxpayer_id, Decimal("35.00"))]
        assert actions == ["payments.statement_line_assigned"]


def test_daily_report_lists_gateway_and_bank_payments(runtime, client, logged_in, create_user, gmina):
    people, reference = gmina
    layout = virtual_layout(runtime.settings)
    _import(runtime, camt053([("150.00", True, "x", layout.account_for(people[0].id), "A")]))
    clerk = create_user("clerk")
    logged_in(clerk)
    csv_text = client.get("/urzad/platnosci/raport?dzien=2026-11-20&format=csv").data.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "zrodlo;numer;dzien_zaplaty;kwota;podatnik;pesel_nip;szczegoly"
    assert ";2026-11-20;150.00;" in csv_text
    gateway_day = client.get("/urzad/platnosci/raport?dzien=2026-11-19&format=csv").data.decode("utf-8-sig")
    assert reference in gateway_day and "99.00" in gateway_day
    pdf = client.get("/urzad/platnosci/raport?dzien=2026-11-20&format=pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get("/urzad/platnosci/raport?dzien=20-11-2026").status_code == 400


def test_commands_parse_and_import_statements(runtime, database_url, tmp_path, gmina, monkeypatch):
    from platforma.cli import cli
    from platforma.instance import render_config

    people, _reference = gmina
    config = tmp_path / "gmina.toml"
    config.write_text(render_config({"va_enabled": "true"}).replace('url = "sqlite:///platforma.sqlite3"', f'url = "{database_url}"'), encoding="utf-8")
    monkeypatch.setenv("PLATFORMA_CONFIG", str(config))
    layout = virtual_layout(runtime.settings)
    statement = tmp_path / "wyciag.xml"
    statement.write_bytes(camt053([("150.00", True, "podatek", layout.account_for(people[0].id), "JAN")]))
    parsed = CliRunner().invoke(cli, ["payments", "parse-statement", str(statement)])
    assert parsed.exit_code == 0, parsed.output
    data = json.loads(parsed.output)
    assert data["statements"][0]["opening"] == "1000.00" and data["statements"][0]["closing"] == "1150.00"
    entry = data["statements"][0]["entries"][0]
    assert entry["amount"] == "150.00" and entry["credit"] is True and entry["account_credited"] == layout.account_for(people[0].id)
    imported = CliRunner().invoke(cli, ["payments", "import-statement", str(statement)])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.output)["matched"] == 1
    again = CliRunner().invoke(cli, ["payments", "import-statement", str(statement)])
    assert json.loads(again.output)["matched"] == 0
    assert _posted(runtime, people[0].id) == Decimal("150.00")
    broken = tmp_path / "zly.xml"
    broken.write_bytes(b"<Document>")
    failed = CliRunner().invoke(cli, ["payments", "import-statement", str(broken)])
    assert failed.exit_code == 1 and "nic nie zaksięgowano" in failed.output
    account_cmd = CliRunner().invoke(cli, ["payments", "virtual-account", "--taxpayer", str(people[0].id)])
    assert json.loads(account_cmd.output)["nrb"] == layout.account_for(people[0].id)
