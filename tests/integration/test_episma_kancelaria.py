"""The registry office (kancelaria) on SQLite and PostgreSQL: the inbox, assignment with a JRWA class,
statuses the author sees, replies with a read confirmation, forwarding to document management, who may
see what, and register numbers without gaps or duplicates under concurrency."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree

from platforma.core.db import transaction
from platforma.core.jobs import run_due
from platforma.episma import operations as ops
from platforma.episma.models import Department, FileCode, Letter, LetterExport
from platforma.episma.rules import sha256_hex
from platforma.episma.sinks import EXPORT_XSD
from tests.conftest import csrf_from, login
from tests.integration.episma_support import (
    SMALL_PDF, attach, count, document_to_sign, file_general_letter, letter_pki, letter_settings, link,
    new_general_letter, signed, upload,
)
from tests.unit.test_esign_pki import PESEL

__all__ = ["letter_pki"]


@pytest.fixture
def export_dir(tmp_path) -> Path:
    folder = tmp_path / "ezd"
    folder.mkdir()
    return folder


@pytest.fixture
def settings(tmp_path, database_url, letter_pki, export_dir):
    return letter_settings(tmp_path, database_url, letter_pki,
                           plugins={"enabled": ["file_drop"], "options": {"file_drop": {"directory": str(export_dir)}}},
                           episma={"document_sink": "file_drop"})


@pytest.fixture
def office(runtime):
    with transaction(runtime.session_factory) as session:
        session.add_all([Department(code="FN", name="Referat Finansowy"), Department(code="OR", name="Referat Organizacyjny"),
                         FileCode(code="3120", title="Wymiar podatków i opłat"), FileCode(code="0152", title="Skargi i wnioski")])
    with runtime.session_factory() as session:
        return {d.code: d.id for d in session.scalars(sa.select(Department))}


@pytest.fixture
def resident(create_user, create_taxpayer, runtime, app):
    user = create_user("resident")
    link(runtime, user, create_taxpayer(pesel=PESEL))
    client = app.test_client()
    assert login(client, user).status_code == 302
    client.user = user
    return client


@pytest.fixture
def clerk(create_user, app):
    user = create_user("clerk")
    client = app.test_client()
    assert login(client, user).status_code == 302
    client.user = user
    return client


def _post(client, path: str, data: dict, **kwargs):
    page = client.get(path.rsplit("/", 1)[0] if not path.endswith("/wykaz") else path)
    return client.post(path, data={"csrf_token": csrf_from(page.data), **data}, **kwargs)


def _letter(runtime, letter_id: int) -> Letter:
    with runtime.session_factory() as session:
        letter = session.get(Letter, letter_id)
        session.expunge(letter)
        return letter


def test_the_office_registers_assigns_and_answers_and_the_author_sees_it(resident, clerk, runtime, letter_pki, office):
    letter_id, _ = file_general_letter(resident, letter_pki, subject="Wniosek o informację")
    letter = _letter(runtime, letter_id)

    inbox = clerk.get("/urzad/kancelaria/").data.decode()
    assert letter.registration_number in inbox and "Wniosek o informację" in inbox
    detail = clerk.get(f"/urzad/kancelaria/{letter_id}").data.decode()
    assert "podpis ważny" in detail and PESEL in detail
    assert count(runtime, "audit_entry", "action = 'letter.viewed' AND object_id = :id", id=str(letter_id)) == 1

    response = _post(clerk, f"/urzad/kancelaria/{letter_id}/dekretacja", {
        "department": office["FN"], "assignee": clerk.user.id, "file_code": "3120", "case_reference": "FN.3120.7.2026"})
    assert response.status_code == 302
    letter = _letter(runtime, letter_id)
    assert (letter.status, letter.file_code, letter.case_reference) == ("registered", "3120", "FN.3120.7.2026")
    author_page = resident.get(f"/pisma/{letter_id}").data.decode()
    assert "zarejestrowane" in author_page and "Referat Finansowy" in author_page and "FN.3120.7.2026" in author_page

    assert _post(clerk, f"/urzad/kancelaria/{letter_id}/status", {"status": "in_progress"}).status_code == 302
    assert "w toku" in resident.get(f"/pisma/{letter_id}").data.decode()

    response = _post(clerk, f"/urzad/kancelaria/{letter_id}/odpowiedz",
                     {"title": "Odpowiedź na wniosek", "body": "Informacja w załączeniu.",
                      "files": [(__import__("io").BytesIO(SMALL_PDF), "informacja.pdf")]},
                     content_type="multipart/form-data")
    assert response.status_code == 302, response.data.decode()[:3000]
    assert _letter(runtime, letter_id).status == "answered"

    # the author is told, opens the reply deliberately, and that is the read confirmation
    page = resident.get(f"/pisma/{letter_id}").data.decode()
    assert "Odbierz odpowiedź" in page
    reply_id = int(__import__("re").search(rf"/pisma/{letter_id}/odpowiedzi/(\d+)", page).group(1))
    before = resident.get(f"/pisma/{letter_id}/odpowiedzi/{reply_id}").data.decode()
    assert "Otwarcie odpowiedzi potwierdza jej odbiór" in before and "Informacja w załączeniu" not in before
    assert count(runtime, "reply", "read_at IS NOT NULL") == 0
    token = csrf_from(before)
    assert resident.post(f"/pisma/{letter_id}/odpowiedzi/{reply_id}", data={"csrf_token": token}).status_code == 302
    after = resident.get(f"/pisma/{letter_id}/odpowiedzi/{reply_id}").data.decode()
    assert "Informacja w załączeniu" in after and "informacja.pdf" in after and "odpowiedz-" in after
    assert count(runtime, "reply", "read_at IS NOT NULL AND read_by_id = :u", u=resident.user.id) == 1
    # opening it again does not move the confirmation
    assert resident.post(f"/pisma/{letter_id}/odpowiedzi/{reply_id}", data={"csrf_token": token}).status_code == 302
    assert count(runtime, "letter_event", "kind = 'reply_read'") == 1
    assert "odebrana" in clerk.get(f"/urzad/kancelaria/{letter_id}").data.decode()

    # closing needs a reason
    refused = _post(clerk, f"/urzad/kancelaria/{letter_id}/status", {"status": "closed", "reason": ""})
    assert refused.status_code == 400 and "Podaj powód zakończenia sprawy" in refused.data.decode()
    assert _post(clerk, f"/urzad/kancelaria/{letter_id}/status",
                 {"status": "closed", "reason": "Sprawa załatwiona"}).status_code == 302
    history = resident.get(f"/pisma/{letter_id}").data.decode()
    assert "zakończone" in history and "Sprawa załatwiona" in history


def test_a_reply_file_is_only_downloadable_after_the_reply_is_opened(resident, clerk, runtime, letter_pki, office):
    letter_id, _ = file_general_letter(resident, letter_pki)
    _post(clerk, f"/urzad/kancelaria/{letter_id}/odpowiedz", {"title": "Odpowiedź", "body": "Treść",
          "files": [(__import__("io").BytesIO(SMALL_PDF), "decyzja.pdf")]}, content_type="multipart/form-data")
    with runtime.engine.connect() as conn:
        reply_id, file_id = conn.execute(sa.text(
            "SELECT r.id, f.id FROM reply r JOIN letter_file f ON f.reply_id = r.id "
            "WHERE f.role = 'reply_attachment'")).one()
    early = resident.get(f"/pisma/{letter_id}/odpowiedzi/{reply_id}/pliki/{file_id}")
    assert early.status_code == 302
    assert count(runtime, "reply", "read_at IS NOT NULL") == 0


def test_a_reply_with_a_forbidden_file_is_refused_whole(resident, clerk, runtime, letter_pki, office):
    letter_id, _ = file_general_letter(resident, letter_pki)
    response = _post(clerk, f"/urzad/kancelaria/{letter_id}/odpowiedz", {
        "title": "Odpowiedź", "body": "Treść", "files": [(__import__("io").BytesIO(b"MZ\x90\x00" * 50), "decyzja.pdf")]},
        content_type="multipart/form-data")
    assert response.status_code == 400 and "nie odpowiada rozszerzeniu" in response.data.decode()
    assert count(runtime, "reply") == 0 and _letter(runtime, letter_id).status == "received"


def test_assignment_needs_a_department_from_the_list(resident, clerk, runtime, letter_pki, office):
    letter_id, _ = file_general_letter(resident, letter_pki)
    missing = _post(clerk, f"/urzad/kancelaria/{letter_id}/dekretacja", {"department": ""})
    assert missing.status_code == 400 and "Wybierz wydział" in missing.data.decode()
    unknown = _post(clerk, f"/urzad/kancelaria/{letter_id}/dekretacja", {"department": "999999"})
    assert unknown.status_code == 400
    assert _letter(runtime, letter_id).status == "received"


def test_letters_are_seen_by_their_author_and_the_office_only(resident, clerk, create_user, app, runtime, letter_pki):
    letter_id, _ = file_general_letter(resident, letter_pki)
    draft_id = new_general_letter(resident, subject="Szkic")
    stranger = app.test_client()
    assert login(stranger, create_user("resident")).status_code == 302
    for path in (f"/pisma/{letter_id}", f"/pisma/{letter_id}/upo.xml", f"/pisma/{letter_id}/tresc.pdf",
                 f"/pisma/{draft_id}", f"/pisma/{draft_id}/do-podpisu.xml", "/pisma/999999"):
        assert stranger.get(path).status_code == 404, path
    assert count(runtime, "audit_entry", "action = 'letter.access_denied'") == 5
    # a resident has no access to the office's pages, and the office does not see drafts
    assert resident.get("/urzad/kancelaria/").status_code == 403
    assert clerk.get(f"/urzad/kancelaria/{draft_id}").status_code == 404
    assert count(runtime, "letter", "id = :id AND status = 'draft'", id=draft_id) == 1


def test_a_representative_sees_the_letters_filed_for_the_taxpayer(resident, create_user, runtime, app, letter_pki):
    from platforma.accounts.models import TaxpayerAccess

    with runtime.session_factory() as session:
        taxpayer_id = session.scalars(sa.select(TaxpayerAccess.taxpayer_id).where(
            TaxpayerAccess.user_id == resident.user.id)).one()
    letter_id, _ = file_general_letter(resident, letter_pki, taxpayer_id=taxpayer_id)
    representative = create_user("resident")
    with transaction(runtime.session_factory) as session:
        session.add(TaxpayerAccess(user_id=representative.id, taxpayer_id=taxpayer_id, relation="representative"))
    client = app.test_client()
    assert login(client, representative).status_code == 302
    assert client.get(f"/pisma/{letter_id}").status_code == 200
    assert "Pismo ogólne" in client.get("/pisma/").data.decode()


# -- forwarding to document management ------------------------------------------------------------------

def test_a_letter_is_forwarded_once_as_a_package_that_the_ezd_can_check(resident, clerk, runtime, letter_pki,
                                                                         export_dir, office):
    letter_id = new_general_letter(resident)
    attach(resident, letter_id, "skan.pdf", SMALL_PDF)
    document = signed(document_to_sign(resident, letter_id), letter_pki)
    assert upload(resident, letter_id, document).status_code == 302
    assert _post(clerk, f"/urzad/kancelaria/{letter_id}/przekaz", {}).status_code == 302
    assert _post(clerk, f"/urzad/kancelaria/{letter_id}/przekaz", {}).status_code == 302  # again: nothing new
    [package] = [p for p in export_dir.iterdir()]
    assert not package.name.startswith(".")
    metadata = etree.parse(str(package / "metadane.xml"))
    schema = etree.XMLSchema(etree.parse(str(EXPORT_XSD)))
    assert schema.validate(metadata), schema.error_log
    ns = {"e": "urn:platforma:eksport:1"}
    listed = {f.get("sciezka"): f.get("sha256") for f in metadata.iterfind(".//e:Plik", ns)}
    assert set(listed) == {"dokument.xml", "tresc.xml", "upo.xml", "zalaczniki/01-skan.pdf"}
    for path, digest in listed.items():
        assert sha256_hex((package / path).read_bytes()) == digest
    assert (package / "dokument.xml").read_bytes() == document
    assert count(runtime, "letter_export", "status = 'done'") == 1


def test_a_sink_that_is_down_is_tried_again(resident, clerk, runtime, letter_pki, export_dir):
    letter_id, _ = file_general_letter(resident, letter_pki)
    export_dir.rmdir()
    assert _post(clerk, f"/urzad/kancelaria/{letter_id}/przekaz", {}).status_code == 302
    with runtime.session_factory() as session:
        export = session.scalars(sa.select(LetterExport)).one()
        assert export.status == "pending" and "nie istnieje" in export.last_error and export.attempts == 1
    export_dir.mkdir()
    with runtime.engine.begin() as conn:  # the retry is due now rather than in 30 s
        conn.execute(sa.text("UPDATE outbox_job SET run_after = :t WHERE kind = 'episma.export'"),
                     {"t": __import__("platforma.core.db", fromlist=["utcnow"]).utcnow()})
    run_due(runtime)
    with runtime.session_factory() as session:
        assert session.scalars(sa.select(LetterExport.status)).one() == "done"
    assert len(list(export_dir.iterdir())) == 1


# -- departments and the file plan ------------------------------------------------------------------------

def test_the_administrator_keeps_departments_and_the_file_plan(create_user, app, runtime):
    admin = create_user("admin")
    client = app.test_client()
    assert login(client, admin).status_code == 302
    page = client.get("/urzad/kancelaria/wykaz")
    assert page.status_code == 200
    token = csrf_from(page.data)
    assert client.post("/urzad/kancelaria/wykaz", data={"csrf_token": token, "action": "department", "code": "fn",
                                                        "name": "Referat Finansowy"}).status_code == 302
    duplicate = client.post("/urzad/kancelaria/wykaz", data={"csrf_token": token, "action": "department", "code": "FN",
                                                             "name": "Inny"})
    assert duplicate.status_code == 400 and "już istnieje" in duplicate.data.decode()
    assert client.post("/urzad/kancelaria/wykaz", data={"csrf_token": token, "action": "file_code", "file_code": "3120",
                                                        "title": "Wymiar podatków"}).status_code == 302
    assert count(runtime, "department", "code = 'FN'") == 1 and count(runtime, "file_code") == 1
    clerk = create_user("clerk")
    other = app.test_client()
    assert login(other, clerk).status_code == 302
    assert other.get("/urzad/kancelaria/wykaz").status_code == 403


# -- the register under concurrency ---------------------------------------------------------------------

def test_concurrent_filings_get_consecutive_numbers_without_gaps(runtime, create_user, letter_pki, app):
    """Twelve filings at once on separate connections, a third of them failing after taking their number:
    the numbers given are exactly 1..8."""
    from platforma.accounts.models import User

    author = create_user("resident")
    letter_ids = []
    with app.test_request_context():
        with transaction(runtime.session_factory) as session:
            user = session.get(User, author.id)
            for n in range(12):
                letter = ops.create_draft(session, form_code="pismo_ogolne", form_version="1", title=f"Pismo {n}",
                                          author=user, taxpayer_id=None, data={"subject": f"Pismo {n}", "body": "Treść"})
                letter_ids.append(letter.id)
        documents = {}
        with runtime.session_factory() as session:
            user = session.get(User, author.id)
            for letter_id in letter_ids:
                documents[letter_id] = signed(ops.document_to_sign(session, runtime.settings,
                                                                   session.get(Letter, letter_id), user), letter_pki)
    barrier = threading.Barrier(len(letter_ids))
    errors: list[BaseException] = []

    def file(index: int, letter_id: int) -> None:
        try:
            session = runtime.session_factory()
            try:
                letter = session.get(Letter, letter_id)
                verified = ops.verify_upload(runtime, letter, documents[letter_id])
                barrier.wait(timeout=60)
                ops.file_letter(session, runtime, letter, documents[letter_id], "pismo.xml", verified,
                                actor=session.get(User, author.id))
                session.flush()
                if index % 3 == 2:
                    raise RuntimeError("the request failed after its number was taken")
                session.commit()
            finally:
                session.rollback()
                session.close()
        except RuntimeError:
            pass
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=file, args=(i, letter_id)) for i, letter_id in enumerate(letter_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with runtime.session_factory() as session:
        numbers = sorted(session.scalars(sa.select(Letter.register_seq).where(Letter.status != "draft")))
    assert numbers == list(range(1, 9))
