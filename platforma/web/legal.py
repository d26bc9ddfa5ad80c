"""Default texts of the legal pages and the structure of the accessibility declaration.

The declaration follows the structure prescribed under the Act of 4 April 2019 on digital
accessibility (art. 10) with the element ids the national monitoring expects (a11y-...).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.config import Settings
from platforma.web.models import LegalPageVersion

TITLES = {
    "deklaracja-dostepnosci": "Deklaracja dostępności",
    "regulamin": "Regulamin świadczenia usług drogą elektroniczną",
    "rodo": "Klauzula informacyjna RODO",
}

#: the declaration's fields, in the order of the prescribed structure, with their labels
DECLARATION_FIELDS: list[tuple[str, str]] = [
    ("publication_date", "Data publikacji strony internetowej (RRRR-MM-DD)"),
    ("update_date", "Data ostatniej istotnej aktualizacji (RRRR-MM-DD)"),
    ("status", "Status pod względem zgodności z ustawą"),
    ("inaccessible", "Treści niedostępne i powody"),
    ("prepared_date", "Data sporządzenia deklaracji (RRRR-MM-DD)"),
    ("review_date", "Data ostatniego przeglądu deklaracji (RRRR-MM-DD)"),
    ("method", "Sposób sporządzenia deklaracji"),
    ("keyboard", "Skróty klawiaturowe i ułatwienia"),
    ("contact_person", "Osoba do kontaktu w sprawie dostępności"),
    ("contact_email", "Adres e-mail osoby do kontaktu"),
    ("contact_phone", "Numer telefonu osoby do kontaktu"),
    ("architecture", "Dostępność architektoniczna budynku urzędu"),
    ("sign_language", "Tłumacz języka migowego"),
    ("mobile_apps", "Aplikacje mobilne"),
]

STATUS_CHOICES = {
    "zgodna": "Strona internetowa jest zgodna z ustawą z dnia 4 kwietnia 2019 r. o dostępności cyfrowej stron internetowych i aplikacji mobilnych podmiotów publicznych.",
    "czesciowo": "Strona internetowa jest częściowo zgodna z ustawą z dnia 4 kwietnia 2019 r. o dostępności cyfrowej stron internetowych i aplikacji mobilnych podmiotów publicznych z powodu niezgodności lub wyłączeń wymienionych poniżej.",
    "niezgodna": "Strona internetowa jest niezgodna z ustawą z dnia 4 kwietnia 2019 r. o dostępności cyfrowej stron internetowych i aplikacji mobilnych podmiotów publicznych.",
}


def default_declaration(settings: Settings, today: dt.date) -> dict[str, Any]:
    contact = settings.gmina.contact
    return {
        "publication_date": today.isoformat(),
        "update_date": today.isoformat(),
        "status": "zgodna",
        "inaccessible": "",
        "prepared_date": today.isoformat(),
        "review_date": today.isoformat(),
        "method": "Deklarację sporządzono na podstawie samooceny przeprowadzonej przez podmiot publiczny, wspartej automatycznymi testami narzędziem axe-core.",
        "keyboard": "Na stronie można korzystać ze standardowych skrótów klawiaturowych przeglądarki. Pierwszy element strony to łącze „Przejdź do treści głównej”.",
        "contact_person": "Koordynator do spraw dostępności",
        "contact_email": contact.email,
        "contact_phone": contact.phone,
        "architecture": f"Siedziba: {settings.gmina.office_name}, {settings.gmina.address.street}, {settings.gmina.address.postal_code} {settings.gmina.address.city}. Opis dostępności architektonicznej uzupełnia administrator.",
        "sign_language": "W urzędzie można skorzystać z pomocy tłumacza polskiego języka migowego po wcześniejszym zgłoszeniu (co najmniej 3 dni robocze przed wizytą).",
        "mobile_apps": "Urząd nie udostępnia aplikacji mobilnych.",
    }


def default_body(settings: Settings, slug: str) -> str:
    g = settings.gmina
    office = f"{g.office_name}, {g.address.street}, {g.address.postal_code} {g.address.city}"
    if slug == "regulamin":
        return (
            f"## § 1. Postanowienia ogólne\n\n"
            f"1. Regulamin określa zasady świadczenia usług drogą elektroniczną w serwisie {g.service_name} prowadzonym przez {office} "
            "(art. 8 ustawy z dnia 18 lipca 2002 r. o świadczeniu usług drogą elektroniczną).\n"
            "2. Usługodawcą jest urząd wskazany w ust. 1.\n\n"
            "## § 2. Rodzaje usług\n\n"
            "1. Konto użytkownika, podgląd zobowiązań podatkowych i opłat lokalnych, płatności elektroniczne, składanie pism.\n"
            "2. Usługi są nieodpłatne. Opłaty i podatki wynikają z odrębnych przepisów.\n\n"
            "## § 3. Wymagania techniczne\n\n"
            "Urządzenie z dostępem do Internetu i aktualną przeglądarką internetową; aplikacja uwierzytelniająca (TOTP) dla kont z weryfikacją dwuetapową.\n\n"
            "## § 4. Zasady korzystania\n\n"
            "1. Zabronione jest dostarczanie treści o charakterze bezprawnym.\n"
            "2. Użytkownik chroni swoje hasło i kody jednorazowe przed osobami trzecimi.\n\n"
            "## § 5. Reklamacje\n\n"
            f"Reklamacje można składać na adres {g.contact.email} lub pisemnie na adres urzędu. Rozpatrujemy je w ciągu 14 dni.\n"
        )
    if slug == "rodo":
        return (
            "Zgodnie z art. 13 ust. 1 i 2 rozporządzenia Parlamentu Europejskiego i Rady (UE) 2016/679 (RODO) informujemy, że:\n\n"
            f"1. Administratorem danych osobowych jest {office} (e-mail: {g.contact.email}).\n"
            "2. Kontakt z inspektorem ochrony danych: adres e-mail urzędu z dopiskiem „IOD”.\n"
            "3. Dane przetwarzamy w celu wykonania zadań publicznych i obowiązków prawnych urzędu, w tym ustalania i poboru podatków i opłat lokalnych "
            "(art. 6 ust. 1 lit. c i e RODO, ustawa – Ordynacja podatkowa, ustawa o podatkach i opłatach lokalnych) oraz świadczenia usług drogą elektroniczną.\n"
            "4. Odbiorcami danych mogą być podmioty uprawnione na podstawie przepisów prawa oraz podmioty przetwarzające dane na zlecenie urzędu.\n"
            "5. Dane przechowujemy przez okres wynikający z przepisów o archiwizacji (jednolity rzeczowy wykaz akt).\n"
            "6. Masz prawo dostępu do danych, ich sprostowania, ograniczenia przetwarzania oraz wniesienia skargi do Prezesa Urzędu Ochrony Danych Osobowych.\n"
            "7. Podanie danych jest obowiązkiem ustawowym w zakresie spraw podatkowych; w pozostałym zakresie jest dobrowolne, lecz niezbędne do korzystania z serwisu.\n"
            "8. Dane nie są wykorzystywane do zautomatyzowanego podejmowania decyzji ani profilowania.\n\n"
            "Historię logowań do swojego konta znajdziesz w ustawieniach konta.\n"
        )
    return ""


def current(session: Session, slug: str) -> LegalPageVersion | None:
    return session.scalars(
        sa.select(LegalPageVersion).where(LegalPageVersion.slug == slug).order_by(LegalPageVersion.version.desc()).limit(1)
    ).first()


def page_content(session: Session, settings: Settings, slug: str, today: dt.date) -> dict[str, Any]:
    saved = current(session, slug)
    if saved is not None:
        return {"title": saved.title, "body": saved.body, "fields": saved.fields, "version": saved.version, "saved_at": saved.created_at}
    return {
        "title": TITLES[slug],
        "body": default_body(settings, slug),
        "fields": default_declaration(settings, today) if slug == "deklaracja-dostepnosci" else {},
        "version": 0,
        "saved_at": None,
    }


def save_version(session: Session, slug: str, *, title: str, body: str, fields: dict[str, Any], author_id: int | None) -> LegalPageVersion:
    latest = current(session, slug)
    version = LegalPageVersion(
        slug=slug, version=(latest.version + 1) if latest else 1, title=title, body=body, fields=fields, created_by_id=author_id
    )
    session.add(version)
    session.flush()
    return version
