"""Forms of the clerks' tax pages."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput
from wtforms import RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, Regexp

from platforma.web.forms import Form, RadioInput, Select, TextArea, TextInput

DATE = Regexp(r"^\d{4}-\d{2}-\d{2}$", message=_l("Wpisz datę jako RRRR-MM-DD, np. 2025-03-15"))
AMOUNT = Regexp(r"^\s*\d{1,3}(?:[ \u00a0]?\d{3})*(?:[.,]\d{1,2})?\s*$", message=_l("Wpisz kwotę w złotych, np. 1234,56"))


class ManualPostingForm(Form):
    kind = RadioField(
        _l("Rodzaj księgowania"), widget=RadioInput(), validators=[InputRequired(_l("Wybierz rodzaj księgowania"))],
        choices=[("przypis", _l("przypis (zwiększa należność raty)")), ("odpis", _l("odpis (zmniejsza należność raty)")),
                 ("koszty_upomnienia", _l("koszty upomnienia")), ("zwrot", _l("zwrot nadpłaty"))],
    )
    installment = SelectField(_l("Rata (dla przypisu i odpisu)"), widget=Select(), validators=[Optional()], coerce=str)
    amount = StringField(_l("Kwota (zł)"), widget=TextInput(), validators=[InputRequired(_l("Wpisz kwotę")), AMOUNT])
    value_date = StringField(_l("Data księgowania (RRRR-MM-DD)"), widget=TextInput(), validators=[InputRequired(_l("Wpisz datę")), DATE])
    reason = TextAreaField(
        _l("Podstawa księgowania"), widget=TextArea(),
        description=_l("Obowiązkowo: np. numer decyzji zmieniającej, numer upomnienia, wniosek o zwrot."),
        validators=[InputRequired(_l("Podaj podstawę księgowania")), Length(max=2000)],
    )
    submit = SubmitField(_l("Zaksięguj"), widget=GovSubmitInput())


class InterestCalculatorForm(Form):
    class Meta:
        csrf = False  # a calculation changes nothing

    amount = StringField(_l("Zaległość (zł)"), widget=TextInput(), validators=[InputRequired(_l("Wpisz kwotę zaległości")), AMOUNT])
    due = StringField(_l("Termin płatności (RRRR-MM-DD)"), widget=TextInput(), validators=[InputRequired(_l("Wpisz termin płatności")), DATE])
    paid = StringField(_l("Dzień zapłaty (RRRR-MM-DD)"), widget=TextInput(), validators=[InputRequired(_l("Wpisz dzień zapłaty")), DATE])
    rate = RadioField(
        _l("Stawka odsetek"), widget=RadioInput(), default="standard", validators=[InputRequired()],
        choices=[("standard", _l("podstawowa (art. 56 § 1)")), ("reduced", _l("obniżona, 50% (art. 56a)")),
                 ("increased", _l("podwyższona, 150% (art. 56b)"))],
    )
    submit = SubmitField(_l("Oblicz"), widget=GovSubmitInput())


class RemindersForm(Form):
    as_of = StringField(_l("Zaległości na dzień (RRRR-MM-DD)"), widget=TextInput(), validators=[InputRequired(_l("Wpisz datę")), DATE])
    minimum = StringField(
        _l("Pomiń zaległości do kwoty (zł)"), widget=TextInput(), validators=[Optional(), AMOUNT],
        description=_l("Zaległość z odsetkami nie większa od tej kwoty nie dostaje upomnienia."),
    )
    submit = SubmitField(_l("Pokaż listę"), widget=GovSubmitInput())


class LimitationForm(Form):
    liability = SelectField(_l("Zobowiązanie"), widget=Select(), validators=[InputRequired(_l("Wybierz zobowiązanie"))], coerce=str)
    kind = RadioField(
        _l("Zdarzenie"), widget=RadioInput(), validators=[InputRequired(_l("Wybierz zdarzenie"))],
        choices=[
            ("przerwanie", _l("przerwanie biegu przedawnienia: zastosowano środek egzekucyjny, o którym podatnik został zawiadomiony (art. 70 § 4)")),
            ("zawieszenie", _l("zawieszenie biegu przedawnienia (art. 70 § 2 pkt 1 i § 6)")),
            ("koniec_zawieszenia", _l("koniec zawieszenia: przedawnienie biegnie dalej od następnego dnia (art. 70 § 7)")),
            ("zabezpieczenie", _l("zabezpieczenie hipoteką lub zastawem skarbowym (art. 70 § 8)")),
        ],
    )
    occurred_on = StringField(_l("Data zdarzenia (RRRR-MM-DD)"), widget=TextInput(),
                              description=_l("Dzień zastosowania środka egzekucyjnego, pierwszy dzień zawieszenia albo ostatni dzień zawieszenia, które się kończy."),
                              validators=[InputRequired(_l("Wpisz datę")), DATE])
    until = StringField(_l("Ostatni dzień zawieszenia, jeśli jest znany (RRRR-MM-DD)"), widget=TextInput(),
                        description=_l("Np. odroczony termin płatności. Puste: zawieszenie trwa do wpisania jego końca."),
                        validators=[Optional(), DATE])
    ends = SelectField(_l("Zawieszenie, które się kończy"), widget=Select(), validators=[Optional()], coerce=str)
    reason = TextAreaField(
        _l("Podstawa wpisu"), widget=TextArea(),
        description=_l("Obowiązkowo: np. numer tytułu wykonawczego, środek egzekucyjny i data zawiadomienia podatnika."),
        validators=[InputRequired(_l("Podaj podstawę wpisu")), Length(max=2000)],
    )
    submit = SubmitField(_l("Zapisz"), widget=GovSubmitInput())


class OffsetRequestForm(Form):
    requested_on = StringField(_l("Data wniosku podatnika (RRRR-MM-DD)"), widget=TextInput(),
                               validators=[InputRequired(_l("Wpisz datę wniosku")), DATE])
    submit = SubmitField(_l("Zalicz nadpłatę na przyszłe raty"), widget=GovSubmitInput())
