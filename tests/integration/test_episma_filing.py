"""Filing a signed letter through the resident's pages, on SQLite and PostgreSQL: the letter is stored
with its register number and files in one transaction, then (and only then) the office seals a receipt;
every bad upload is refused with a Polish reason and changes nothing."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree

from platforma.accounts.models import TaxpayerAccess
from platforma.core.db import transaction
from platforma.core.jobs import OutboxJob
from platforma.episma.models import Letter, LetterFile
from platforma.episma.rules import UPO_NAMESPACE, read_receipt
from platforma.esign.seal import configured_trust_anchors
from platforma.esign.verify import verify_document
from tests.conftest import ROOT
from tests.integration.episma_support import (
    SMALL_PDF, attach, count, document_to_sign, file_general_letter, letter_pki, letter_settings, link,
    new_general_letter, now_utc, signed, upload,
)
from tests.unit.test_esign_pki import PESEL, make_leaf, make_pki

__all__ = ["letter_pki"]


@pytest.fixture
def settings(tmp_path, database_url, letter_pki):
    return letter_settings(tmp_path, database_url, letter_pki)


@pytest.fixture
def resident(create_user, create_taxpayer, runtime, logged_in):
    user = create_user("resident")
    taxpayer = create_taxpayer(pesel=PESEL)
    link(runtime, user, taxpayer)
    client = logged_in(user)
    client.user, client.taxpayer = user, taxpayer
    return client


def _letter(runtime, letter_id: int) -> Letter:
    with runtime.session_factory() as session:
        letter = session.get(Letter, letter_id)
        session.expunge(letter)
        return letter


def test_a_signed_letter_is_filed_registered_and_gets_a_sealed_receipt(resident, runtime, letter_pki, tmp_path):
    letter_id = new_general_letter(resident, subject="Kopia decyzji", body="Proszę o kopię decyzji <&> z 2025 r.",
                                   taxpayer_id=resident.taxpayer.id)
    assert attach(resident, letter_id, "umowa.pdf", SMALL_PDF).status_code == 302
    document = signed(document_to_sign(resident, letter_id), letter_pki)

    response = upload(resident, letter_id, document)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/pisma/{letter_id}")

    letter = _letter(runtime, letter_id)
    year = now_utc().astimezone(dt.timezone(dt.timedelta(hours=1))).year
    assert letter.status == "received" and letter.registration_number == f"KO.1.{year}"
    assert letter.signer_pesel == PESEL and letter.signature_kind == "xades"
    assert letter.document_sha256 == hashlib.sha256(document).hexdigest()
    assert letter.data["subject"] == "Kopia decyzji" and letter.data["body"] == "Proszę o kopię decyzji <&> z 2025 r."
    with runtime.session_factory() as session:
        files = {f.role: f for f in session.scalars(sa.select(LetterFile).where(LetterFile.letter_id == letter_id)
                                                    .options(sa.orm.undefer(LetterFile.content)))}
    assert set(files) == {"signed", "content", "attachment", "receipt"}
    assert files["signed"].content == document
    assert files["attachment"].content == SMALL_PDF and files["attachment"].sha256 == hashlib.sha256(SMALL_PDF).hexdigest()
    assert count(runtime, "draft_attachment") == 0

    # the receipt: sealed, verifiable, and stating what was received
    receipt = resident.get(f"/pisma/{letter_id}/upo.xml")
    assert receipt.status_code == 200
    report = verify_document(receipt.data, trust_anchors=configured_trust_anchors(runtime.settings))
    assert report.valid, report.errors
    facts = read_receipt(receipt.data)
    assert facts["registration_number"] == letter.registration_number
    assert base64.b64decode(facts["document_digest"]) == hashlib.sha256(document).digest()
    assert facts["document_id"] == letter.document_id
    root = etree.fromstring(receipt.data)
    [attachment] = root.findall(f".//{{{UPO_NAMESPACE}}}Zalacznik")
    assert attachment.findtext(f"{{{UPO_NAMESPACE}}}NazwaPliku") == "umowa.pdf"

    page = resident.get(f"/pisma/{letter_id}").data.decode()
    assert letter.registration_number in page and "Kopia decyzji" in page and "UPO do wydruku (PDF)" in page
    pdf = resident.get(f"/pisma/{letter_id}/upo.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    # the author is told by e-mail
    mails = list((tmp_path / "mail").glob("*.eml"))
    assert any(letter.registration_number in m.read_text(errors="replace") for m in mails)
    # and the registry office's audit log has the filing
    assert count(runtime, "audit_entry", "action = 'letter.filed' AND object_id = :id", id=str(letter_id)) == 1


def test_the_receipt_verifies_with_the_command_line(resident, runtime, letter_pki, tmp_path):
    letter_id, _ = file_general_letter(resident, letter_pki)
    path = tmp_path / "upo.xml"
    path.write_bytes(resident.get(f"/pisma/{letter_id}/upo.xml").data)
    result = subprocess.run([sys.executable, "-m", "platforma.cli", "esign", "verify", str(path),
                             "--trust", str(tmp_path / "seal-cert.pem")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"valid": true' in result.stdout


def test_numbers_follow_one_another_in_the_register(resident, runtime, letter_pki):
    first, _ = file_general_letter(resident, letter_pki)
    second, _ = file_general_letter(resident, letter_pki, subject="Drugie pismo")
    numbers = [_letter(runtime, i).register_seq for i in (first, second)]
    assert numbers == [1, 2]


def _nothing_filed(runtime, letter_id: int) -> None:
    letter = _letter(runtime, letter_id)
    assert letter.status == "draft" and letter.registration_number is None
    assert count(runtime, "letter_file") == 0
    assert count(runtime, "letter_event") == 0
    assert count(runtime, "outbox_job", "kind = 'episma.issue_receipt'") == 0
    assert count(runtime, "register_counter", "last > 0") == 0


def _refused(response, *fragments: str) -> str:
    assert response.status_code == 400, response.data.decode()[:2000]
    page = response.data.decode()
    assert "Pismo nie zostało złożone" in page
    for fragment in fragments:
        assert fragment in page, page[:6000]
    return page


def test_an_unsigned_document_is_refused(resident, runtime):
    letter_id = new_general_letter(resident)
    _refused(upload(resident, letter_id, document_to_sign(resident, letter_id)), "podpis")
    _nothing_filed(runtime, letter_id)


def test_a_document_changed_after_signing_is_refused(resident, runtime, letter_pki):
    letter_id = new_general_letter(resident, body="Wnoszę o zwrot 100 zł.")
    document = signed(document_to_sign(resident, letter_id), letter_pki)
    forged = document.replace("100 zł".encode(), "900 zł".encode())
    assert forged != document
    _refused(upload(resident, letter_id, forged), "Podpis dokumentu nie został przyjęty")
    _nothing_filed(runtime, letter_id)


def test_a_signature_from_an_untrusted_issuer_is_refused(resident, runtime):
    letter_id = new_general_letter(resident)
    stranger = make_pki()
    _refused(upload(resident, letter_id, signed(document_to_sign(resident, letter_id), stranger)),
             "Podpis dokumentu nie został przyjęty")
    _nothing_filed(runtime, letter_id)


def test_a_certificate_expired_at_signing_is_refused(resident, runtime, letter_pki):
    letter_id = new_general_letter(resident)
    expired = make_leaf(letter_pki.intermediate, not_before=now_utc() - dt.timedelta(days=400),
                        not_after=now_utc() - dt.timedelta(days=2))
    document = signed(document_to_sign(resident, letter_id), letter_pki, leaf=expired)
    _refused(upload(resident, letter_id, document), "Podpis dokumentu nie został przyjęty")
    _nothing_filed(runtime, letter_id)


def test_a_doctype_is_refused(resident, runtime, letter_pki):
    letter_id = new_general_letter(resident)
    document = signed(document_to_sign(resident, letter_id), letter_pki)
    with_dtd = document.replace(b"?>", b'?>\n<!DOCTYPE x [<!ENTITY e "e">]>', 1)
    _refused(upload(resident, letter_id, with_dtd), "DOCTYPE")
    _nothing_filed(runtime, letter_id)


def test_another_drafts_signed_document_is_refused(resident, runtime, letter_pki):
    first = new_general_letter(resident, subject="Pierwsze")
    second = new_general_letter(resident, subject="Drugie")
    document = signed(document_to_sign(resident, first), letter_pki)
    _refused(upload(resident, second, document), "inny identyfikator")
    _nothing_filed(runtime, second)


def test_the_same_signed_file_twice_files_one_letter(resident, runtime, letter_pki):
    letter_id = new_general_letter(resident)
    document = signed(document_to_sign(resident, letter_id), letter_pki)
    assert upload(resident, letter_id, document).status_code == 302
    again = upload(resident, letter_id, document)
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/pisma/{letter_id}")
    assert count(runtime, "letter", "status <> 'draft'") == 1
    assert count(runtime, "letter_file", "role = 'signed'") == 1
    assert count(runtime, "register_counter", "last = 1") == 1


def test_a_signer_who_is_not_the_author_is_flagged_for_the_clerk(create_user, create_taxpayer, runtime, logged_in,
                                                                 letter_pki):
    user = create_user("resident")
    link(runtime, user, create_taxpayer())  # a PESEL other than the certificate's
    client = logged_in(user)
    letter_id, _ = file_general_letter(client, letter_pki)
    letter = _letter(runtime, letter_id)
    assert any("Podpisujący nie jest autorem" in w for w in letter.verification["warnings"])


# -- attachments -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, message", [
    ("program.pdf", b"MZ\x90\x00" + b"\x00" * 200, "nie odpowiada rozszerzeniu"),
    ("strona.html", b"<html><script>alert(1)</script></html>", "dopuszczalne rodzaje plików"),
    ("notatka.txt", b"<script>alert(1)</script>", "kod HTML"),
    ("pusty.pdf", b"", "jest pusty"),
])
def test_a_forbidden_attachment_is_refused_before_anything_is_stored(resident, runtime, name, content, message):
    letter_id = new_general_letter(resident)
    response = attach(resident, letter_id, name, content)
    assert response.status_code == 400
    assert message in response.data.decode()
    assert count(runtime, "draft_attachment") == 0


def test_an_attachment_over_the_limit_is_refused(app_with, runtime, create_user, letter_pki, tmp_path, database_url):
    from tests.conftest import login

    app = app_with(esign={"trust_anchors": "zaufani.pem", "seal_key": "seal-key.pem",
                          "seal_certificate": "seal-cert.pem"},
                   episma={"max_attachment_mb": 1, "max_attachments_mb": 1, "max_attachments": 2})
    client = app.test_client()
    user = create_user("resident")
    assert login(client, user).status_code == 302
    letter_id = new_general_letter(client)
    big = b"%PDF-1.4\n" + b"0" * (1024 * 1024)
    response = attach(client, letter_id, "skan.pdf", big)
    assert response.status_code == 400 and "dopuszczalny rozmiar załącznika to 1,0 MB" in response.data.decode()
    assert attach(client, letter_id, "a.pdf", SMALL_PDF).status_code == 302
    assert attach(client, letter_id, "b.pdf", SMALL_PDF).status_code == 302
    third = attach(client, letter_id, "c.pdf", SMALL_PDF)
    assert third.status_code == 400 and "najwyżej 2 plików" in third.data.decode()
    assert count(runtime, "draft_attachment") == 2


# -- storage that fails half-way -----------------------------------------------------------------------

def _failing_attachment_storage(runtime, on: bool) -> None:
    with runtime.engine.begin() as conn:
        if runtime.engine.dialect.name == "postgresql":
            if on:
                conn.execute(sa.text("CREATE FUNCTION test_disk_full() RETURNS trigger AS $$ BEGIN "
                                     "RAISE EXCEPTION 'disk full'; END; $$ LANGUAGE plpgsql"))
                conn.execute(sa.text("CREATE TRIGGER test_disk_full BEFORE INSERT ON letter_file FOR EACH ROW "
                                     "WHEN (NEW.role = 'attachment') EXECUTE FUNCTION test_disk_full()"))
            else:
                conn.execute(sa.text("DROP TRIGGER test_disk_full ON letter_file"))
                conn.execute(sa.text("DROP FUNCTION test_disk_full()"))
        elif on:
            conn.execute(sa.text("CREATE TRIGGER test_disk_full BEFORE INSERT ON letter_file "
                                 "WHEN NEW.role = 'attachment' BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(sa.text("DROP TRIGGER test_disk_full"))


def test_a_letter_whose_storage_fails_half_way_gets_no_receipt_and_no_number(resident, runtime, letter_pki, app):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    letter_id = new_general_letter(resident)
    assert attach(resident, letter_id, "umowa.pdf", SMALL_PDF).status_code == 302
    document = signed(document_to_sign(resident, letter_id), letter_pki)
    _failing_attachment_storage(runtime, True)
    try:
        response = upload(resident, letter_id, document)
    finally:
        _failing_attachment_storage(runtime, False)
    assert response.status_code == 500
    _nothing_filed(runtime, letter_id)
    assert count(runtime, "draft_attachment") == 1  # the draft is as it was
    # filed again once storage works: the number given is the first, so none was lost
    assert upload(resident, letter_id, document).status_code == 302
    letter = _letter(runtime, letter_id)
    assert letter.register_seq == 1 and letter.receipt_issued_at is not None


# -- what was filed never changes -----------------------------------------------------------------------

def test_a_filed_letter_is_written_once(resident, runtime, letter_pki):
    letter_id, _ = file_general_letter(resident, letter_pki)
    statements = [
        ("UPDATE letter SET document_sha256 = 'x' WHERE id = :id", "written once"),
        ("UPDATE letter SET registration_number = 'KO.99.2026' WHERE id = :id", "written once"),
        ("UPDATE letter SET status = 'draft' WHERE id = :id", "written once"),
        ("DELETE FROM letter WHERE id = :id", "never deleted"),
        ("UPDATE letter_file SET content = :blob WHERE letter_id = :id", "append-only"),
        ("DELETE FROM letter_event WHERE letter_id = :id", "append-only"),
    ]
    for sql, message in statements:
        with pytest.raises(sa.exc.DBAPIError, match=message):
            with runtime.engine.begin() as conn:
                conn.execute(sa.text(sql), {"id": letter_id, "blob": b"x"})
    # what the office may change still changes
    with runtime.engine.begin() as conn:
        conn.execute(sa.text("UPDATE letter SET status = 'registered', case_reference = 'FN.1.2026' WHERE id = :id"),
                     {"id": letter_id})
    assert _letter(runtime, letter_id).case_reference == "FN.1.2026"


def test_the_receipt_job_is_queued_in_the_filing_transaction(resident, runtime, letter_pki):
    letter_id, _ = file_general_letter(resident, letter_pki)
    with runtime.session_factory() as session:
        jobs = session.scalars(sa.select(OutboxJob).where(OutboxJob.kind == "episma.issue_receipt")).all()
    assert [(j.payload["letter_id"], j.status) for j in jobs] == [(letter_id, "done")]


# -- PAdES: the letter's PDF signed and uploaded -----------------------------------------------------------

def test_a_pades_signed_form_pdf_is_filed_with_the_form_read_from_the_signed_revision(resident, runtime, letter_pki):
    from tests.unit.test_esign_pades import sign_pdf

    letter_id = new_general_letter(resident, subject="Wniosek w PDF", body="Treść podpisana w PDF.")
    pdf = resident.get(f"/pisma/{letter_id}/do-podpisu.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    document = sign_pdf(pdf.data, letter_pki, signing_time=now_utc() - dt.timedelta(minutes=1))
    response = upload(resident, letter_id, document, name="pismo.pdf", method="pades_upload")
    assert response.status_code == 302, response.data.decode()[:3000]
    letter = _letter(runtime, letter_id)
    assert letter.status == "received" and letter.signature_kind == "pades"
    assert letter.verification["format"].startswith("PAdES") and letter.signer_pesel == PESEL
    assert letter.data["body"] == "Treść podpisana w PDF."
    page = resident.get(f"/pisma/{letter_id}").data.decode()
    assert "Treść podpisana w PDF." in page
    receipt = resident.get(f"/pisma/{letter_id}/upo.xml").data
    assert base64.b64decode(read_receipt(receipt)["document_digest"]) == hashlib.sha256(document).digest()


def test_a_pdf_changed_after_signing_is_refused(resident, runtime, letter_pki):
    from tests.unit.test_esign_pades import add_page, sign_pdf, update

    letter_id = new_general_letter(resident)
    document = sign_pdf(resident.get(f"/pisma/{letter_id}/do-podpisu.pdf").data, letter_pki,
                        signing_time=now_utc() - dt.timedelta(minutes=1))
    _refused(upload(resident, letter_id, update(document, add_page), name="pismo.pdf", method="pades_upload"),
             "Podpis dokumentu nie został przyjęty")
    _nothing_filed(runtime, letter_id)


def test_a_free_signed_pdf_is_a_general_letter_but_not_a_structured_form(resident, runtime, letter_pki):
    from tests.conftest import csrf_from
    from tests.unit.test_esign_pades import make_pdf, sign_pdf

    free = sign_pdf(make_pdf("Pismo napisane w edytorze."), letter_pki, signing_time=now_utc() - dt.timedelta(minutes=1))
    page = resident.get("/pisma/nowe/zaswiadczenie_o_niezaleganiu")
    created = resident.post("/pisma/nowe/zaswiadczenie_o_niezaleganiu", data={
        "csrf_token": csrf_from(page.data), "taxpayer": "", "scope": "all", "purpose": "do banku", "copies": "1",
        "delivery": "platform"})
    assert created.status_code == 302, created.data.decode()[:3000]
    certificate_id = int(created.headers["Location"].rsplit("/", 1)[1])
    _refused(upload(resident, certificate_id, free, name="pismo.pdf", method="pades_upload"),
             "nie zawiera danych formularza")
    _nothing_filed(runtime, certificate_id)

    letter_id = new_general_letter(resident)
    assert upload(resident, letter_id, free, name="pismo.pdf", method="pades_upload").status_code == 302
    letter = _letter(runtime, letter_id)
    assert letter.status == "received" and letter.signature_kind == "pades"
    assert "Treścią pisma jest podpisany dokument PDF" in resident.get(f"/pisma/{letter_id}").data.decode()
    content = resident.get(f"/pisma/{letter_id}/tresc.pdf")
    assert content.status_code == 200 and free.startswith(content.data)


def test_a_free_signed_pdf_carrying_a_forbidden_file_is_refused(resident, runtime, letter_pki):
    """The files inside a free-form signed PDF obey the attachment rules, as a form's attachments do."""
    from tests.unit.test_esign_pades import make_pdf, sign_pdf

    carrying = sign_pdf(make_pdf("Pismo z załącznikiem.", attachments={"faktura.exe": b"MZ\x90\x00" + b"\x00" * 200}),
                        letter_pki, signing_time=now_utc() - dt.timedelta(minutes=1))
    letter_id = new_general_letter(resident)
    _refused(upload(resident, letter_id, carrying, name="pismo.pdf", method="pades_upload"), "faktura.exe")
    _nothing_filed(runtime, letter_id)


def test_a_representative_whose_authority_was_revoked_cannot_sign_for_the_taxpayer(create_user, create_taxpayer,
                                                                                   runtime, logged_in, letter_pki):
    from platforma.core.db import utcnow

    user = create_user("resident")
    taxpayer = create_taxpayer()
    link(runtime, user, taxpayer, relation="representative")
    client = logged_in(user)
    letter_id = new_general_letter(client, taxpayer_id=taxpayer.id)
    document = signed(document_to_sign(client, letter_id), letter_pki)
    with transaction(runtime.session_factory) as session:
        session.execute(sa.update(TaxpayerAccess).where(TaxpayerAccess.user_id == user.id).values(revoked_at=utcnow()))
    refused = client.get(f"/pisma/{letter_id}/do-podpisu.xml")
    assert refused.status_code == 302
    assert "Nie możesz już działać w imieniu podatnika" in client.get(refused.headers["Location"]).get_data(as_text=True)
    _refused(upload(client, letter_id, document), "Nie możesz już działać w imieniu podatnika")
    _nothing_filed(runtime, letter_id)
