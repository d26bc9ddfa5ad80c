from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput
from wtforms import RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from platforma.web.forms import Email, Form, RadioInput, TextArea, TextInput


class LinkUserForm(Form):
    email = StringField(
        _l("Adres e-mail konta mieszkańca"), widget=TextInput(),
        validators=[InputRequired(_l("Wpisz adres e-mail konta")), Email()],
    )
    relation = RadioField(
        _l("Kim jest ta osoba dla podatnika?"),
        widget=RadioInput(),
        choices=[("self", _l("To sam podatnik")), ("representative", _l("Pełnomocnik podatnika"))],
        default="self",
        validators=[InputRequired(_l("Wybierz rodzaj powiązania"))],
    )
    note = TextAreaField(
        _l("Podstawa powiązania"), widget=TextArea(),
        description=_l("Np. „tożsamość sprawdzona w urzędzie, dowód osobisty” albo „pełnomocnictwo z 2.03.2026”."),
        validators=[InputRequired(_l("Wpisz podstawę powiązania")), Length(max=500)],
    )
    submit = SubmitField(_l("Powiąż konto"), widget=GovSubmitInput())


class CalculatorForm(Form):
    """"Ile zapłacę w dniu X": a GET form with the design system's date input (day, month, year).

    `validate()` leaves the day asked in `day`, or one error on the first field to correct (the
    error summary links to it) and the names of every field to mark in `invalid`.
    """

    class Meta:
        csrf = False  # a GET form that changes nothing

    dzien = StringField(_l("Dzień"))
    miesiac = StringField(_l("Miesiąc"))
    rok = StringField(_l("Rok"))

    PARTS = ("dzien", "miesiac", "rok")

    def __init__(self, *args, earliest: dt.date, latest: dt.date, example: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.earliest, self.latest, self.example = earliest, latest, example
        self.day: dt.date | None = None
        self.invalid: set[str] = set()

    @property
    def submitted(self) -> bool:
        return any(getattr(self, name).raw_data for name in self.PARTS)

    def _refuse(self, message, fields) -> bool:
        self.invalid = set(fields)
        first = next(name for name in self.PARTS if name in self.invalid)
        getattr(self, first).errors.append(str(message))
        return False

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        values = {name: (getattr(self, name).data or "").strip() for name in self.PARTS}
        missing = [name for name in self.PARTS if not values[name]]
        if len(missing) == 3:
            return self._refuse(_l("Wpisz datę, na którą chcesz obliczyć kwotę"), missing)
        if len(missing) == 2:
            return self._refuse(_l("Wpisz pełną datę: dzień, miesiąc i rok"), missing)
        if missing:
            message = {
                "dzien": _l("Data musi zawierać dzień"), "miesiac": _l("Data musi zawierać miesiąc"),
                "rok": _l("Data musi zawierać rok"),
            }[missing[0]]
            return self._refuse(message, missing)
        real_date = _l("Wpisz prawdziwą datę, np. %(example)s", example=self.example)
        not_numbers = [name for name in self.PARTS if not (values[name].isascii() and values[name].isdigit())]
        if not_numbers:
            return self._refuse(real_date, not_numbers)
        if len(values["rok"]) != 4:
            return self._refuse(_l("Rok musi mieć 4 cyfry"), ["rok"])
        day, month, year = (int(values[name]) for name in self.PARTS)
        if not 1 <= month <= 12:
            return self._refuse(real_date, ["miesiac"])
        try:
            chosen = dt.date(year, month, day)
        except ValueError:
            return self._refuse(real_date, ["dzien"])
        if chosen < self.earliest:
            return self._refuse(
                _l("Data musi być nie wcześniejsza niż %(date)s", date=self.earliest.strftime("%d.%m.%Y")), self.PARTS)
        if chosen > self.latest:
            return self._refuse(
                _l("Data nie może być późniejsza niż %(date)s (najwyżej dwa lata od dziś)",
                   date=self.latest.strftime("%d.%m.%Y")), self.PARTS)
        self.day = chosen
        return True
