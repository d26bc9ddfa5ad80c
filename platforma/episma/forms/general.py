"""Pismo ogólne do urzędu: a letter in the resident's own words, with attachments."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField

from platforma.episma.forms.base import Item, LetterForm
from platforma.episma.forms.fields import Required, Text
from platforma.web.forms import Form, TextArea, TextInput


class GeneralLetterWebForm(Form):
    subject = StringField(
        _l("Tytuł pisma"), widget=TextInput(),
        description=_l("W kilku słowach, czego dotyczy pismo, np. „Prośba o kopię decyzji”."),
        validators=[Required(_l("Wpisz tytuł pisma")), Text(200)],
    )
    body = TextAreaField(
        _l("Treść pisma"), widget=TextArea(),
        description=_l("Najwyżej 20 000 znaków. Dokumenty możesz dołączyć jako załączniki."),
        validators=[Required(_l("Wpisz treść pisma")), Text(20_000, multiline=True)],
    )


class GeneralLetter(LetterForm):
    code = "pismo_ogolne"
    title = _l("Pismo ogólne do urzędu")
    description = _l("Pismo w dowolnej sprawie, z załącznikami, gdy żaden inny formularz nie pasuje.")
    namespace = "urn:platforma:wzor:pismo-ogolne:1"
    xsd_name = "pismo-ogolne-1.xsd"
    allows_attachments = True
    web_form = GeneralLetterWebForm
    sections = (
        (_l("Treść pisma"), (
            Item("subject", "Tytul", _l("Tytuł pisma")),
            Item("body", "Tresc", _l("Treść pisma"), kind="multiline"),
        )),
    )
