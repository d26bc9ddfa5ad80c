"""Tagged PDFs of the account: the statement and a decision's summary, for whoever may see them."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from platforma.accounts import operations as account_ops
from platforma.accounts.models import User
from platforma.core.db import transaction
from platforma.taxes import operations as ops
from platforma.taxes.models import Decision, Taxpayer

D = dt.date


@pytest.fixture
def resident_with_tax(runtime, create_user, create_taxpayer):
    resident, person = create_user(), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        account_ops.link_taxpayer(session, user=session.get(User, resident.id), taxpayer=session.get(Taxpayer, person.id),
                                  relation="self", granted_by=None)
        decision = Decision(number="FN.3120.42.2025", document_type="decyzja", year=2025, issued_on=D(2025, 2, 10),
                            delivered_on=D(2025, 2, 14), source="local", source_key="D42")
        liability = ops.assess_liability(
            session, tax_kind="nieruchomosci", payer_type="natural", year=2025, amount=Decimal(1234),
            parties=[(person.id, "principal")], booked_on=D(2025, 2, 14), source="local", source_key="L42", decision=decision,
            installments=[(D(2025, 3, 15), Decimal(309)), (D(2025, 5, 15), Decimal(309)), (D(2025, 9, 15), Decimal(309)), (D(2025, 11, 15), Decimal(307))],
            description="Podatek od nieruchomości 2025",
        )
        decision_id = liability.decision_id
    return resident, person, decision_id


def read_pdf(pdf: bytes) -> tuple[str, dict]:
    """The text of a PDF and its document catalogue."""
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages), reader.trailer["/Root"]


def assert_tagged_polish(catalogue) -> None:
    """Tagged (PDF/UA): a structure tree, marked content, Polish as the document language."""
    assert "/StructTreeRoot" in catalogue
    assert bool(catalogue["/MarkInfo"]["/Marked"])
    assert str(catalogue["/Lang"]).lower().startswith("pl")


def test_statement_and_decision_pdfs(logged_in, resident_with_tax, create_taxpayer):
    resident, person, decision_id = resident_with_tax
    client = logged_in(resident)
    statement = client.get(f"/podatki/{person.id}/wyciag.pdf")
    assert statement.status_code == 200 and statement.mimetype == "application/pdf"
    text, catalogue = read_pdf(statement.data)
    assert_tagged_polish(catalogue)
    assert "Wyciąg z konta podatnika" in text and person.display_name in text
    decision = client.get(f"/podatki/{person.id}/decyzje/{decision_id}.pdf")
    assert decision.status_code == 200
    text, catalogue = read_pdf(decision.data)
    assert_tagged_polish(catalogue)
    assert "FN.3120.42.2025" in text and "309,00" in text

    other = create_taxpayer()
    assert client.get(f"/podatki/{other.id}/wyciag.pdf").status_code == 403
    assert client.get(f"/podatki/{other.id}/decyzje/{decision_id}.pdf").status_code == 403
    assert client.get(f"/podatki/{person.id}/decyzje/999999.pdf").status_code == 404
