"""Form base and field validators shared by every module (messages in Polish)."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovPasswordInput, GovRadioInput, GovSelect, GovTextArea, GovTextInput
from wtforms import ValidationError

from platforma.payments.rules import is_valid_nrb
from platforma.taxes.identifiers import validate_nip, validate_pesel


class Form(FlaskForm):
    """Every form is CSRF-protected by Flask-WTF."""


class Email:
    def __call__(self, form, field) -> None:
        value = (field.data or "").strip()
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            raise ValidationError(_l("Wpisz adres e-mail w poprawnej postaci, np. jan.kowalski@example.pl")) from None


class Pesel:
    def __call__(self, form, field) -> None:
        if field.data:
            try:
                field.data = validate_pesel(field.data.strip())
            except ValueError as exc:
                raise ValidationError(str(exc)) from None


class Nip:
    def __call__(self, form, field) -> None:
        if field.data:
            try:
                field.data = validate_nip(field.data.strip())
            except ValueError as exc:
                raise ValidationError(str(exc)) from None


class Nrb:
    def __call__(self, form, field) -> None:
        if field.data and not is_valid_nrb(field.data):
            raise ValidationError(_l("Numer rachunku jest nieprawidłowy: sprawdź 26 cyfr."))



class _PolishWidget:
    """The design system's widgets announce errors as "Error:" to screen readers; say it in the page's language."""

    def map_gov_params(self, field, **kwargs):
        params = super().map_gov_params(field, **kwargs)
        if params.get("errorMessage"):
            params["errorMessage"].setdefault("visuallyHiddenText", str(_l("Błąd")))
        return params


class TextInput(_PolishWidget, GovTextInput):
    pass


class TextArea(_PolishWidget, GovTextArea):
    pass


class RadioInput(_PolishWidget, GovRadioInput):
    pass


class Select(_PolishWidget, GovSelect):
    pass


class PasswordInput(_PolishWidget, GovPasswordInput):
    """Also the show/hide button's texts."""

    def map_gov_params(self, field, **kwargs):
        params = super().map_gov_params(field, **kwargs)
        params.setdefault("showPasswordText", str(_l("Pokaż")))
        params.setdefault("hidePasswordText", str(_l("Ukryj")))
        params.setdefault("showPasswordAriaLabelText", str(_l("Pokaż hasło")))
        params.setdefault("hidePasswordAriaLabelText", str(_l("Ukryj hasło")))
        params.setdefault("passwordShownAnnouncementText", str(_l("Hasło jest widoczne")))
        params.setdefault("passwordHiddenAnnouncementText", str(_l("Hasło jest ukryte")))
        return params
