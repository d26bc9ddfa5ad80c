"""Random statements: every credit is posted once to the taxpayer it names, or waits, and a clerk resolves it once.

Hypothesis draws a statement of credits (to a taxpayer's individual account; titled with a decision
number, a PESEL, a NIP, the reference of an online payment confirmed or still pending; titled with
nothing anyone can match) and debits, imports it, has a clerk resolve some of what waits (assign to
a taxpayer, mark for return, mark as a gateway's payout, each once; a second try on a resolved line),
and imports the file again. Each example runs in one transaction on both databases and is rolled
back. Then:

* each credit has the fate its title and account give it (the oracle below), and a debit is a debit;
* a line posted (matched or assigned) is posted whole, once, to its taxpayer, under its own reference:
  its wpłata and nadpłata add up to its amount; a line not posted has no posting;
* per taxpayer, what the statement posted is the sum of that taxpayer's posted lines;
* the online payment a title names is not posted again (its postings are those of its confirmation);
* a clerk's second action on a resolved line is refused and changes nothing; the file imported again
  changes nothing.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from platforma.payments import operations, reconciliation
from platforma.payments.models import StatementLine
from platforma.payments.queries import statement_accounts, virtual_layout
from platforma.taxes.models import Posting
from tests.integration.test_payments_statements import PAYMENTS, camt053, decided

D = dt.date
KINDS = ("account", "decision", "identifier", "confirmed", "pending", "nobody", "debit")
#: the three natural persons and the company
PEOPLE = 4


@pytest.fixture
def settings(settings_factory, database_url):
    return settings_factory(database_url, payments=PAYMENTS)


@pytest.fixture
def cast(create_taxpayer, create_user):
    """Three residents and a company (committed once); a resident user, a clerk."""
    people = [create_taxpayer() for _ in range(PEOPLE - 1)] + [create_taxpayer("legal")]
    return people, create_user("resident"), create_user("clerk")


def _grosze(n: int) -> Decimal:
    return Decimal(n).scaleb(-2)


entries = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, PEOPLE - 1), st.integers(1, 500_000)),
                   min_size=1, max_size=12)
#: per unmatched line, in order: what the clerk does (None: leaves it), for whom
actions = st.lists(st.tuples(st.sampled_from((None, "assign", "return", "payout")), st.integers(0, PEOPLE - 1)),
                   max_size=12)


def _gmina(session, people, resident):
    """A 2026 decision of each person (sole principal); an online payment of the first person
    confirmed and posted, one of the second still pending. Returns the decision numbers and the two
    references."""
    numbers = [decided(session, taxpayer, n + 7, [(D(2026, 3, 16), Decimal(300)), (D(2026, 9, 15), Decimal(300))])
               for n, taxpayer in enumerate(people)]
    references = []
    for n, key in enumerate(("c", "p")):
        payment, _ = operations.create_payment(session, taxpayer_id=people[n].id, user_id=resident.id, gateway="sandbox",
                                               amount=Decimal("99.00"), mode="amount", designation=[], description="t",
                                               idempotency_key=key * 20)
        assert operations.move(session, payment, "pending", "system", kind="registered")
        if key == "c":
            assert operations.move(session, payment, "confirmed", "gateway", paid_on=D(2026, 11, 19))
            operations.post_confirmed(session, payment)
        references.append(payment.reference)
    return numbers, references


def _line(kind, taxpayer, grosze, layout, number, references):
    """(the camt entry, the expected fate: (status, the taxpayer posted to))"""
    amount = f"{_grosze(grosze):.2f}"
    if kind == "account":
        return (amount, True, "podatek", layout.account_for(taxpayer.id), "JAN"), ("matched", taxpayer.id)
    if kind == "decision":
        return (amount, True, f"{number} rata", "", "JAN"), ("matched", taxpayer.id)
    if kind == "identifier":
        identifier = f"PESEL {taxpayer.pesel}" if taxpayer.kind == "natural" else f"NIP {taxpayer.nip}"
        return (amount, True, f"podatek {identifier}", "", "JAN"), ("matched", taxpayer.id)
    if kind == "confirmed":
        return (amount, True, f"wyplata {references[0]}", "", "OPERATOR"), ("gateway", None)
    if kind == "pending":
        return (amount, True, f"wyplata {references[1]}", "", "OPERATOR"), ("unmatched", None)
    if kind == "nobody":
        return (amount, True, "darowizna na festyn", "", "KTOS"), ("unmatched", None)
    return (amount, False, "prowizja", "", "BANK"), ("debit", None)


def _bank_postings(session) -> list[tuple]:
    return session.execute(sa.select(Posting.payment_ref, Posting.taxpayer_id, Posting.kind, Posting.amount)
                           .where(Posting.source == "bank").order_by(Posting.id)).all()


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=entries, clerk_actions=actions)
def test_random_statements_post_every_credit_once_or_leave_it_to_a_clerk(runtime, cast, drawn, clerk_actions):
    people, resident, clerk = cast
    layout, accounts = virtual_layout(runtime.settings), statement_accounts(runtime.settings)
    with runtime.session_factory() as session:
        numbers, references = _gmina(session, people, resident)
        online_before = session.execute(sa.select(Posting.kind, Posting.amount).where(
            Posting.payment_ref == references[0]).order_by(Posting.id)).all()
        lines, fates = zip(*(_line(kind, people[who], grosze, layout, numbers[who], references)
                             for kind, who, grosze in drawn))
        data = camt053(list(lines), opening="9000000.00")  # (the writer knows no negative balance)
        result = reconciliation.import_statement(session, data, file_name="w.xml", layout=layout, accounts=accounts)
        stored = session.scalars(sa.select(StatementLine).order_by(StatementLine.sequence)).all()
        assert [(line.status, line.taxpayer_id if line.status == "matched" else None) for line in stored] == list(fates)
        assert result.matched == sum(1 for status, _ in fates if status == "matched")

        # the clerk resolves what waits, then tries once more on each line resolved
        waiting = [line for line in stored if line.status == "unmatched"]
        resolved = []
        for line, (action, who) in zip(waiting, clerk_actions):
            if action == "assign":
                reconciliation.assign_line(session, line, people[who].id, clerk=clerk, reason="telefon")
            elif action == "return":
                reconciliation.mark_returned(session, line, clerk=clerk, reason="obca wpłata")
            elif action == "payout":
                reconciliation.mark_payout(session, line, clerk=clerk, gateway_name="Piaskownica", reason="zbiorcza")
            if action:
                resolved.append(line)
        before_retries = _bank_postings(session)
        for line in resolved:
            with pytest.raises(reconciliation.ImportRefused):
                reconciliation.assign_line(session, line, people[0].id, clerk=clerk, reason="jeszcze raz")
            with pytest.raises(reconciliation.ImportRefused):
                reconciliation.mark_returned(session, line, clerk=clerk, reason="jeszcze raz")
        session.flush()
        assert _bank_postings(session) == before_retries

        again = reconciliation.import_statement(session, data, file_name="kopia.xml", layout=layout, accounts=accounts)
        assert again.entries == 0 and len(again.already_imported) == 1
        session.expire_all()
        stored = session.scalars(sa.select(StatementLine).order_by(StatementLine.sequence)).all()
        postings = _bank_postings(session)
        online_after = session.execute(sa.select(Posting.kind, Posting.amount).where(
            Posting.payment_ref == references[0]).order_by(Posting.id)).all()
        session.expunge_all()
        session.rollback()

    assert len(stored) == len(drawn) and len(postings) == len(before_retries)
    by_ref = defaultdict(list)
    for ref, taxpayer_id, kind, amount in postings:
        by_ref[ref].append((taxpayer_id, kind, amount))
    per_taxpayer: dict[int, Decimal] = defaultdict(Decimal)
    for line in stored:
        rows = by_ref.pop(f"W{line.id}", [])
        if line.status in ("matched", "assigned"):
            assert line.payment_ref == f"W{line.id}" and {t for t, _k, _a in rows} == {line.taxpayer_id}
            assert sum(a for _t, k, a in rows if k in ("wplata", "nadplata")) == line.amount, rows
            per_taxpayer[line.taxpayer_id] += line.amount
        else:
            assert rows == [] and line.status in ("unmatched", "returned", "gateway", "debit")
            assert line.credit == (line.status != "debit")
    assert by_ref == {}, "postings of no statement line"
    for taxpayer in people:
        posted = sum((a for _r, t, k, a in postings if t == taxpayer.id and k in ("wplata", "nadplata")), Decimal(0))
        assert posted == per_taxpayer[taxpayer.id]
    assert online_after == online_before
