"""Deklaracja o wysokości opłaty za gospodarowanie odpadami komunalnymi (DO, art. 6m ucpg): the property,
the number of residents, composting, and the monthly fee from the gmina's rates."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import Regexp

from platforma.episma.forms.base import Item, LetterForm
from platforma.episma.forms.choices import YES_NO
from platforma.episma.forms.fields import DateField, RadioField, Required, Text, Whole
from platforma.episma.forms.rules import decimal_text, waste_fee
from platforma.episma.forms.settings import WASTE_COMPOSTER_DISCOUNT, WASTE_RATE, in_force_since, optional_decimal
from platforma.web.forms import Form, RadioInput, TextInput

DECLARATION_KINDS = (
    ("first", _l("pierwsza deklaracja")),
    ("change", _l("nowa deklaracja (zmiana danych)")),
    ("correction", _l("korekta deklaracji")),
)
DECLARANT_ROLES = (
    ("owner", _l("właściciel")),
    ("co_owner", _l("współwłaściciel")),
    ("perpetual_usufructuary", _l("użytkownik wieczysty")),
    ("manager", _l("zarządca")),
    ("tenant", _l("najemca")),
    ("other", _l("inny podmiot władający nieruchomością")),
)


def waste_rates(session, day: dt.date) -> tuple[Decimal | None, Decimal | None]:
    """The rate per resident and the composting discount in force on `day` (None where not set)."""
    return (optional_decimal(session, WASTE_RATE.key, day),
            optional_decimal(session, WASTE_COMPOSTER_DISCOUNT.key, day))


def declared_residents(session, taxpayer) -> int | None:
    """The number of residents of the taxpayer's latest waste-fee liability, if any."""
    if taxpayer is None or session is None:
        return None
    from platforma.taxes.models import Liability, LiabilityBasis, LiabilityParty

    basis = session.scalar(
        sa.select(LiabilityBasis.basis).join(Liability, Liability.id == LiabilityBasis.liability_id)
        .join(LiabilityParty, LiabilityParty.liability_id == Liability.id)
        .where(LiabilityParty.taxpayer_id == taxpayer.id, Liability.tax_kind == "odpady", LiabilityBasis.unit == "osoba")
        .order_by(Liability.year.desc(), Liability.id.desc()).limit(1)
    )
    return None if basis is None else int(basis)


class WasteDeclarationWebForm(Form):
    kind = RadioField(_l("Rodzaj deklaracji"), widget=RadioInput(), choices=list(DECLARATION_KINDS),
                      validators=[Required(_l("Wybierz rodzaj deklaracji"))])
    applies_from = DateField(
        _l("Od kiedy deklaracja obowiązuje?"),
        description=_l("Przy zmianie danych wpisz dzień zmiany: opłata w nowej wysokości należy się od miesiąca, "
                       "w którym nastąpiła zmiana. Na przykład 1 7 2026"),
        validators=[Required(_l("Wpisz datę, od której deklaracja obowiązuje"))],
    )
    role = RadioField(_l("Kim jesteś wobec nieruchomości?"), widget=RadioInput(), choices=list(DECLARANT_ROLES),
                      validators=[Required(_l("Wybierz, kim jesteś wobec nieruchomości"))])
    property_street = StringField(_l("Ulica i numer domu (lub miejscowość i numer)"), widget=TextInput(),
                                  validators=[Required(_l("Wpisz ulicę i numer nieruchomości")), Text(200)])
    property_postal_code = StringField(
        _l("Kod pocztowy"), widget=TextInput(),
        validators=[Required(_l("Wpisz kod pocztowy")),
                    Regexp(r"^\s*\d{2}-\d{3}\s*$", message=_l("Wpisz kod pocztowy w postaci 00-000"))],
    )
    property_city = StringField(_l("Miejscowość"), widget=TextInput(),
                                validators=[Required(_l("Wpisz miejscowość")), Text(100)])
    residents = StringField(
        _l("Liczba osób zamieszkujących nieruchomość"), widget=TextInput(),
        description=_l("Od 0 do 99. Wpisz 0, jeśli nikt tu nie mieszka."),
        validators=[Required(_l("Wpisz liczbę mieszkańców")), Whole(0, 99)],
    )
    composting = RadioField(
        _l("Czy kompostujesz bioodpady w kompostowniku przydomowym?"), widget=RadioInput(), choices=list(YES_NO),
        description=_l("Kompostującym przysługuje zwolnienie z części opłaty, jeśli rada gminy je uchwaliła."),
        validators=[Required(_l("Zaznacz, czy kompostujesz bioodpady"))],
    )


class WasteDeclaration(LetterForm):
    code = "deklaracja_odpady"
    title = _l("Deklaracja o wysokości opłaty za gospodarowanie odpadami komunalnymi (DO)")
    description = _l("Pierwsza deklaracja, zmiana liczby mieszkańców lub korekta; opłata obliczy się sama.")
    namespace = "urn:platforma:wzor:deklaracja-odpady:1"
    xsd_name = "deklaracja-odpady-1.xsd"
    web_form = WasteDeclarationWebForm
    sections = (
        (_l("Deklaracja"), (
            Item("kind", "RodzajDeklaracji", _l("Rodzaj deklaracji"), kind="choice", choices=DECLARATION_KINDS),
            Item("applies_from", "DataObowiazywania", _l("Obowiązuje od"), kind="date"),
            Item("role", "TytulPrawny", _l("Składający jest"), kind="choice", choices=DECLARANT_ROLES),
        )),
        (_l("Nieruchomość"), (
            Item("property_street", "Ulica", _l("Ulica i numer")),
            Item("property_postal_code", "KodPocztowy", _l("Kod pocztowy")),
            Item("property_city", "Miejscowosc", _l("Miejscowość")),
        )),
        (_l("Mieszkańcy i opłata"), (
            Item("residents", "LiczbaMieszkancow", _l("Liczba mieszkańców"), kind="int"),
            Item("composting", "Kompostownik", _l("Kompostowanie w kompostowniku przydomowym"), kind="bool"),
            Item("rate", "StawkaOplaty", _l("Stawka od mieszkańca miesięcznie"), kind="decimal", unit="zł", computed=True),
            Item("discount", "ZwolnienieKompostownik", _l("Zwolnienie za kompostowanie od mieszkańca miesięcznie"),
                 kind="decimal", unit="zł", computed=True),
            Item("monthly_fee", "OplataMiesieczna", _l("Opłata miesięczna"), kind="decimal", unit="zł", computed=True),
        )),
    )

    def prefill(self, taxpayer, user, session, today):
        values = {}
        if taxpayer is not None:
            values.update(property_street=taxpayer.street or "", property_postal_code=taxpayer.postal_code or "",
                          property_city=taxpayer.city or "")
        residents = declared_residents(session, taxpayer)
        values["kind"] = "first" if residents is None else "change"
        if residents is not None:
            values["residents"] = residents
        return values

    def hints(self, session, taxpayer, today):
        from platforma.web.filters import money

        rate, discount = waste_rates(session, today)
        if rate is None:
            return [_("Stawka opłaty nie została jeszcze wprowadzona do systemu: deklarację możesz złożyć, a urząd "
                      "obliczy opłatę według uchwały rady gminy.")]
        since = in_force_since(session, WASTE_RATE.key, today)
        hints = [_("Stawka opłaty od %(date)s: %(rate)s od mieszkańca miesięcznie.",
                   date=since.strftime("%d.%m.%Y"), rate=money(rate))]
        if discount:
            hints.append(_("Zwolnienie dla kompostujących bioodpady: %(discount)s od mieszkańca miesięcznie.",
                           discount=money(discount)))
        return hints

    def clean(self, data):
        if data["kind"] == "change" and data["applies_from"]:
            # art. 6m ust. 2 ucpg: the fee in its new amount is due for the month in which the change occurred
            data["applies_from"] = dt.date.fromisoformat(data["applies_from"]).replace(day=1).isoformat()
        if data["property_postal_code"]:
            data["property_postal_code"] = data["property_postal_code"].strip()
        return data

    def complete(self, session, data, today):
        rate, discount = waste_rates(session, dt.date.fromisoformat(data["applies_from"]))
        if rate is None:
            return {**data, "rate": None, "discount": None, "monthly_fee": None}
        applied = discount if data["composting"] and discount else None
        fee = waste_fee(data["residents"], rate, applied, data["composting"])
        return {**data, "rate": decimal_text(rate, 2), "discount": None if applied is None else decimal_text(applied, 2),
                "monthly_fee": decimal_text(fee, 2)}

    def check(self, data):
        if data["rate"] is None:
            if data["monthly_fee"] is not None or data["discount"] is not None:
                return ["element wnio:OplataMiesieczna: opłatę podaje się razem ze stawką (wnio:StawkaOplaty)"]
            return []
        if data["monthly_fee"] is None:
            return ["element wnio:OplataMiesieczna: przy podanej stawce wymagana jest opłata miesięczna"]
        if data["discount"] is not None and not data["composting"]:
            return ["element wnio:ZwolnienieKompostownik: zwolnienie przysługuje tylko przy kompostowaniu"]
        expected = waste_fee(data["residents"], Decimal(data["rate"]),
                             None if data["discount"] is None else Decimal(data["discount"]), data["composting"])
        if Decimal(data["monthly_fee"]) != expected:
            return [f"element wnio:OplataMiesieczna: opłata {data['monthly_fee']} nie wynika ze stawki i liczby "
                    f"mieszkańców (powinna wynosić {decimal_text(expected, 2)})"]
        return []
