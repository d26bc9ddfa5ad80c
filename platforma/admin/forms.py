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


class DatedSettingForm(Form):
    """A new value of a dated setting, from a given day (nothing is ever overwritten)."""

    effective_from = StringField(_l("Obowiązuje od (RRRR-MM-DD)"), widget=TextInput(), validators=[InputRequired(_l("Wpisz datę")), DATE_RE])
    value = StringField(_l("Wartość"), widget=TextInput(), validators=[Optional(), Length(max=20)])
    frequency = SelectField(
        _l("Jak często płaci się opłatę"), widget=Select(), validators=[Optional()],
        choices=[("monthly", _l("co miesiąc")), ("quarterly", _l("co kwartał")), ("semiannual", _l("co pół roku")),
                 ("annual", _l("raz w roku")), ("custom", _l("w stałych terminach"))],
    )
    day = StringField(_l("Dzień miesiąca terminu płatności (1-31)"), widget=TextInput(), validators=[Optional(), Regexp(r"^\d{1,2}$", message=_l("Wpisz liczbę od 1 do 31"))])
    in_advance = RadioField(
        _l("Płatna"), widget=RadioInput(), validators=[Optional()], default="true",
        choices=[("true", _l("z góry (w pierwszym miesiącu okresu)")), ("false", _l("z dołu (w miesiącu po okresie)"))],
    )
    due_dates = StringField(_l("Stałe terminy (MM-DD, po przecinku), np. 03-15, 09-15"), widget=TextInput(), validators=[Optional(), Length(max=100)])
    note = StringField(_l("Podstawa (np. uchwała, obwieszczenie)"), widget=TextInput(), validators=[InputRequired(_l("Wpisz podstawę zmiany")), Length(max=500)])
    submit = SubmitField(_l("Dodaj wartość"), widget=GovSubmitInput())
