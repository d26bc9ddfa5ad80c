"""Account forms, rendered with the design system's widgets."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import EqualTo, InputRequired, Length, Optional, Regexp

from platforma.web.forms import Email, Form, Nip, Nrb, PasswordInput, Pesel, TextInput


class LoginForm(Form):
    email = StringField(_l("Adres e-mail"), widget=TextInput(), validators=[InputRequired(_l("Wpisz adres e-mail")), Email()])
    password = PasswordField(_l("Hasło"), widget=PasswordInput(), validators=[InputRequired(_l("Wpisz hasło"))])
    submit = SubmitField(_l("Zaloguj się"), widget=GovSubmitInput())


class TotpForm(Form):
    code = StringField(
        _l("Kod z aplikacji"),
        widget=TextInput(),
        validators=[InputRequired(_l("Wpisz 6-cyfrowy kod z aplikacji")), Length(min=6, max=8, message=_l("Kod ma 6 cyfr"))],
    )
    submit = SubmitField(_l("Dalej"), widget=GovSubmitInput())


class RegisterForm(Form):
    full_name = StringField(_l("Imię i nazwisko"), widget=TextInput(), validators=[InputRequired(_l("Wpisz imię i nazwisko")), Length(max=200)])
    email = StringField(_l("Adres e-mail"), widget=TextInput(), validators=[InputRequired(_l("Wpisz adres e-mail")), Email(), Length(max=254)])
    password = PasswordField(_l("Hasło"), widget=PasswordInput(), validators=[InputRequired(_l("Wpisz hasło"))])
    password_again = PasswordField(
        _l("Powtórz hasło"), widget=PasswordInput(),
        validators=[InputRequired(_l("Powtórz hasło")), EqualTo("password", _l("Hasła się różnią"))],
    )
    submit = SubmitField(_l("Załóż konto"), widget=GovSubmitInput())


class ForgotPasswordForm(Form):
    email = StringField(_l("Adres e-mail"), widget=TextInput(), validators=[InputRequired(_l("Wpisz adres e-mail")), Email()])
    submit = SubmitField(_l("Wyślij link"), widget=GovSubmitInput())


class NewPasswordForm(Form):
    password = PasswordField(_l("Nowe hasło"), widget=PasswordInput(), validators=[InputRequired(_l("Wpisz nowe hasło"))])
    password_again = PasswordField(
        _l("Powtórz nowe hasło"), widget=PasswordInput(),
        validators=[InputRequired(_l("Powtórz hasło")), EqualTo("password", _l("Hasła się różnią"))],
    )
    submit = SubmitField(_l("Zapisz hasło"), widget=GovSubmitInput())


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField(_l("Obecne hasło"), widget=PasswordInput(), validators=[InputRequired(_l("Wpisz obecne hasło"))])


class LogoutForm(Form):
    """Only the CSRF token: logging out is a POST."""


class ProfileForm(Form):
    full_name = StringField(_l("Imię i nazwisko"), widget=TextInput(), validators=[InputRequired(_l("Wpisz imię i nazwisko")), Length(max=200)])
    phone = StringField(
        _l("Telefon (nieobowiązkowo)"), widget=TextInput(),
        validators=[Optional(), Regexp(r"^\+?[0-9 ()-]{7,20}$", message=_l("Wpisz numer telefonu, np. 601 234 567"))],
    )
    declared_pesel = StringField(
        _l("PESEL (nieobowiązkowo)"), widget=TextInput(), validators=[Optional(), Pesel()],
        description=_l("Pomoże urzędowi sprawdzić, z którym podatnikiem powiązać Twoje konto."),
    )
    declared_nip = StringField(
        _l("NIP firmy, w imieniu której działasz (nieobowiązkowo)"), widget=TextInput(), validators=[Optional(), Nip()],
    )
    refund_nrb = StringField(
        _l("Numer rachunku do zwrotu nadpłat (nieobowiązkowo)"), widget=TextInput(), validators=[Optional(), Nrb()],
        description=_l("26 cyfr, np. 61 1090 1014 0000 0712 1981 2874"),
    )
    submit = SubmitField(_l("Zapisz dane"), widget=GovSubmitInput())
