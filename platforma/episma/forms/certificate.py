"""Wniosek o wydanie zaświadczenia o niezaleganiu w podatkach (art. 306a and 306e OP), with the stamp
duty (opłata skarbowa) of each copy."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectMultipleField, StringField

from platforma.core.settings import decimal_on
from platforma.episma.forms.base import Item, LetterForm
from platforma.episma.forms.choices import TAX_KINDS
from platforma.episma.forms.fields import CheckboxesInput, RadioField, Required, RequiredWhen, Text, Whole
from platforma.episma.forms.rules import decimal_text
from platforma.episma.forms.settings import STAMP_DUTY_CERTIFICATE, optional_decimal
from platforma.web.forms import Form, RadioInput, TextInput

#: what a certificate can cover: the local taxes and the waste fee (the joint liability is one of them)
CERTIFICATE_KINDS = tuple(choice for choice in TAX_KINDS if choice[0] != "laczne")


class CertificateWebForm(Form):
    scope = RadioField(
        _l("Czego ma dotyczyć zaświadczenie?"), widget=RadioInput(),
        choices=[("all", _l("Wszystkich podatków i opłat lokalnych")), ("chosen", _l("Wybranych podatków i opłat"))],
        validators=[Required(_l("Wybierz zakres zaświadczenia"))],
    )
    tax_kinds = SelectMultipleField(
        _l("Wybrane podatki i opłaty"), widget=CheckboxesInput(), choices=list(CERTIFICATE_KINDS),
        description=_l("Tylko gdy zaświadczenie ma dotyczyć wybranych podatków i opłat."),
        validators=[RequiredWhen("scope", ("chosen",), _l("Zaznacz co najmniej jeden podatek lub opłatę"))],
    )
    purpose = StringField(
        _l("Cel, w jakim zaświadczenie jest potrzebne"), widget=TextInput(),
        description=_l("Np. „do przetargu”, „do banku”."),
        validators=[Required(_l("Wpisz cel, w jakim zaświadczenie jest potrzebne")), Text(300)],
    )
    copies = StringField(
        _l("Liczba egzemplarzy"), widget=TextInput(), default="1",
        description=_l("Od 1 do 5. Opłatę skarbową płaci się za każdy egzemplarz."),
        validators=[Required(_l("Wpisz liczbę egzemplarzy")), Whole(1, 5)],
    )
    delivery = RadioField(
        _l("Jak chcesz otrzymać zaświadczenie?"), widget=RadioInput(),
        choices=[("platform", _l("Na konto na platformie")), ("post", _l("Pocztą na adres wnioskodawcy"))],
        validators=[Required(_l("Wybierz sposób otrzymania zaświadczenia"))],
    )


class CertificateRequest(LetterForm):
    code = "zaswiadczenie_o_niezaleganiu"
    title = _l("Wniosek o wydanie zaświadczenia o niezaleganiu w podatkach")
    description = _l("Zaświadczenie, że nie masz zaległości w podatkach i opłatach lokalnych; płatne opłatą skarbową.")
    namespace = "urn:platforma:wzor:zaswiadczenie-o-niezaleganiu:1"
    xsd_name = "zaswiadczenie-o-niezaleganiu-1.xsd"
    stamp_duty_setting = STAMP_DUTY_CERTIFICATE.key
    web_form = CertificateWebForm
    sections = (
        (_l("Zaświadczenie"), (
            Item("scope", "Zakres", _l("Zakres"), kind="choice",
                 choices=(("all", _l("wszystkie podatki i opłaty lokalne")), ("chosen", _l("wybrane podatki i opłaty")))),
            Item("tax_kinds", "Podatek", _l("Podatki i opłaty"), kind="multi", choices=CERTIFICATE_KINDS),
            Item("purpose", "Cel", _l("Cel")),
            Item("copies", "LiczbaEgzemplarzy", _l("Liczba egzemplarzy"), kind="int"),
            Item("delivery", "SposobOdbioru", _l("Sposób otrzymania"), kind="choice",
                 choices=(("platform", _l("na konto na platformie")), ("post", _l("pocztą na adres wnioskodawcy")))),
        )),
        (_l("Opłata skarbowa"), (
            Item("stamp_duty", "OplataSkarbowa", _l("Opłata skarbowa"), kind="decimal", unit="zł", computed=True),
        )),
    )

    def prefill(self, taxpayer, user, session, today):
        return {"scope": "all", "copies": 1, "delivery": "platform"}

    def hints(self, session, taxpayer, today):
        fee = optional_decimal(session, STAMP_DUTY_CERTIFICATE.key, today)
        if fee is None:
            return []
        from platforma.web.filters import money

        return [_("Opłata skarbowa wynosi %(fee)s za każdy egzemplarz zaświadczenia; zapłacisz ją online po złożeniu wniosku.",
                  fee=money(fee))]

    def clean(self, data):
        if data["scope"] == "all":
            data["tax_kinds"] = []
        return data

    def stamp_duty(self, session, data: dict[str, Any], day: dt.date) -> Decimal:
        """The stamp duty in force on `day` times the copies (art. 6 ust. 1 pkt 2 of the act: the duty is
        due when the request is filed). MissingSetting when no value is in force."""
        return decimal_on(session, STAMP_DUTY_CERTIFICATE.key, day) * int(data["copies"])

    def complete(self, session, data, today):
        return {**data, "stamp_duty": decimal_text(self.stamp_duty(session, data, today), 2)}

    def check(self, data):
        if data["scope"] == "chosen" and not data["tax_kinds"]:
            return ["element wnio:Podatek: przy zakresie „wybrane” wskaż co najmniej jeden podatek lub opłatę"]
        if data["scope"] == "all" and data["tax_kinds"]:
            return ["element wnio:Podatek: przy zakresie „wszystkie” nie wskazuje się podatków"]
        if len(set(data["tax_kinds"])) != len(data["tax_kinds"]):
            return ["element wnio:Podatek: ten sam podatek wskazano więcej niż raz"]
        return []
