"""Web-form fields and validators of the forms catalogue (Polish messages, the design system's widgets)."""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from govuk_frontend_wtf.wtforms_widgets import GovCheckboxesInput, GovDateInput
import wtforms
from wtforms import Field, ValidationError
from wtforms.validators import StopValidation

from platforma.episma.forms.rules import clean_text, normalise_kw, parse_decimal, xml_safe
from platforma.web.filters import today_warsaw
from platforma.web.forms import _PolishWidget


class CheckboxesInput(_PolishWidget, GovCheckboxesInput):
    pass


class DateInput(_PolishWidget, GovDateInput):
    """Day, month and year in three boxes (the design system's date input), labelled in Polish."""

    def map_gov_params(self, field, **kwargs):
        if field.raw_data is not None and len(field.raw_data) != 3:  # not posted, or a hand-made request
            field.raw_data = (list(field.raw_data) + ["", "", ""])[:3]
        params = super().map_gov_params(field, **kwargs)
        for item, label in zip(params["items"], (_l("Dzień"), _l("Miesiąc"), _l("Rok"))):
            item["label"] = str(label)
            item.setdefault("attributes", {})["inputmode"] = "numeric"
        return params


class DateField(Field):
    """A date typed as day, month and year; `data` is a date or None when nothing was typed."""

    widget = DateInput()

    def process_formdata(self, valuelist):
        self.data = None
        parts = [(value or "").strip() for value in valuelist]
        if not any(parts):
            return
        if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts) or len(parts[2]) != 4:
            raise ValueError(_l("Wpisz prawdziwą datę: dzień, miesiąc i rok (4 cyfry), np. 15 3 2026"))
        day, month, year = (int(part) for part in parts)
        try:
            self.data = dt.date(year, month, day)
        except ValueError:
            raise ValueError(_l("Wpisz prawdziwą datę: dzień, miesiąc i rok (4 cyfry), np. 15 3 2026")) from None

    def _value(self):
        return self.data.strftime("%d %m %Y") if self.data else ""


# -- validators ----------------------------------------------------------------------------------

def _blank(field) -> bool:
    data = field.data
    if isinstance(data, str):
        return not data.strip()
    if isinstance(data, (list, tuple)):
        return not data
    return data is None


class Required:
    """The field must be filled (for every kind of field); a value the field could not read is
    reported once, by the field itself."""

    def __init__(self, message) -> None:
        self.message = message
        self.field_flags = {"required": True}

    def __call__(self, form, field) -> None:
        if field.process_errors:
            raise StopValidation()
        if _blank(field):
            raise StopValidation(self.message)


class Optional:
    """An empty field is accepted and its other validators are skipped."""

    def __call__(self, form, field) -> None:
        if field.process_errors:
            raise StopValidation()
        if _blank(field):
            field.errors[:] = []
            raise StopValidation()


class RequiredWhen:
    """Required when another field has one of `values`; otherwise ignored (with its other validators)."""

    def __init__(self, other: str, values: tuple[str, ...], message) -> None:
        self.other, self.values, self.message = other, values, message

    def __call__(self, form, field) -> None:
        if field.process_errors:
            raise StopValidation()
        if form[self.other].data not in self.values:
            field.errors[:] = []
            raise StopValidation()
        if _blank(field):
            raise StopValidation(self.message)


class Text:
    """A text that XML can carry, at most `maximum` characters once trimmed."""

    def __init__(self, maximum: int, *, multiline: bool = False) -> None:
        self.maximum, self.multiline = maximum, multiline

    def __call__(self, form, field) -> None:
        value = clean_text(field.data, multiline=self.multiline)
        if not xml_safe(value):
            raise ValidationError(_l("Tekst zawiera niedozwolone znaki sterujące: usuń je"))
        if len(value) > self.maximum:
            raise ValidationError(_l("Tekst może mieć najwyżej %(maximum)s znaków (wpisano %(length)s)",
                                     maximum=self.maximum, length=len(value)))


class Whole:
    """A whole number from `minimum` to `maximum`."""

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, form, field) -> None:
        text = (field.data or "").strip()
        if not (text.isascii() and text.isdigit()) or not self.minimum <= int(text) <= self.maximum:
            raise ValidationError(_l("Wpisz liczbę całkowitą od %(minimum)s do %(maximum)s",
                                     minimum=self.minimum, maximum=self.maximum))


class Amount:
    """A number with at most `places` decimal places ("1 234,56"), not negative (or above zero), not
    above `maximum`."""

    def __init__(self, *, places: int = 2, positive: bool = False, maximum: str = "999999999.99",
                 unit: str = "zł") -> None:
        self.places, self.positive, self.maximum, self.unit = places, positive, maximum, unit

    def __call__(self, form, field) -> None:
        try:
            number = parse_decimal(field.data, places=self.places)
        except ValueError:
            raise ValidationError(_l("Wpisz liczbę nieujemną z najwyżej %(places)s miejscami po przecinku, np. %(example)s",
                                     places=self.places, example="1234,5" if self.places < 2 else "1234,56")) from None
        if self.positive and number == 0:
            raise ValidationError(_l("Kwota musi być większa od zera"))
        if number > parse_decimal(self.maximum, places=self.places):
            raise ValidationError(_l("Wartość jest zbyt duża: najwyżej %(maximum)s %(unit)s",
                                     maximum=self.maximum.replace(".", ","), unit=self.unit))


class InFuture:
    """A date after today (Europe/Warsaw)."""

    def __call__(self, form, field) -> None:
        if field.data is not None and field.data <= today_warsaw():
            raise ValidationError(_l("Podaj datę przyszłą (późniejszą niż dziś)"))


class YearRange:
    def __call__(self, form, field) -> None:
        text = (field.data or "").strip()
        if not (text.isascii() and text.isdigit() and len(text) == 4 and 1990 <= int(text) <= 2100):
            raise ValidationError(_l("Wpisz rok jako 4 cyfry, np. 2025"))


class LandRegister:
    """A land register number (księga wieczysta) with a valid check digit."""

    def __call__(self, form, field) -> None:
        try:
            normalise_kw(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class RadioField(wtforms.RadioField):
    """Radios whose "nothing chosen" is reported by `Required` (in the form's words), not as an invalid choice."""

    def pre_validate(self, form) -> None:
        if self.data in (None, ""):
            return
        super().pre_validate(form)
