"""What the e-pisma tests share: an instance with a trust bundle and a development seal, residents with
taxpayers, and the steps of filing through the real pages (draft, attachment, download, sign, upload)."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from platforma.accounts.models import TaxpayerAccess
from platforma.core.db import transaction
from platforma.esign.seal import create_development_seal
from tests.conftest import base_settings, csrf_from
from tests.unit.test_esign_pki import make_pki, pem, sign

#: a minimal PDF: enough for its signature ("%PDF-") to be recognised as one
SMALL_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
OFFICE = "Urząd Gminy Testowo"


@pytest.fixture(scope="module")
def letter_pki():
    return make_pki()


def letter_settings(tmp_path: Path, database_url: str, pki, **sections):
    (tmp_path / "zaufani.pem").write_bytes(pem(pki.root.cert))
    if not (tmp_path / "seal-key.pem").exists():
        create_development_seal(tmp_path, office_name=OFFICE, gmina_name="Gmina Testowo", nip="7794242429")
    esign = {"trust_anchors": "zaufani.pem", "seal_key": "seal-key.pem", "seal_certificate": "seal-cert.pem"}
    esign.update(sections.pop("esign", {}))
    return base_settings(tmp_path, database_url, esign=esign, **sections)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def signed(document: bytes, pki, **kwargs) -> bytes:
    kwargs.setdefault("signing_time", now_utc() - dt.timedelta(minutes=1))
    return sign(document, pki, **kwargs)


def link(runtime, user, taxpayer, relation: str = "self") -> None:
    with transaction(runtime.session_factory) as session:
        session.add(TaxpayerAccess(user_id=user.id, taxpayer_id=taxpayer.id, relation=relation))


def new_general_letter(client, *, subject: str = "Prośba o kopię decyzji", body: str = "Proszę o kopię decyzji.",
                       taxpayer_id: int | str = "") -> int:
    page = client.get("/pisma/nowe/pismo_ogolne")
    assert page.status_code == 200
    response = client.post("/pisma/nowe/pismo_ogolne", data={
        "csrf_token": csrf_from(page.data), "taxpayer": str(taxpayer_id), "subject": subject, "body": body})
    assert response.status_code == 302, response.data.decode()[:3000]
    return int(re.search(r"/pisma/(\d+)$", response.headers["Location"]).group(1))


def attach(client, letter_id: int, name: str, content: bytes):
    page = client.get(f"/pisma/{letter_id}")
    return client.post(f"/pisma/{letter_id}/zalaczniki", data={
        "csrf_token": csrf_from(page.data), "zalacznik": (_file(content), name)}, content_type="multipart/form-data")


def _file(content: bytes):
    import io

    return io.BytesIO(content)


def document_to_sign(client, letter_id: int) -> bytes:
    response = client.get(f"/pisma/{letter_id}/do-podpisu.xml")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    return response.data


def upload(client, letter_id: int, content: bytes, name: str = "pismo.xml.xades", method: str = "xades_upload"):
    page = client.get(f"/pisma/{letter_id}")
    token = csrf_from(page.data) if page.status_code == 200 else csrf_from(client.get("/pisma/").data)
    return client.post(f"/pisma/{letter_id}/podpis/{method}", data={
        "csrf_token": token, "podpisany": (_file(content), name)}, content_type="multipart/form-data")


def file_general_letter(client, pki, **kwargs) -> tuple[int, bytes]:
    letter_id = new_general_letter(client, **kwargs)
    document = signed(document_to_sign(client, letter_id), pki)
    response = upload(client, letter_id, document)
    assert response.status_code == 302, response.data.decode()[:3000]
    return letter_id, document


def count(runtime, table: str, where: str = "1=1", **params) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()
