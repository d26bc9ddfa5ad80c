"""A letter for people: the read-only HTML view and the accessible PDF with the XML document embedded."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from jinja2 import ChoiceLoader, FileSystemLoader
from markupsafe import Markup

from platforma.episma.forms.base import Party, Section

if TYPE_CHECKING:
    from platforma.episma.forms.base import ParsedLetter

#: platforma/episma/templates: found here even before a blueprint adds the folder to the app
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_ENV_KEY = "platforma.episma.forms.jinja"


def _render(template: str, **context: Any) -> str:
    app = current_app._get_current_object()
    env = app.extensions.get(_ENV_KEY)
    if env is None:
        env = app.jinja_env.overlay(loader=ChoiceLoader([app.jinja_env.loader, FileSystemLoader(str(TEMPLATES))]))
        app.extensions[_ENV_KEY] = env
    app.update_template_context(context)
    return env.get_template(template).render(context)


def _party_rows(party: Party) -> tuple[tuple[str, str], ...]:
    rows = [(_("Nazwa") if party.is_institution else _("Imię i nazwisko"), party.name)]
    rows += [(label, value) for label, value in (("PESEL", party.pesel), ("NIP", party.nip), ("REGON", party.regon)) if value]
    if party.address:
        rows.append((_("Adres"), party.address))
    if party.email:
        rows.append((_("E-mail"), party.email))
    if party.phone:
        rows.append((_("Telefon"), party.phone))
    return tuple(rows)


def letter_sections(letter: ParsedLetter) -> list[Section]:
    """Everything the letter says, as sections: the parties, the form's content, the document's data."""
    from platforma.web.filters import datetime_pl

    sections = [Section(_("Adresat"), _party_rows(letter.meta.addressee)),
                Section(_("Nadawca"), _party_rows(letter.meta.author))]
    if letter.meta.taxpayer is not None:
        sections.append(Section(_("W imieniu podatnika"), _party_rows(letter.meta.taxpayer)))
    sections += letter.form.summary(letter.data)
    sections.append(Section(_("Dokument"), (
        (_("Formularz"), f"{letter.form.title} ({_('wersja')} {letter.form.version})"),
        (_("Identyfikator dokumentu"), letter.meta.identifier),
        (_("Utworzony"), datetime_pl(letter.meta.created_at)),
    )))
    return sections


def render_letter_html(letter: ParsedLetter) -> Markup:
    """The read-only view (headings from h2; the page around it has the h1). Needs an app context."""
    return Markup(_render("episma/forms/_document.html", letter=letter, sections=letter_sections(letter)))


def render_letter_pdf(letter: ParsedLetter, xml: bytes, *, received: dt.datetime | None = None,
                      registration_number: str | None = None) -> bytes:
    """A tagged PDF (PDF/UA-1), always in Polish, with `xml` embedded as the file "<code>.xml" (a standard
    /EmbeddedFiles entry, AFRelationship Source). Needs an app context."""
    from weasyprint import Attachment  # imported here: only PDFs need it

    from platforma.web.pdf import html_to_pdf

    with force_locale("pl"):
        html = _render("episma/forms/document_pdf.html", letter=letter, sections=letter_sections(letter),
                       received=received, registration_number=registration_number,
                       xml_name=f"{letter.form.code}.xml")
    attachment = Attachment(string=xml, name=f"{letter.form.code}.xml", relationship="Source",
                            description="Dokument XML pisma (struktura CRD)")
    return html_to_pdf(html, attachments=[attachment])
