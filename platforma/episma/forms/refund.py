"""Wniosek o zwrot nadpłaty (art. 75-77 OP): which overpayment, how much, and how to pay it back."""
from __future__ import annotations

from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TextAreaField

from platforma.episma.forms.base import Item, LetterForm
from platforma.episma.forms.choices import NOT_CHOSEN, TAX_KINDS
from platforma.episma.forms.fields import Amount, Optional, RadioField, Required, RequiredWhen, Text, YearRange
from platforma.episma.forms.rules import decimal_text
from platforma.payments.rules import format_nrb, is_valid_nrb, normalise_nrb
from platforma.web.forms import Form, Nrb, RadioInput, Select, TextArea, TextInput


def account_overpayment(session, taxpayer, today) -> Decimal | None:
    """The overpayment the taxpayer's account shows today, or None when it cannot be computed."""
    if taxpayer is None or session is None:
        return None
    from platforma.core.settings import MissingSetting
    from platforma.taxes.queries import account

    try:
        return account(session, taxpayer.id, today).nadplata
    except MissingSetting:
        return None


class RefundWebForm(Form):
    tax_kind = SelectField(
        _l("Podatek lub opłata, z której powstała nadpłata (nieobowiązkowo)"), widget=Select(),
        choices=[NOT_CHOSEN, *TAX_KINDS], validators=[Optional()],
    )
    year = StringField(_l("Rok (nieobowiązkowo)"), widget=TextInput(), validators=[Optional(), YearRange()])
    amount = StringField(
        _l("Kwota do zwrotu w zł (nieobowiązkowo)"), widget=TextInput(),
        description=_l("Zostaw puste, aby wnioskować o zwrot całej nadpłaty."),
        validators=[Optional(), Amount(positive=True)],
    )
    method = RadioField(
        _l("Jak zwrócić nadpłatę?"), widget=RadioInput(),
        choices=[("transfer", _l("Przelewem na rachunek bankowy")), ("cash", _l("Gotówką w kasie urzędu"))],
        validators=[Required(_l("Wybierz sposób zwrotu"))],
    )
    nrb = StringField(
        _l("Numer rachunku bankowego"), widget=TextInput(), description=_l("26 cyfr, np. 61 1090 1014 0000 0712 1981 2874"),
        validators=[RequiredWhen("method", ("transfer",), _l("Wpisz numer rachunku do zwrotu")), Nrb()],
    )
    account_holder = StringField(
        _l("Posiadacz rachunku"), widget=TextInput(),
        validators=[RequiredWhen("method", ("transfer",), _l("Wpisz imię i nazwisko albo nazwę posiadacza rachunku")),
                    Text(200)],
    )
    justification = TextAreaField(
        _l("Uzasadnienie (nieobowiązkowo)"), widget=TextArea(), validators=[Optional(), Text(2000, multiline=True)],
    )


class RefundRequest(LetterForm):
    code = "zwrot_nadplaty"
    title = _l("Wniosek o zwrot nadpłaty")
    description = _l("Zwrot nadpłaty podatku lub opłaty przelewem na rachunek albo w kasie urzędu.")
    namespace = "urn:platforma:wzor:zwrot-nadplaty:1"
    xsd_name = "zwrot-nadplaty-1.xsd"
    web_form = RefundWebForm
    sections = (
        (_l("Nadpłata"), (
            Item("tax_kind", "Podatek", _l("Podatek lub opłata"), kind="choice", choices=TAX_KINDS),
            Item("year", "Rok", _l("Rok"), kind="int"),
            Item("amount", "Kwota", _l("Kwota do zwrotu"), kind="decimal", unit="zł"),
        )),
        (_l("Sposób zwrotu"), (
            Item("method", "SposobZwrotu", _l("Sposób zwrotu"), kind="choice",
                 choices=(("transfer", _l("przelew na rachunek bankowy")), ("cash", _l("gotówka w kasie urzędu")))),
            Item("nrb", "NumerRachunku", _l("Numer rachunku"), formatter=format_nrb),
            Item("account_holder", "PosiadaczRachunku", _l("Posiadacz rachunku")),
        )),
        (_l("Uzasadnienie"), (
            Item("justification", "Uzasadnienie", _l("Uzasadnienie"), kind="multiline"),
        )),
    )

    def prefill(self, taxpayer, user, session, today):
        values = {}
        if user is not None and user.refund_nrb:
            values.update(method="transfer", nrb=normalise_nrb(user.refund_nrb))
        if taxpayer is not None:
            values["account_holder"] = (taxpayer.name if taxpayer.kind == "legal"
                                        else f"{taxpayer.first_name} {taxpayer.last_name}".strip())
        elif user is not None:
            values["account_holder"] = user.full_name
        overpayment = account_overpayment(session, taxpayer, today)
        if overpayment:
            values["amount"] = decimal_text(overpayment, 2)
        return values

    def hints(self, session, taxpayer, today):
        overpayment = account_overpayment(session, taxpayer, today)
        if not overpayment:
            return [_("Na koncie podatnika nie widać dziś nadpłaty; wniosek możesz złożyć, jeśli wiesz o nadpłacie, której konto jeszcze nie pokazuje.")]
        from platforma.web.filters import money

        return [_("Na koncie podatnika jest dziś nadpłata %(amount)s.", amount=money(overpayment))]

    def clean(self, data):
        if data["method"] == "cash":
            data["nrb"] = data["account_holder"] = None
        elif data["nrb"]:
            data["nrb"] = normalise_nrb(data["nrb"])
        return data

    def check(self, data):
        if data["method"] == "transfer":
            if not data["nrb"]:
                return ["element wnio:NumerRachunku: przy zwrocie przelewem numer rachunku jest wymagany"]
            if not is_valid_nrb(data["nrb"]):
                return ["element wnio:NumerRachunku: numer rachunku ma błędne cyfry kontrolne"]
            if not data["account_holder"]:
                return ["element wnio:PosiadaczRachunku: przy zwrocie przelewem posiadacz rachunku jest wymagany"]
        elif data["nrb"] or data["account_holder"]:
            return ["element wnio:NumerRachunku: przy zwrocie w kasie nie podaje się rachunku"]
        return []
