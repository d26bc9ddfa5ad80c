"""Wniosek o ulgę w spłacie (art. 67a § 1 OP): installments, a later due date, or remission of the arrears
with their interest, in the taxpayer's important interest or the public interest."""
from __future__ import annotations


from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TextAreaField

from platforma.episma.forms.base import Item, LetterForm
from platforma.episma.forms.choices import NOT_CHOSEN, TAX_KINDS
from platforma.episma.forms.fields import (
    RadioField,
    Amount, DateField, InFuture, Optional, Required, RequiredWhen, Text, Whole, YearRange,
)
from platforma.episma.forms.rules import decimal_text
from platforma.web.forms import Form, RadioInput, Select, TextArea, TextInput

RELIEF_KINDS = (
    ("installments", _l("rozłożenie zapłaty na raty")),
    ("deferral", _l("odroczenie terminu płatności")),
    ("remission", _l("umorzenie zaległości wraz z odsetkami za zwłokę")),
)


def account_arrears(session, taxpayer, today):
    """Arrears with interest the taxpayer's account shows today, or None."""
    if taxpayer is None or session is None:
        return None
    from platforma.core.settings import MissingSetting
    from platforma.taxes.queries import account

    try:
        state = account(session, taxpayer.id, today)
    except MissingSetting:
        return None
    return state.zaleglosc + state.odsetki


class ReliefWebForm(Form):
    kind = RadioField(
        _l("O jaką ulgę wnosisz?"), widget=RadioInput(), choices=list(RELIEF_KINDS),
        validators=[Required(_l("Wybierz rodzaj ulgi"))],
    )
    liabilities = TextAreaField(
        _l("Których należności dotyczy wniosek?"), widget=TextArea(),
        description=_l("Np. numer decyzji, raty, okres."),
        validators=[Required(_l("Opisz należności, których dotyczy wniosek")), Text(2000, multiline=True)],
    )
    tax_kind = SelectField(_l("Podatek lub opłata (nieobowiązkowo)"), widget=Select(), choices=[NOT_CHOSEN, *TAX_KINDS],
                           validators=[Optional()])
    year = StringField(_l("Rok (nieobowiązkowo)"), widget=TextInput(), validators=[Optional(), YearRange()])
    amount = StringField(_l("Kwota, której dotyczy wniosek, w zł"), widget=TextInput(),
                         validators=[Required(_l("Wpisz kwotę, której dotyczy wniosek")), Amount(positive=True)])
    installments_count = StringField(
        _l("Liczba rat"), widget=TextInput(), description=_l("Od 2 do 60."),
        validators=[RequiredWhen("kind", ("installments",), _l("Wpisz liczbę rat")), Whole(2, 60)],
    )
    first_due = DateField(
        _l("Proponowany termin pierwszej raty"), description=_l("Na przykład 15 6 2026"),
        validators=[RequiredWhen("kind", ("installments",), _l("Wpisz termin pierwszej raty")), InFuture()],
    )
    new_due = DateField(
        _l("Proponowany nowy termin płatności"), description=_l("Na przykład 15 6 2026"),
        validators=[RequiredWhen("kind", ("deferral",), _l("Wpisz nowy termin płatności")), InFuture()],
    )
    justification = TextAreaField(
        _l("Uzasadnienie"), widget=TextArea(),
        description=_l("Wyjaśnij, dlaczego ulga jest uzasadniona ważnym interesem podatnika lub interesem publicznym."),
        validators=[Required(_l("Uzasadnij wniosek")), Text(10_000, multiline=True)],
    )
    household_persons = StringField(_l("Liczba osób w gospodarstwie domowym (nieobowiązkowo)"), widget=TextInput(),
                                    validators=[Optional(), Whole(1, 30)])
    household_income = StringField(_l("Miesięczny dochód gospodarstwa domowego w zł (nieobowiązkowo)"),
                                   widget=TextInput(), validators=[Optional(), Amount()])


class ReliefRequest(LetterForm):
    code = "ulga_w_splacie"
    title = _l("Wniosek o ulgę w spłacie zobowiązań")
    description = _l("Rozłożenie na raty, odroczenie terminu płatności albo umorzenie zaległości z odsetkami.")
    namespace = "urn:platforma:wzor:ulga-w-splacie:1"
    xsd_name = "ulga-w-splacie-1.xsd"
    allows_attachments = True
    web_form = ReliefWebForm
    sections = (
        (_l("Wnioskowana ulga"), (
            Item("kind", "RodzajUlgi", _l("Rodzaj ulgi"), kind="choice", choices=RELIEF_KINDS),
            Item("liabilities", "Naleznosci", _l("Należności"), kind="multiline"),
            Item("tax_kind", "Podatek", _l("Podatek lub opłata"), kind="choice", choices=TAX_KINDS),
            Item("year", "Rok", _l("Rok"), kind="int"),
            Item("amount", "Kwota", _l("Kwota"), kind="decimal", unit="zł"),
            Item("installments_count", "LiczbaRat", _l("Liczba rat"), kind="int"),
            Item("first_due", "TerminPierwszejRaty", _l("Termin pierwszej raty"), kind="date"),
            Item("new_due", "NowyTermin", _l("Nowy termin płatności"), kind="date"),
        )),
        (_l("Uzasadnienie"), (
            Item("justification", "Uzasadnienie", _l("Uzasadnienie"), kind="multiline"),
        )),
        (_l("Sytuacja gospodarstwa domowego"), (
            Item("household_persons", "LiczbaOsob", _l("Liczba osób w gospodarstwie domowym"), kind="int"),
            Item("household_income", "DochodMiesieczny", _l("Miesięczny dochód gospodarstwa domowego"),
                 kind="decimal", unit="zł"),
        )),
    )

    def prefill(self, taxpayer, user, session, today):
        arrears = account_arrears(session, taxpayer, today)
        return {"amount": decimal_text(arrears, 2)} if arrears else {}

    def hints(self, session, taxpayer, today):
        arrears = account_arrears(session, taxpayer, today)
        if not arrears:
            return []
        from platforma.web.filters import money

        return [_("Zaległość podatnika z odsetkami na dziś: %(amount)s.", amount=money(arrears))]

    def clean(self, data):
        if data["kind"] != "installments":
            data["installments_count"] = data["first_due"] = None
        if data["kind"] != "deferral":
            data["new_due"] = None
        return data

    def check(self, data):
        if data["kind"] == "installments" and (data["installments_count"] is None or data["first_due"] is None):
            return ["element wnio:LiczbaRat: przy rozłożeniu na raty wymagane są liczba rat i termin pierwszej raty"]
        if data["kind"] == "deferral" and data["new_due"] is None:
            return ["element wnio:NowyTermin: przy odroczeniu terminu wymagany jest nowy termin"]
        if data["kind"] != "installments" and (data["installments_count"] is not None or data["first_due"] is not None):
            return ["element wnio:LiczbaRat: raty podaje się tylko przy rozłożeniu na raty"]
        if data["kind"] != "deferral" and data["new_due"] is not None:
            return ["element wnio:NowyTermin: nowy termin podaje się tylko przy odroczeniu"]
        return []
