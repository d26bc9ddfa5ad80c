"""The account's interest shortcut computes exactly what the rule computes (art. 56 OP, § 2 of the
regulation), and the rate table that remembers its answers gives the same ones."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from importlib import resources

from hypothesis import given, settings
from hypothesis import strategies as st

from platforma.taxes.account import computed_interest, rounded_interest
from platforma.taxes.rules import RateTable, arrears_interest
from platforma.taxes.settings import RememberingRateTable


def seeded_rows() -> list[tuple[dt.date, str]]:
    text = resources.files("platforma.taxes.data").joinpath("interest_rates.csv").read_text(encoding="utf-8")
    return [(dt.date.fromisoformat(row["effective_from"]), row["rate_percent"]) for row in csv.DictReader(io.StringIO(text))]


RATES = RateTable.from_rows(seeded_rows())
REMEMBERING = RememberingRateTable.from_rows(seeded_rows())
FIRST = max(dt.date(2015, 1, 1), RATES.changes[0][0])
principals = st.one_of(
    st.integers(min_value=0, max_value=10**11).map(lambda grosze: Decimal(grosze).scaleb(-2)),
    st.integers(min_value=0, max_value=10**7).map(Decimal),  # whole złoty, as the taxes are
)
days = st.dates(min_value=FIRST, max_value=dt.date(2027, 12, 31))


@settings(max_examples=3000, deadline=None)
@given(principals, days, st.integers(min_value=-5, max_value=4000))
def test_the_shortcut_is_the_rule(principal, due, span):
    paid_on = due + dt.timedelta(days=span)
    expected = arrears_interest(principal, due, paid_on, RATES, Decimal("8.70")).rounded
    for rates in (RATES, REMEMBERING):
        found = rounded_interest(principal, due, paid_on, rates)
        assert found == expected and found.as_tuple() == expected.as_tuple(), (principal, due, paid_on)


def test_remembered_answers_and_periods_are_the_computed_ones():
    due, day = dt.date(2024, 3, 15), dt.date(2026, 11, 22)
    for principal in (Decimal("3000"), Decimal("3000.00"), Decimal("0.01"), Decimal("123456.78")):
        first = REMEMBERING.remembered_interest(principal, due, day)
        again = REMEMBERING.remembered_interest(principal, due, day)
        assert first == again == computed_interest(principal, due, day, RATES)
    assert list(REMEMBERING.periods(due, day)) == RATES.periods(due, day)
    assert REMEMBERING.changes == RATES.changes and REMEMBERING.rate_on(day) == RATES.rate_on(day)


def test_negative_arrears_are_refused_as_by_the_rule():
    for rates in (RATES, REMEMBERING):
        try:
            rounded_interest(Decimal("-1"), dt.date(2025, 1, 1), dt.date(2025, 2, 1), rates)
        except ValueError:
            continue
        raise AssertionError("negative arrears accepted")
