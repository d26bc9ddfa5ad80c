from __future__ import annotations

from flask_babel import lazy_gettext as _l
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput
from wtforms import PasswordField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, Regexp

from platforma.web.forms import Email, Form, PasswordInput, RadioInput, Select, TextArea, TextInput
from platforma.web.legal import DECLARATION_FIELDS

DATE_RE = Regexp(r"^\d{4}-\d{2}-\d{2}$", message=_l("Wpisz datę jako RRRR-MM-DD"))


class AuditFilterForm(Form):
    class Meta:
        csrf = False  # a GET filter changes nothing

    actor = StringField(_l("Kto (e-mail)"), widget=TextInput(), validators=[Optional(), Length(max=254)])
    action = StringField(_l("Czynność (np. taxpayer.view)"), widget=TextInput(), validators=[Optional(), Length(max=64)])
    taxpayer = StringField(_l("Numer podatnika w systemie"), widget=TextInput(), validators=[Optional(), Regexp(r"^\d{1,12}$", message=_l("Wpisz liczbę"))])
    date_from = StringField(_l("Od dnia (RRRR-MM-DD)"), widget=TextInput(), validators=[Optional(), DATE_RE])
    date_to = StringField(_l("Do dnia (RRRR-MM-DD)"), widget=TextInput(), validators=[Optional(), DATE_RE])
    submit = SubmitField(_l("Filtruj"), widget=GovSubmitInput())


class StaffForm(Form):
    full_name = StringField(_l("Imię i nazwisko"), widget=TextInput(), validators=[InputRequired(_l("Wpisz imię i nazwisko")), Length(max=200)])
    email = StringField(_l("Adres e-mail"), widget=TextInput(), validators=[InputRequired(_l("Wpisz adres e-mail")), Email()])
    role = RadioField(
        _l("Rola"), widget=RadioInput(), default="clerk",
        choices=[("clerk", _l("Urzędnik")), ("admin", _l("Administrator"))],
        validators=[InputRequired(_l("Wybierz rolę"))],
    )
    password = PasswordField(
        _l("Hasło początkowe"), widget=PasswordInput(),
        description=_l("Przekaż je osobiście. Przy pierwszym logowaniu konto wymusi konfigurację weryfikacji dwuetapowej."),
        validators=[InputRequired(_l("Wpisz hasło początkowe"))],
    )
    submit = SubmitField(_l("Utwórz konto"), widget=GovSubmitInput())


class LegalPageForm(Form):
    title = StringField(_l("Tytuł"), widget=TextInput(), validators=[InputRequired(_l("Wpisz tytuł")), Length(max=200)])
    body = TextAreaField(
        _l("Treść (Markdown: ## nagłówek, 1. lista, **pogrubienie**)"), widget=TextArea(),
        validators=[InputRequired(_l("Wpisz treść")), Length(max=100_000)],
    )
    submit = SubmitField(_l("Zapisz nową wersję"), widget=GovSubmitInput())


CONTACT_MESSAGES = {
    "contact_person": _l("Wpisz osobę do kontaktu w sprawie dostępności"),
    "contact_email": _l("Wpisz adres e-mail osoby do kontaktu"),
    "contact_phone": _l("Wpisz numer telefonu osoby do kontaktu"),
}


def declaration_form_class():
    """The accessibility declaration's form, one field per element of the prescribed structure."""
    attrs = {
        "title": StringField(_l("Tytuł"), widget=TextInput(), validators=[InputRequired(_l("Wpisz tytuł")), Length(max=200)]),
    }
    for key, label in DECLARATION_FIELDS:
        if key == "status":
            attrs[key] = SelectField(label, widget=Select(), choices=[("zgodna", _l("zgodna")), ("czesciowo", _l("częściowo zgodna")), ("niezgodna", _l("niezgodna"))], validators=[InputRequired()])
        elif key.endswith("_date"):
            attrs[key] = StringField(label, widget=TextInput(), validators=[InputRequired(_l("Wpisz datę")), DATE_RE])
        elif key in CONTACT_MESSAGES:
            attrs[key] = StringField(label, widget=TextInput(), validators=[InputRequired(CONTACT_MESSAGES[key]), Length(max=200)])
        else:
            attrs[key] = TextAreaField(label, widget=TextArea(), validators=[Optional(), Length(max=20_000)])
    attrs["submit"] = SubmitField(_l("Zapisz nową wersję"), widget=GovSubmitInput())
    return type("DeclarationForm", (Form,), attrs)
