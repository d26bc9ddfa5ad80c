"""Overpayments set off (art. 76 §1, art. 76a OP) on both databases: against arrears with interest on
the day both exist, against a current installment on its due date, against future installments only
at the taxpayer's request (a clerk's action, audited); exactly once, however often it runs; the
account, `platforma taxes balance` and the reminders run agree afterwards."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from platforma.instance import render_config
from platforma.taxes import operations as ops
from platforma.taxes import rules
from platforma.taxes.cli import account_json
from platforma.taxes.models import Posting
from platforma.taxes.queries import account
from platforma.taxes.settings import interest_threshold, rate_table
from tests.conftest import csrf_from
from tests.integration.test_tax_reminders_run import produced, reference

D = dt.date
ROOT = Path(__file__).resolve().parents[2]


def assess(session, taxpayer_id, key, year, parts, booked_on, payer="natural", document=None):
    return ops.assess_liability(
        session, tax_kind="nieruchomosci", payer_type=payer, year=year, amount=sum(Decimal(a) for _, a in parts),
        parties=[(taxpayer_id, "principal")], installments=[(d, Decimal(a)) for d, a in parts], booked_on=booked_on,
        source="local", source_key=key, description=f"Podatek {key}")


def state(runtime, taxpayer_id, day):
    with runtime.session_factory() as session:
        return account(session, taxpayer_id, day)


def offset_rows(runtime):
    with runtime.session_factory() as session:
        return session.execute(sa.select(Posting.kind, Posting.amount, Posting.value_date, Posting.installment_id)
                               .where(Posting.source == "offset").order_by(Posting.id)).all()


@pytest.fixture
def overpaid(runtime, create_taxpayer):
    """A taxpayer who paid 1,000 zł too much for 2025 on 10 March 2025, and whose 2026 tax (decision
    delivered 14 February 2026) has two installments of 300 zł."""
    person = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        assess(session, person.id, "2025", 2025, [(D(2025, 3, 15), 400)], D(2025, 2, 14))
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("1400.00"), paid_on=D(2025, 3, 10), payment_ref="P1")
        later = assess(session, person.id, "2026", 2026, [(D(2026, 3, 15), 300), (D(2026, 5, 15), 300)], D(2026, 2, 14))
    return {"person": person, "installments": [i.id for i in later.installments]}


def run_offsets(runtime, day):
    with transaction(runtime.session_factory) as session:
        return [o for taxpayer_id in ops.taxpayers_with_overpayment(session, day)
                for o in ops.offset_overpayments(session, taxpayer_id=taxpayer_id, as_of=day)]


def test_a_current_installment_takes_the_overpayment_on_its_due_date(runtime, overpaid):
    person = overpaid["person"]
    assert offset_rows(runtime) == []  # the new przypis found nothing due yet: future installments wait
    assert run_offsets(runtime, D(2026, 3, 13)) == []  # nor before the first due date
    [done] = run_offsets(runtime, D(2026, 3, 20))
    # 15 March 2026 was a Sunday: due on Monday 16 March, and set off that day, without interest
    assert (done.effective_on, done.principal, done.interest) == (D(2026, 3, 16), Decimal("300.00"), 0)
    assert offset_rows(runtime) == [("wplata", Decimal("300.00"), D(2026, 3, 16), overpaid["installments"][0]),
                                    ("zwrot", Decimal("300.00"), D(2026, 3, 16), None)]
    assert run_offsets(runtime, D(2026, 3, 20)) == []  # exactly once
    after = state(runtime, person.id, D(2026, 3, 20))
    assert after.nadplata == Decimal("700.00") and after.zaleglosc == 0
    assert [i.status for i in after.liabilities[0].installments] == ["paid", "due"]
    [offset_payment] = [p for p in after.payments if p.offset]
    assert (offset_payment.total, offset_payment.paid_on) == (Decimal("300.00"), D(2026, 3, 16))
    assert [p["offset"] for p in account_json(after)["payments"]] == [True, False]
    # the second installment on its day; the rest (400 zł) stays to be refunded
    [second] = run_offsets(runtime, D(2026, 12, 31))
    assert (second.effective_on, second.amount) == (D(2026, 5, 15), Decimal("300.00"))
    end = state(runtime, person.id, D(2026, 12, 31))
    assert end.nadplata == Decimal("400.00") and end.do_zaplaty == 0
    with runtime.session_factory() as session:
        assert produced(session, D(2026, 12, 31)) == reference(session, D(2026, 12, 31)) == []


def test_arrears_assessed_later_are_set_off_with_interest_on_the_day_both_exist(runtime, create_taxpayer):
    company = create_taxpayer("legal")
    with transaction(runtime.session_factory) as session:
        ops.post_payment(session, taxpayer_id=company.id, amount=Decimal("5000.00"), paid_on=D(2025, 1, 10), payment_ref="C1")
    with transaction(runtime.session_factory) as session:
        # a declaration for 2024 filed late: due 15 November 2024, booked 2 June 2025 (the trigger runs here)
        liability = assess(session, company.id, "DN", 2024, [(D(2024, 11, 15), 1000)], D(2025, 6, 2), payer="legal")
        installment_id = liability.installments[0].id
    with runtime.session_factory() as session:
        expected = rules.arrears_interest(Decimal(1000), D(2024, 11, 15), D(2025, 6, 2), rate_table(session),
                                          interest_threshold(session, D(2025, 6, 2))).amount
    assert expected > 0
    rows = offset_rows(runtime)
    assert rows == [("wplata", Decimal(1000) + expected, D(2025, 6, 2), installment_id),
                    ("odsetki", expected, D(2025, 6, 2), installment_id),
                    ("zwrot", Decimal(1000) + expected, D(2025, 6, 2), None)]
    after = state(runtime, company.id, D(2025, 6, 30))
    assert after.zaleglosc == 0 and after.odsetki == 0 and after.nadplata == Decimal(4000) - expected
    with transaction(runtime.session_factory) as session:
        assert ops.offset_overpayments(session, taxpayer_id=company.id, as_of=D(2025, 6, 30)) == []


def test_an_overpayment_meeting_arrears_is_set_off_on_the_day_it_arose(runtime, create_taxpayer):
    """Art. 76a §2 pkt 1: an overpayment imported from the domain system (it arose on 1 July 2025)
    while an installment due 17 March was unpaid: set off on 1 July, interest up to that day, and
    a partial set-off is split with the interest by art. 55 §2."""
    person = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        liability = assess(session, person.id, "L", 2025, [(D(2025, 3, 15), 3000)], D(2025, 2, 14))
        session.add(Posting(taxpayer_id=person.id, kind="nadplata", amount=Decimal("1000.00"), booked_on=D(2025, 7, 1),
                            value_date=D(2025, 7, 1), origin="import", source="dziedzinowy", source_key="N-1"))
    [done] = run_offsets(runtime, D(2025, 12, 31))
    with runtime.session_factory() as session:
        interest = rules.arrears_interest(Decimal(3000), D(2025, 3, 17), D(2025, 7, 1), rate_table(session),
                                          interest_threshold(session, D(2025, 7, 1))).amount
    principal = rules.round_to_grosz(Decimal(1000) * 3000 / (3000 + interest))
    assert (done.effective_on, done.principal, done.interest) == (D(2025, 7, 1), principal, Decimal(1000) - principal)
    after = state(runtime, person.id, D(2025, 12, 31))
    assert after.nadplata == 0 and after.liabilities[0].zaleglosc == Decimal(3000) - principal
    assert liability.id == after.liabilities[0].id
    with runtime.session_factory() as session:
        assert produced(session, D(2025, 12, 31)) == reference(session, D(2025, 12, 31))


def test_future_installments_only_at_the_taxpayers_request(runtime, logged_in, create_user, overpaid):
    person, clerk = overpaid["person"], create_user("clerk")
    client = logged_in(clerk)
    ledger = client.get(f"/urzad/podatnicy/{person.id}/ksiegowania")
    token = csrf_from(ledger.data)
    refused = client.post(f"/urzad/podatnicy/{person.id}/nadplata", data={"requested_on": "2099-01-01", "csrf_token": token},
                          follow_redirects=True)
    assert "nie może być późniejsza niż dziś" in refused.get_data(as_text=True) and offset_rows(runtime) == []
    done = client.post(f"/urzad/podatnicy/{person.id}/nadplata", data={"requested_on": "2026-02-20", "csrf_token": token},
                       follow_redirects=True)
    assert "Zaliczono nadpłatę: 600,00" in done.get_data(as_text=True)
    assert offset_rows(runtime) == [
        ("wplata", Decimal("300.00"), D(2026, 2, 20), overpaid["installments"][0]), ("zwrot", Decimal("300.00"), D(2026, 2, 20), None),
        ("wplata", Decimal("300.00"), D(2026, 2, 20), overpaid["installments"][1]), ("zwrot", Decimal("300.00"), D(2026, 2, 20), None)]
    with runtime.session_factory() as session:
        [entry] = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "overpayment.offset_requested")).all()
    assert entry.actor_id == clerk.id and entry.taxpayer_id == person.id and entry.details["requested_on"] == "2026-02-20"
    again = client.post(f"/urzad/podatnicy/{person.id}/nadplata", data={"requested_on": "2026-02-20", "csrf_token": token},
                        follow_redirects=True)
    assert "Nie ma nadpłaty ani rat" in again.get_data(as_text=True)
    assert state(runtime, person.id, D(2026, 12, 31)).nadplata == Decimal("400.00")


def test_two_runs_at_once_set_off_once(runtime, overpaid):
    barrier = threading.Barrier(2)
    outcomes = []

    def run():
        try:
            with transaction(runtime.session_factory) as session:
                session.connection()
                barrier.wait(timeout=10)
                outcomes.append(len(ops.offset_overpayments(session, taxpayer_id=overpaid["person"].id, as_of=D(2026, 12, 31))))
        except sa.exc.OperationalError as exc:  # SQLite: the second writer may give up waiting for the lock
            outcomes.append(f"locked: {exc.orig}")
        except sa.exc.IntegrityError as exc:
            # SQLite has no row lock: both read, and the second's postings meet the first's under the
            # same keys (the set-off's payment_ref is a function of what it sets off), so it is refused
            outcomes.append(f"refused: {exc.orig}")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert 2 in outcomes and len(outcomes) == 2, outcomes
    assert len(offset_rows(runtime)) == 4


def test_the_command_catches_up(runtime, database_url, tmp_path, overpaid):
    config = tmp_path / "gmina.toml"
    config.write_text(render_config().replace('url = "sqlite:///platforma.sqlite3"', f'url = "{database_url}"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMA")}
    env["PLATFORMA_CONFIG"] = str(config)

    def command(*args):
        done = subprocess.run([sys.executable, "-m", "platforma.cli", "taxes", "offset-overpayments", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert command("--as-of", "2026-04-01") == {"as_of": "2026-04-01", "taxpayers": 1, "offsets": 1, "amount": "300.00"}
    assert command("--as-of", "2026-04-01") == {"as_of": "2026-04-01", "taxpayers": 1, "offsets": 0, "amount": "0"}
    bad = subprocess.run([sys.executable, "-m", "platforma.cli", "taxes", "offset-overpayments", "--as-of", "2026-02-30"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "RRRR-MM-DD" in bad.stderr and "Traceback" not in bad.stderr


def test_an_old_overpayment_found_late_never_overpays_an_installment_paid_since(runtime, create_taxpayer):
    """A nadpłata from April (never set off: e.g. a ledger taken over from the domain system) and an
    installment due in March that the taxpayer paid in full, with its interest, in December: a
    payment posted then must not set the old nadpłata off in April against the installment (the
    December payment would then have paid it twice, its principal going below zero). It stays an
    overpayment, to be refunded or set off against what is still open."""
    person = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        assess(session, person.id, "A", 2025, [(D(2025, 3, 15), 87)], D(2025, 1, 2))
        session.add(Posting(taxpayer_id=person.id, liability_id=None, installment_id=None, kind="nadplata",
                            amount=Decimal("1.00"), value_date=D(2025, 4, 22), booked_on=D(2025, 4, 22),
                            payment_ref="OLD", origin="import", source="local", source_key="OLD:1"))
    day = D(2025, 12, 7)
    with transaction(runtime.session_factory) as session:
        owed = account(session, person.id, day)
        ops.post_payment(session, taxpayer_id=person.id, amount=owed.zaleglosc + owed.odsetki + Decimal("1.00"), paid_on=day,
                         payment_ref="DEC")
    after = state(runtime, person.id, day)
    assert after.zaleglosc == 0 and after.odsetki == 0
    assert after.nadplata == Decimal("2.00")  # the old 1.00 and the 1.00 paid too much in December
    with runtime.session_factory() as session:
        rows = session.execute(sa.select(Posting.kind, Posting.amount).where(Posting.installment_id.is_not(None))).all()
    principal = sum((a if k == "przypis" else -a if k == "wplata" else a for k, a in rows), Decimal(0))
    assert principal == 0  # nothing paid twice


# -- what the review of the set-off found (each was reproduced before it was fixed) ----------------------

def _loose(session, taxpayer_id, kind, amount, day, key):
    session.add(Posting(taxpayer_id=taxpayer_id, kind=kind, amount=Decimal(amount), booked_on=day, value_date=day,
                        origin="import", source="local", source_key=key))


def test_a_statement_line_dated_before_a_set_off_pays_only_what_is_still_open(runtime, create_taxpayer):
    """The nightly set-off pays the installment on its due date; a bank line paid the day before arrives
    after it: it must not pay the installment again, it is an overpayment."""
    person = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        _loose(session, person.id, "nadplata", "300.00", D(2025, 1, 10), "imp1")
        assess(session, person.id, "L1", 2025, [(D(2025, 3, 15), 300)], D(2025, 2, 14))
    with transaction(runtime.session_factory) as session:
        assert ops.offset_overpayments(session, taxpayer_id=person.id, as_of=D(2025, 3, 17))
    with transaction(runtime.session_factory) as session:
        ops.post_payments_batch(session, [ops.PaymentToPost(person.id, Decimal("120.00"), D(2025, 3, 14), "ST1")])
    after = state(runtime, person.id, D(2025, 3, 20))
    assert after.zaleglosc == 0 and after.nadplata == Decimal("120.00")
    [liability] = after.liabilities
    assert [i.paid for i in liability.installments] == [Decimal("300.00")]


def test_a_refunded_overpayment_is_not_set_off_again(runtime, create_taxpayer):
    person = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("100.00"), paid_on=D(2025, 1, 10), payment_ref="P1")
    with transaction(runtime.session_factory) as session:
        _loose(session, person.id, "zwrot", "100.00", D(2025, 3, 5), "R1")  # refunded on 5 March
    with transaction(runtime.session_factory) as session:
        # a decision for 2024 booked on 3 March, taken over later: the overpayment was there on 3 March,
        # but it has been refunded since
        assess(session, person.id, "L2024", 2024, [(D(2024, 11, 15), 100)], D(2025, 3, 3))
    after = state(runtime, person.id, D(2025, 3, 10))
    assert after.zaleglosc == Decimal("100.00") and after.nadplata == 0
    assert offset_rows(runtime) == []


def test_a_late_set_off_respects_a_write_down_made_since(runtime, create_taxpayer):
    person = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        liability = assess(session, person.id, "L1", 2025, [(D(2025, 3, 15), 300)], D(2025, 2, 14))
        installment_id = liability.installments[0].id
        liability_id = liability.id
    with transaction(runtime.session_factory) as session:
        _loose(session, person.id, "nadplata", "500.00", D(2025, 3, 20), "imp1")
        session.add(Posting(taxpayer_id=person.id, liability_id=liability_id, installment_id=installment_id,
                            kind="odpis", amount=Decimal("200.00"), booked_on=D(2025, 4, 1), value_date=D(2025, 4, 1),
                            origin="system", source="local", source_key="odpis1"))
    with transaction(runtime.session_factory) as session:
        ops.offset_overpayments(session, taxpayer_id=person.id, as_of=D(2025, 5, 1))
    after = state(runtime, person.id, D(2025, 5, 1))
    assert after.zaleglosc == 0 and after.odsetki == 0
    # 100 zł and the interest up to the set-off went to the installment; nothing more
    set_off = sum((amount for kind, amount, _day, _inst in offset_rows(runtime) if kind == "zwrot"), Decimal(0))
    assert after.nadplata == Decimal("500.00") - set_off and set_off < Decimal("150.00")


def test_an_assessment_raised_later_is_set_off(runtime, create_taxpayer):
    person = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        liability = assess(session, person.id, "L1", 2025, [(D(2025, 3, 15), 300)], D(2025, 2, 14))
        installment_id, liability_id = liability.installments[0].id, liability.id
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("300.00"), paid_on=D(2025, 3, 10), payment_ref="P1")
    with transaction(runtime.session_factory) as session:
        _loose(session, person.id, "nadplata", "500.00", D(2025, 4, 1), "imp1")
        session.add(Posting(taxpayer_id=person.id, liability_id=liability_id, installment_id=installment_id,
                            kind="przypis", amount=Decimal("100.00"), booked_on=D(2025, 6, 1), value_date=D(2025, 6, 1),
                            origin="manual", reason="decyzja zmieniająca", source="local", source_key="pz2"))
    with transaction(runtime.session_factory) as session:
        ops.offset_overpayments(session, taxpayer_id=person.id, as_of=D(2025, 6, 2))
    after = state(runtime, person.id, D(2025, 9, 1))
    assert after.zaleglosc == 0 and after.nadplata == Decimal("400.00")


def test_a_co_owners_payment_and_a_set_off_at_once_pay_the_installment_once(runtime, create_taxpayer):
    first, second = create_taxpayer(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        ops.assess_liability(session, tax_kind="nieruchomosci", payer_type="natural", year=2025, amount=Decimal(300),
                             parties=[(first.id, "principal"), (second.id, "co_owner")],
                             installments=[(D(2025, 3, 15), Decimal(300))], booked_on=D(2025, 2, 14),
                             source="local", source_key="L1")
        _loose(session, first.id, "nadplata", "300.00", D(2025, 4, 1), "imp1")
    paying = runtime.session_factory()
    ops.post_payment(paying, taxpayer_id=second.id, amount=Decimal("300.00"), paid_on=D(2025, 4, 2), payment_ref="B1")
    paying.flush()  # the co-owner's payment holds the accounts' lock, not committed yet
    done = threading.Event()

    def set_off() -> None:
        with transaction(runtime.session_factory) as session:
            ops.offset_overpayments(session, taxpayer_id=first.id, as_of=D(2025, 4, 2))
        done.set()

    worker = threading.Thread(target=set_off)
    worker.start()
    assert not done.wait(1.0)  # it waits for the payment
    paying.commit()
    paying.close()
    worker.join(timeout=30)
    assert done.is_set()
    mine, theirs = state(runtime, first.id, D(2025, 4, 3)), state(runtime, second.id, D(2025, 4, 3))
    assert mine.zaleglosc == 0 and mine.nadplata == Decimal("300.00") and theirs.nadplata == 0


def test_a_clerks_refund_is_never_more_than_the_overpayment(runtime, create_taxpayer, create_user):
    person = create_taxpayer()
    clerk = create_user("clerk")
    with transaction(runtime.session_factory) as session:
        ops.post_payment(session, taxpayer_id=person.id, amount=Decimal("100.00"), paid_on=D(2025, 1, 10), payment_ref="P1")
    with transaction(runtime.session_factory) as session, pytest.raises(ops.PostingError, match="przekracza nadpłatę"):
        ops.manual_posting(session, taxpayer_id=person.id, kind="zwrot", amount=Decimal("150.00"),
                           value_date=D(2025, 2, 1), reason="wniosek o zwrot", author=clerk)
    with transaction(runtime.session_factory) as session:
        ops.manual_posting(session, taxpayer_id=person.id, kind="zwrot", amount=Decimal("100.00"),
                           value_date=D(2025, 2, 1), reason="wniosek o zwrot", author=clerk)
    assert state(runtime, person.id, D(2025, 2, 2)).nadplata == 0
