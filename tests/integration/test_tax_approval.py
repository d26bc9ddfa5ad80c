"""The second approval of manual postings ([taxes] manual_posting_approval = true), both databases: a
clerk's posting is a proposal, not in the ledger; a different clerk approves it (posted once, both
names in the audit log) or rejects it with a reason; the proposer cannot decide their own; two
approvals at the same moment post once."""
from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from platforma.core.audit import AuditEntry
from platforma.core.db import transaction
from platforma.taxes import operations as ops
from platforma.taxes.models import Posting, PostingProposal
from tests.conftest import csrf_from, login

D = dt.date


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).replace("\xa0", " "))


@pytest.fixture
def office(app_with, create_user, create_taxpayer, runtime):
    app = app_with(taxes={"manual_posting_approval": True})
    person = create_taxpayer()
    with transaction(runtime.session_factory) as session:
        liability = ops.assess_liability(
            session, tax_kind="nieruchomosci", payer_type="natural", year=2025, amount=Decimal(1000),
            parties=[(person.id, "principal")], installments=[(D(2025, 3, 15), Decimal(1000))], booked_on=D(2025, 2, 20),
            source="local", source_key="L1", description="Podatek od nieruchomości 2025")
        installment_id = liability.installments[0].id
    clerks = []
    for _ in range(2):
        user = create_user("clerk")
        client = app.test_client()
        assert login(client, user).status_code == 302
        clerks.append((user, client))
    return {"person": person, "installment": installment_id, "clerks": clerks}


def postings(runtime, **where):
    with runtime.session_factory() as session:
        return session.scalars(sa.select(Posting).filter_by(origin="manual", **where)).all()


def audit(runtime, action):
    with runtime.session_factory() as session:
        return session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def propose(client, person_id, installment_id, amount="250,00"):
    form = client.get(f"/urzad/podatnicy/{person_id}/ksiegowania/nowe")
    return client.post(f"/urzad/podatnicy/{person_id}/ksiegowania/nowe", data={
        "kind": "odpis", "installment": str(installment_id), "amount": amount, "value_date": "2025-06-01",
        "reason": "decyzja zmieniająca FN.3120.7.2025", "csrf_token": csrf_from(form.data)})


def decide(client, proposal_id, decision, reason=""):
    page = client.get("/urzad/podatnicy/ksiegowania-do-zatwierdzenia")
    return client.post(f"/urzad/podatnicy/ksiegowania-do-zatwierdzenia/{proposal_id}", follow_redirects=True,
                       data={"decision": decision, "reason": reason, "csrf_token": csrf_from(page.data)})


def test_a_proposal_is_approved_by_another_clerk(runtime, office):
    (first, first_client), (second, second_client) = office["clerks"]
    person = office["person"]
    response = propose(first_client, person.id, office["installment"])
    assert response.status_code == 302 and response.headers["Location"].endswith("/urzad/podatnicy/ksiegowania-do-zatwierdzenia")
    assert postings(runtime) == []
    with runtime.session_factory() as session:
        [proposal] = session.scalars(sa.select(PostingProposal)).all()
    assert (proposal.state, proposal.amount, proposal.proposed_by_id) == ("proposed", Decimal("250.00"), first.id)
    listed = text_of(second_client.get("/urzad/podatnicy/ksiegowania-do-zatwierdzenia"))
    assert person.display_name in listed and "decyzja zmieniająca FN.3120.7.2025" in listed and first.email in listed

    own = decide(first_client, proposal.id, "approve")
    assert "zatwierdza albo odrzuca inny pracownik" in text_of(own) and postings(runtime) == []
    no_reason = decide(second_client, proposal.id, "reject", " ")
    assert "Podaj powód odrzucenia" in text_of(no_reason)

    approved = decide(second_client, proposal.id, "approve")
    assert "Zatwierdzono i zaksięgowano" in text_of(approved)
    [posting] = postings(runtime)
    assert (posting.kind, posting.amount, posting.created_by_id, posting.source) == ("odpis", Decimal("250.00"), first.id, "approval")
    [entry] = audit(runtime, "posting.approved")
    assert entry.actor_id == second.id and entry.object_id == str(posting.id)
    assert entry.details["proposed_by"]["email"] == first.email and entry.details["approved_by"]["email"] == second.email
    assert "już rozpatrzone" in text_of(decide(second_client, proposal.id, "approve"))
    assert len(postings(runtime)) == 1
    ledger = text_of(second_client.get(f"/urzad/podatnicy/{person.id}/ksiegowania"))
    assert f"{first.email}; zatwierdził: {second.email}" in ledger
    assert [e.actor_id for e in audit(runtime, "posting.proposed")] == [first.id]


def test_a_rejected_proposal_is_never_posted(runtime, office):
    (first, first_client), (second, second_client) = office["clerks"]
    propose(first_client, office["person"].id, office["installment"], "99,99")
    with runtime.session_factory() as session:
        proposal_id = session.scalar(sa.select(PostingProposal.id))
    assert "Odrzucono" in text_of(decide(second_client, proposal_id, "reject", "kwota niezgodna z decyzją"))
    assert "już rozpatrzone" in text_of(decide(second_client, proposal_id, "approve"))
    assert postings(runtime) == []
    with runtime.session_factory() as session:
        proposal = session.get(PostingProposal, proposal_id)
        assert (proposal.state, proposal.decided_by_id, proposal.decision_reason) == ("rejected", second.id, "kwota niezgodna z decyzją")
    [entry] = audit(runtime, "posting.rejected")
    assert entry.actor_id == second.id and entry.details["rejection"] == "kwota niezgodna z decyzją"
    assert "Nie ma księgowań czekających" in text_of(second_client.get("/urzad/podatnicy/ksiegowania-do-zatwierdzenia"))


def test_two_approvals_at_once_post_once(runtime, office, create_user):
    (first, _), (second, _) = office["clerks"]
    third = create_user("clerk")
    with transaction(runtime.session_factory) as session:
        proposal_id = ops.propose_manual_posting(
            session, taxpayer_id=office["person"].id, kind="odpis", amount=Decimal("10.00"), value_date=D(2025, 6, 1),
            reason="decyzja zmieniająca", author=first, installment_id=office["installment"]).id
    barrier = threading.Barrier(2)
    outcomes = []

    def approve(approver):
        try:
            with transaction(runtime.session_factory) as session:
                session.connection()  # the transaction begins before both meet
                barrier.wait(timeout=10)
                ops.approve_proposal(session, proposal_id=proposal_id, approver=approver)
            outcomes.append("posted")
        except ops.PostingError as exc:
            outcomes.append(str(exc))
        except sa.exc.OperationalError as exc:  # SQLite: the second writer may give up waiting for the lock
            outcomes.append(f"locked: {exc.orig}")

    threads = [threading.Thread(target=approve, args=(user,)) for user in (second, third)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes.count("posted") == 1, outcomes
    assert len(postings(runtime)) == 1 and len(audit(runtime, "posting.approved")) == 1


def test_without_the_setting_a_posting_is_posted_at_once(runtime, logged_in, create_user, create_taxpayer, office):
    clerk = create_user("clerk")
    client = logged_in(clerk)  # the default app: manual_posting_approval = false
    response = propose(client, office["person"].id, office["installment"])
    assert response.status_code == 302 and "/ksiegowania" in response.headers["Location"]
    assert len(postings(runtime, created_by_id=clerk.id)) == 1
    listed = text_of(client.get("/urzad/podatnicy/ksiegowania-do-zatwierdzenia"))
    assert "Zatwierdzanie ręcznych księgowań jest wyłączone" in listed
