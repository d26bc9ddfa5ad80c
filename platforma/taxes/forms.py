from __future__ import annotations

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
