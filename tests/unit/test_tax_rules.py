"""The law as pure functions: due dates, schedules, rounding, interest, allocation (DOMAIN.md)."""
from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from platforma.taxes import rules
from platforma.taxes.rules import Arrear, RateTable, allocate_payment, arrears_interest, installment_schedule

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "reference-data" / "odsetki"
THRESHOLD = Decimal("8.70")  # art. 54 §1 pkt 5 OP, at present


def packaged_rates() -> RateTable:
    path = ROOT / "platforma" / "taxes" / "data" / "interest_rates.csv"
    with path.open(encoding="utf-8") as handle:
        return RateTable.from_rows((dt.date.fromisoformat(r["effective_from"]), r["rate_percent"]) for r in csv.DictReader(handle))


RATES = packaged_rates()
D = dt.date


# -- art. 12 §5 OP: days off ------------------------------------------------------------------------

#: the four installment dates of 2024-2027 and where art. 12 §5 moves them (weekday in the comment)
FOUR_DATES = [
    (D(2024, 3, 15), D(2024, 3, 15)), (D(2024, 5, 15), D(2024, 5, 15)), (D(2024, 9, 15), D(2024, 9, 16)),  # Sunday
    (D(2024, 11, 15), D(2024, 11, 15)),
    (D(2025, 3, 15), D(2025, 3, 17)),  # Saturday (DOMAIN.md's example)
    (D(2025, 5, 15), D(2025, 5, 15)), (D(2025, 9, 15), D(2025, 9, 15)), (D(2025, 11, 15), D(2025, 11, 17)),  # Saturday
    (D(2026, 3, 15), D(2026, 3, 16)),  # Sunday
    (D(2026, 5, 15), D(2026, 5, 15)), (D(2026, 9, 15), D(2026, 9, 15)), (D(2026, 11, 15), D(2026, 11, 16)),  # Sunday
    (D(2027, 3, 15), D(2027, 3, 15)), (D(2027, 5, 15), D(2027, 5, 17)),  # Saturday
    (D(2027, 9, 15), D(2027, 9, 15)), (D(2027, 11, 15), D(2027, 11, 15)),
]

OTHER_DEADLINES = [
    (D(2024, 2, 15), D(2024, 2, 15)), (D(2025, 2, 15), D(2025, 2, 17)), (D(2026, 2, 15), D(2026, 2, 16)),
    (D(2027, 2, 15), D(2027, 2, 15)),  # transport tax, first half
    (D(2026, 1, 31), D(2026, 2, 2)), (D(2027, 1, 31), D(2027, 2, 1)),  # legal persons' January property tax
    (D(2025, 12, 24), D(2025, 12, 29)),  # 24 December is a holiday since 2025, then Christmas and a weekend
    (D(2024, 12, 24), D(2024, 12, 24)),  # ... but it was a working day in 2024
    (D(2026, 6, 4), D(2026, 6, 5)),  # Corpus Christi (movable)
    (D(2027, 3, 29), D(2027, 3, 30)),  # Easter Monday (movable)
    (D(2026, 11, 11), D(2026, 11, 12)), (D(2027, 8, 15), D(2027, 8, 16)), (D(2025, 5, 3), D(2025, 5, 5)),
    (D(2026, 1, 6), D(2026, 1, 7)),
]


@pytest.mark.parametrize("nominal, effective", FOUR_DATES + OTHER_DEADLINES)
def test_deadlines_move_to_the_next_working_day(nominal, effective):
    assert rules.next_working_day(nominal) == effective


@pytest.mark.parametrize("year", [2024, 2025, 2026, 2027])
def test_natural_persons_pay_on_the_four_dates(year):
    schedule = installment_schedule("nieruchomosci", "natural", Decimal(1000), year)
    expected = [e for n, e in FOUR_DATES if n.year == year]
    assert [i.due for i in schedule] == expected
    assert [i.amount for i in schedule] == [250, 250, 250, 250]


def test_legal_persons_pay_property_tax_monthly_january_by_the_31st():
    schedule = installment_schedule("nieruchomosci", "legal", Decimal(12345), 2026)
    assert len(schedule) == 12
    assert [i.nominal_due for i in schedule][:3] == [D(2026, 1, 31), D(2026, 2, 15), D(2026, 3, 15)]
    assert [i.due for i in schedule][:3] == [D(2026, 2, 2), D(2026, 2, 16), D(2026, 3, 16)]
    assert sum(i.amount for i in schedule) == 12345
    assert {i.amount for i in schedule[:-1]} == {Decimal(1029)} and schedule[-1].amount == 12345 - 11 * 1029


def test_other_taxes():
    assert [i.nominal_due.month for i in installment_schedule("lesny", "legal", Decimal(1200), 2025)] == list(range(1, 13))
    assert [i.nominal_due for i in installment_schedule("rolny", "legal", Decimal(1200), 2025)] == [n for n, _ in FOUR_DATES if n.year == 2025]
    transport = installment_schedule("srodki_transportowe", "legal", Decimal(2501), 2025)
    assert [(i.due, i.amount) for i in transport] == [(D(2025, 2, 17), 1251), (D(2025, 9, 15), 1250)]
    with pytest.raises(ValueError, match="natural persons only"):
        installment_schedule("laczne", "legal", Decimal(500), 2025)


@pytest.mark.parametrize("arisen, expected", [
    # art. 11 ust. 1 upol: the first day of January or February: the two dates, in proportion to the months
    (D(2025, 2, 1), [(D(2025, 2, 17), 1091), (D(2025, 9, 15), 1309)]),
    # art. 11 ust. 2 pkt 1: after 1 February, before 1 September: within 14 days, then by 15 September
    (D(2025, 4, 1), [(D(2025, 4, 15), 800), (D(2025, 9, 15), 1600)]),
    # art. 11 ust. 2 pkt 2: from 1 September: at once, within 14 days (15 November 2025 was a Saturday)
    (D(2025, 9, 1), [(D(2025, 9, 15), 2400)]),
    (D(2025, 11, 1), [(D(2025, 11, 17), 2400)]),
])
def test_transport_tax_for_an_obligation_that_arose_during_the_year(arisen, expected):
    schedule = installment_schedule("srodki_transportowe", "legal", Decimal(2400), 2025, liable_from=arisen)
    assert [(i.due, i.amount) for i in schedule] == expected


def test_transport_tax_arising_in_july_assumption_first_installment_for_the_months_before_september():
    """ASSUMPTION (ADR 0014): art. 11 ust. 2 pkt 1 upol names two installments for an obligation
    arising in July or August; the first stands for the months before September."""
    schedule = installment_schedule("srodki_transportowe", "natural", Decimal(1200), 2025, liable_from=D(2025, 7, 1))
    assert [(i.due, i.amount) for i in schedule] == [(D(2025, 7, 15), 400), (D(2025, 9, 15), 800)]  # 2 of 6 months, 4 of 6


@pytest.mark.parametrize("amount", [Decimal(1), Decimal(87), Decimal(100)])
def test_100_zloty_or_less_is_paid_at_once_by_the_first_date(amount):
    [only] = installment_schedule("rolny", "natural", amount, 2025)
    assert only.due == D(2025, 3, 17) and only.amount == amount
    assert len(installment_schedule("rolny", "natural", Decimal(101), 2025)) == 4


def test_late_delivery_moves_the_installment_14_days_after_delivery():
    # art. 47 §2 OP: delivered 10 March, fewer than 14 days before 15 March -> due 24 March 2025
    schedule = installment_schedule("nieruchomosci", "natural", Decimal(1234), 2025, delivered=D(2025, 3, 10))
    assert [(i.due.isoformat(), str(i.amount)) for i in schedule] == [
        ("2025-03-24", "309"), ("2025-05-15", "309"), ("2025-09-15", "309"), ("2025-11-17", "307")]
    # delivered exactly 14 days before: the date stands
    assert rules.effective_due(D(2025, 5, 15), delivered=D(2025, 5, 1)) == D(2025, 5, 15)
    assert rules.effective_due(D(2025, 5, 15), delivered=D(2025, 5, 2)) == D(2025, 5, 16)
    # 14 days after delivery that fall on a day off move on again (art. 12 §5): 1 Nov + 14 = 15 Nov 2025, a Saturday
    assert rules.effective_due(D(2025, 11, 15), delivered=D(2025, 11, 1)) == D(2025, 11, 17)


def test_obligation_from_june_is_spread_over_the_months_it_covers():
    schedule = installment_schedule("nieruchomosci", "natural", Decimal(1234), 2025, liable_from=D(2025, 6, 1), delivered=D(2025, 7, 1))
    assert [(i.nominal_due, i.due, i.amount) for i in schedule] == [
        (D(2025, 5, 15), D(2025, 7, 15), 176),  # June only: 1 of 7 months, due 14 days after delivery
        (D(2025, 9, 15), D(2025, 9, 15), 529),
        (D(2025, 11, 15), D(2025, 11, 17), 529),
    ]


@settings(max_examples=300)
@given(
    tax=st.sampled_from(rules.TAX_KINDS), payer=st.sampled_from(rules.PAYER_TYPES),
    amount=st.integers(min_value=1, max_value=10_000_000), year=st.integers(2020, 2030),
    first=st.integers(1, 12), last=st.integers(1, 12),
)
def test_installments_are_whole_zloty_and_sum_to_the_tax(tax, payer, amount, year, first, last):
    assume(first <= last and not (tax == "laczne" and payer == "legal"))
    schedule = installment_schedule(tax, payer, Decimal(amount), year, liable_from=D(year, first, 1), liable_to=D(year, last, 28))
    assert sum(i.amount for i in schedule) == amount
    assert all(i.amount == i.amount.to_integral_value() and i.amount > 0 for i in schedule)
    assert all(rules.is_working_day(i.due) and i.due >= i.nominal_due for i in schedule)
    assert [i.due for i in schedule] == sorted(i.due for i in schedule)


def test_waste_fee_keeps_grosze_and_follows_the_gmina_schedule():
    quarterly = rules.waste_fee_schedule(Decimal("31.50"), 2025, frequency="quarterly", day=15, in_advance=True)
    assert [(i.due, i.amount) for i in quarterly] == [
        (D(2025, 1, 15), Decimal("94.50")), (D(2025, 4, 15), Decimal("94.50")),
        (D(2025, 7, 15), Decimal("94.50")), (D(2025, 10, 15), Decimal("94.50"))]
    arrears = rules.waste_fee_schedule(Decimal("31.50"), 2025, frequency="monthly", day=31, in_advance=False)
    assert arrears[0].nominal_due == D(2025, 2, 28) and arrears[-1].nominal_due == D(2026, 1, 31)
    assert arrears[-1].due == D(2026, 2, 2)
    assert sum(i.amount for i in arrears) == Decimal("378.00")


# -- rounding (art. 63 OP) --------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [("12.49", 12), ("12.50", 13), ("12.4999", 12), ("0.50", 1), ("0.49", 0)])
def test_rounding_to_whole_zloty(value, expected):
    assert rules.round_to_zloty(Decimal(value)) == expected


def test_no_float_touches_money():
    with pytest.raises(TypeError):
        rules.round_to_zloty(12.5)
    with pytest.raises(TypeError):
        arrears_interest(1000.0, D(2024, 3, 15), D(2024, 4, 15), RATES, THRESHOLD)
    with pytest.raises(TypeError):
        installment_schedule("rolny", "natural", 500.0, 2025)
    with pytest.raises(TypeError):
        allocate_payment(10.0, D(2025, 1, 1), [], RATES, THRESHOLD)


# -- interest ---------------------------------------------------------------------------------------

def _derived_cases():
    path = SHARED / "derived_examples.json"
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", _derived_cases(), ids=lambda c: c["label"])
def test_interest_matches_the_worked_examples(case):
    result = arrears_interest(Decimal(str(case["amount_pln"])), D.fromisoformat(case["due_date"]),
                              D.fromisoformat(case["payment_date"]), RATES, THRESHOLD)
    assert [(p.start.isoformat(), p.end.isoformat(), p.days, str(p.rate), str(p.interest.quantize(rules.FOUR_PLACES)))
            for p in result.periods] == [
        (p["from"], p["to"], p["days"], p["rate"], p["interest_unrounded"]) for p in case["periods"]]
    assert str(result.unrounded.quantize(rules.FOUR_PLACES)) == case["sum_unrounded"]
    assert str(result.rounded) == case["rounded_full_zl"]
    assert str(result.amount) == case["charged_after_8_70_rule"]


def test_worked_examples_are_present():
    if not (SHARED / "derived_examples.json").exists():
        pytest.skip(f"reference data not found at {SHARED} (CI has it)")
    assert len(_derived_cases()) >= 8


def test_threshold_compares_the_rounded_interest():
    # 8.49 rounds to 8: not charged; 8.50 rounds to 9: charged (DOMAIN.md, "Threshold")
    day = D(2024, 3, 15)
    below = arrears_interest(Decimal("2136.94"), day, day + dt.timedelta(days=10), RATES, THRESHOLD)
    above = arrears_interest(Decimal("2139.67"), day, day + dt.timedelta(days=10), RATES, THRESHOLD)
    assert below.rounded == 8 and not below.charged and below.amount == 0
    assert above.rounded == 9 and above.charged and above.amount == 9


def test_reduced_and_increased_rates():
    base = arrears_interest(Decimal(1000), D(2024, 3, 15), D(2024, 12, 31), RATES, THRESHOLD)
    reduced = arrears_interest(Decimal(1000), D(2024, 3, 15), D(2024, 12, 31), RATES, THRESHOLD, "reduced")
    increased = arrears_interest(Decimal(1000), D(2024, 3, 15), D(2024, 12, 31), RATES, THRESHOLD, "increased")
    assert reduced.periods[0].rate == Decimal("7.25") and increased.periods[0].rate == Decimal("21.75")
    assert reduced.unrounded * 2 == base.unrounded and increased.unrounded * 2 == base.unrounded * 3


@settings(max_examples=200)
@given(
    amount=st.integers(1, 10_000_000).map(lambda g: Decimal(g) / 100),
    extra=st.integers(1, 100_000).map(lambda g: Decimal(g) / 100),
    due=st.dates(D(2015, 1, 1), D(2026, 1, 1)),
    days=st.integers(0, 1500), more_days=st.integers(1, 400),
)
def test_interest_grows_with_days_and_amount(amount, extra, due, days, more_days):
    paid = due + dt.timedelta(days=days)
    base = arrears_interest(amount, due, paid, RATES, THRESHOLD)
    assert base.days == days
    assert arrears_interest(amount + extra, due, paid, RATES, THRESHOLD).unrounded >= base.unrounded
    assert arrears_interest(amount, due, paid + dt.timedelta(days=more_days), RATES, THRESHOLD).unrounded > base.unrounded
    assert sum(p.days for p in base.periods) == days
    # periods are contiguous and each has one rate
    for before, after in zip(base.periods, base.periods[1:]):
        assert after.start == before.end + dt.timedelta(days=1) and after.rate != before.rate


# -- allocation -------------------------------------------------------------------------------------

def test_oldest_arrear_first_then_overpayment():
    arrears = [Arrear("rata-2", D(2025, 5, 15), Decimal(300)), Arrear("rata-1", D(2025, 3, 17), Decimal(309))]
    result = allocate_payment(Decimal("700.00"), D(2025, 3, 20), arrears, RATES, THRESHOLD)
    # 3 days late on 309 zł: 0.37 zł of interest, under the threshold: nothing charged
    assert [(p.key, p.principal, p.interest) for p in result.parts] == [("rata-1", 309, 0), ("rata-2", 300, 0)]
    assert result.overpayment == Decimal("91.00")


def test_designation_comes_first():
    arrears = [Arrear("rata-1", D(2025, 3, 17), Decimal(309)), Arrear("rata-2", D(2025, 5, 15), Decimal(309))]
    result = allocate_payment(Decimal("309.00"), D(2025, 3, 10), arrears, RATES, THRESHOLD, designated=["rata-2"])
    assert [(p.key, p.principal) for p in result.parts] == [("rata-2", 309)]


def test_partial_payment_splits_between_arrear_and_interest_in_proportion():
    # 10,000 zł due 5 May 2025 paid late on 10 July 2025: interest 244 zł (see the worked example)
    arrear = Arrear("decyzja", D(2025, 5, 5), Decimal(10000))
    result = allocate_payment(Decimal("5000.00"), D(2025, 7, 10), [arrear], RATES, THRESHOLD)
    [part] = result.parts
    assert part.interest_due == 244
    # art. 55 §2 OP: 5000 × 10000 / 10244 for the arrear, the rest for the interest
    assert part.principal == Decimal("4880.91") and part.interest == Decimal("119.09")
    assert part.principal + part.interest == Decimal("5000.00") and result.overpayment == 0
    assert part.principal_left == Decimal("5119.09") and part.interest_left == Decimal("124.91")


arrear_strategy = st.builds(
    Arrear,
    key=st.uuids().map(str),
    due=st.dates(D(2020, 1, 1), D(2025, 12, 31)),
    principal=st.integers(1, 5_000_000).map(lambda g: Decimal(g) / 100),
    interest_unpaid=st.integers(0, 500).map(Decimal),
)


@settings(max_examples=300)
@given(
    amount=st.integers(1, 20_000_000).map(lambda g: Decimal(g) / 100),
    arrears=st.lists(arrear_strategy, max_size=8, unique_by=lambda a: a.key),
    paid_on=st.dates(D(2020, 1, 1), D(2026, 6, 30)),
)
def test_allocation_keeps_every_grosz(amount, arrears, paid_on):
    result = allocate_payment(amount, paid_on, arrears, RATES, THRESHOLD)
    assert result.total == amount
    for part in result.parts:
        assert part.principal >= 0 and part.interest >= 0
        assert part.principal_left >= 0 and part.interest_left >= 0
        assert part.principal == part.principal.quantize(rules.GROSZ) and part.interest == part.interest.quantize(rules.GROSZ)
    # only the last arrear touched may stay partly unpaid, and an overpayment means everything was paid
    for part in result.parts[:-1]:
        assert part.principal_left == 0 and part.interest_left == 0
    if result.overpayment > 0:
        assert all(p.principal_left == 0 and p.interest_left == 0 for p in result.parts)
        assert len(result.parts) == len([a for a in arrears if a.principal + a.interest_unpaid > 0 or a.due < paid_on])
