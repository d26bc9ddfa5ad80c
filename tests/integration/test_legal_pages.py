"""The legal pages municipal portals publish, edited by the administrator as new versions."""
from __future__ import annotations

import sqlalchemy as sa

from platforma.web.models import LegalPageVersion
from tests.conftest import csrf_from

#: the element ids of the prescribed structure of the accessibility declaration
A11Y_IDS = ["a11y-wstep", "a11y-podmiot", "a11y-url", "a11y-data-publikacja", "a11y-data-aktualizacja", "a11y-status",
            "a11y-data-sporzadzenie", "a11y-kontakt", "a11y-osoba", "a11y-email", "a11y-procedura", "a11y-architektura", "a11y-aplikacje"]


def test_default_pages_are_published(client):
    declaration = client.get("/deklaracja-dostepnosci").get_data(as_text=True)
    for element_id in A11Y_IDS:
        assert f'id="{element_id}"' in declaration, element_id
    assert "Urząd Gminy Testowo" in declaration and "Rzecznika Praw Obywatelskich" in declaration
    assert "art. 13 ust. 1 i 2" in client.get("/rodo").get_data(as_text=True)
    assert "świadczeniu usług drogą elektroniczną" in client.get("/regulamin").get_data(as_text=True)


def test_admin_saves_new_versions_and_old_ones_stay(logged_in, create_user, client, runtime):
    admin_client = logged_in(create_user("admin"))
    for text in ("## Pierwsza wersja\n\nTreść A", "## Druga wersja\n\n<script>alert(1)</script> Treść B"):
        page = admin_client.get("/urzad/admin/strony/regulamin")
        response = admin_client.post("/urzad/admin/strony/regulamin", data={"title": "Regulamin serwisu", "body": text, "csrf_token": csrf_from(page.data)})
        assert response.status_code == 302
    public = client.get("/regulamin").get_data(as_text=True)
    assert "<h2>Druga wersja</h2>" in public and "Pierwsza wersja" not in public
    assert "<script>alert(1)</script>" not in public and "&lt;script&gt;" in public  # raw HTML is shown, never run
    with runtime.session_factory() as session:
        versions = session.scalars(sa.select(LegalPageVersion.version).where(LegalPageVersion.slug == "regulamin")).all()
    assert sorted(versions) == [1, 2]


def test_admin_edits_the_declaration_fields(logged_in, create_user, client):
    admin_client = logged_in(create_user("admin"))
    page = admin_client.get("/urzad/admin/strony/deklaracja-dostepnosci")
    form = {name: value for name, value in [
        ("title", "Deklaracja dostępności"), ("publication_date", "2026-01-15"), ("update_date", "2026-11-20"),
        ("status", "czesciowo"), ("inaccessible", "Skany uchwał z 2015 r. nie mają warstwy tekstowej."),
        ("prepared_date", "2026-03-20"), ("review_date", "2026-03-20"), ("method", "Samoocena."), ("keyboard", "Standardowe."),
        ("contact_person", "Anna Dostępna"), ("contact_email", "dostepnosc@example.com"), ("contact_phone", "61 000 00 01"),
        ("architecture", "Wejście z podjazdem."), ("sign_language", "Tak."), ("mobile_apps", "Brak."),
    ]}
    bad = admin_client.post("/urzad/admin/strony/deklaracja-dostepnosci", data={**form, "review_date": "20 marca", "csrf_token": csrf_from(page.data)})
    assert "Wpisz datę jako RRRR-MM-DD" in bad.get_data(as_text=True)
    response = admin_client.post("/urzad/admin/strony/deklaracja-dostepnosci", data={**form, "csrf_token": csrf_from(page.data)})
    assert response.status_code == 302
    public = client.get("/deklaracja-dostepnosci").get_data(as_text=True)
    assert "częściowo zgodna" in public and "Anna Dostępna" in public and "Skany uchwał" in public
    assert '<span id="a11y-data-przeglad">2026-03-20</span>' in public


def test_residents_cannot_edit(logged_in, create_user):
    client = logged_in(create_user())
    assert client.get("/urzad/admin/strony/regulamin").status_code == 403
