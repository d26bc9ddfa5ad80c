"""The money filter prints amounts exactly as Babel's Polish and English number formats would."""
from __future__ import annotations

from decimal import Decimal

import pytest
from babel.numbers import format_decimal
from flask import Flask
from flask_babel import Babel
from hypothesis import given
from hypothesis import strategies as st

from platforma.web.filters import money


@pytest.mark.parametrize("locale", ["pl", "en"])
@given(grosze=st.integers(-10**13, 10**13))
def test_money_matches_babel(locale, grosze):
    app = Flask(__name__)
    Babel(app, locale_selector=lambda: locale)
    amount = Decimal(grosze) / 100
    with app.test_request_context():
        expected = format_decimal(amount, format="#,##0.00", locale=locale) + "\u00a0zł"
        assert money(amount) == expected


def test_money_keeps_the_currency_with_its_number():
    app = Flask(__name__)
    Babel(app, locale_selector=lambda: "pl")
    with app.test_request_context():
        assert money(Decimal("1234.5")) == "1\u00a0234,50\u00a0zł"
        assert money(None) == ""
