"""Przedawnienie (art. 70 OP) as pure date arithmetic: the table of cases worked out by hand."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platforma.taxes.rules import LimitationEvent, add_years, is_time_barred, limitation_date

D = dt.date


def interrupted(day):
    return LimitationEvent("przerwanie", day)


def suspended(first, last=None):
    return LimitationEvent("zawieszenie", first, last)


CASES = [
    # art. 70 §1: five years from the end of the year in which the deadline passed
    ("art. 70 §1, March", D(2019, 3, 15), (), D(2024, 12, 31)),
    ("art. 70 §1, the last day of the year", D(2019, 12, 31), (), D(2024, 12, 31)),
    ("art. 70 §1, a deadline moved into January (art. 12 §5, 47 §2)", D(2020, 1, 2), (), D(2025, 12, 31)),
    # the last day on a Saturday: the next working day (art. 12 §5, the conservative reading, ADR 0014)
    ("art. 70 §1, 31 December 2022 a Saturday", D(2017, 5, 15), (), D(2023, 1, 2)),
    # art. 70 §4: runs anew from the day after the enforcement measure, five years (art. 12 §3)
    ("§4 interruption", D(2019, 3, 15), (interrupted(D(2023, 6, 10)),), D(2028, 6, 12)),  # 10 June 2028: Saturday
    ("§4 interruption on the last day", D(2019, 3, 15), (interrupted(D(2024, 12, 31)),), D(2029, 12, 31)),
    ("§4 a measure after the liability expired changes nothing", D(2019, 3, 15), (interrupted(D(2025, 1, 5)),), D(2024, 12, 31)),
    ("§4 in the year of the deadline: never shortened (conservative)", D(2019, 3, 15), (interrupted(D(2019, 11, 10)),), D(2024, 12, 31)),
    ("§4 on 29 February: art. 12 §2-3, the last day of February", D(2019, 3, 15), (interrupted(D(2024, 2, 29)),), D(2029, 2, 28)),
    ("§4 twice", D(2019, 3, 15), (interrupted(D(2026, 4, 1)), interrupted(D(2021, 5, 5))), D(2031, 4, 1)),
    # art. 70 §6-§7 (and §2 pkt 1): the days suspended while the period ran are added
    ("§6 ten days suspended", D(2019, 3, 15), (suspended(D(2022, 1, 10), D(2022, 1, 19)),), D(2025, 1, 10)),
    ("§6 still suspended: does not expire", D(2019, 3, 15), (suspended(D(2022, 1, 10)),), None),
    ("§6 begun before the period: only its days within it", D(2019, 3, 15), (suspended(D(2019, 6, 1), D(2020, 1, 31)),), D(2025, 1, 31)),
    ("§6 after expiry: nothing", D(2019, 3, 15), (suspended(D(2025, 2, 1), D(2025, 3, 1)),), D(2024, 12, 31)),
    ("§6 overlapping suspensions count once", D(2019, 3, 15),
     (suspended(D(2022, 1, 1), D(2022, 1, 10)), suspended(D(2022, 1, 5), D(2022, 1, 20))), D(2025, 1, 20)),
    ("§6 then §4: the period runs anew, the old suspension no longer counts", D(2019, 3, 15),
     (suspended(D(2021, 3, 1), D(2021, 3, 31)), interrupted(D(2023, 1, 1))), D(2028, 1, 3)),  # 1 January: a holiday
    ("§4 then §6 within the new period", D(2019, 3, 15),
     (interrupted(D(2023, 1, 1)), suspended(D(2024, 1, 1), D(2024, 1, 10))), D(2028, 1, 11)),
    ("§6 keeps it alive for a later §4", D(2019, 3, 15),
     (suspended(D(2024, 12, 1), D(2024, 12, 31)), interrupted(D(2025, 1, 15))), D(2030, 1, 15)),
    # art. 70 §8: secured by a tax mortgage or pledge, it does not expire
    ("§8 mortgage", D(2019, 3, 15), (LimitationEvent("zabezpieczenie", D(2020, 5, 1)),), None),
]


@pytest.mark.parametrize("label, due, events, expected", CASES, ids=[c[0] for c in CASES])
def test_limitation_dates(label, due, events, expected):
    assert limitation_date(due, events) == expected


def test_it_expires_the_day_after_the_last_day():
    assert not is_time_barred(D(2019, 3, 15), D(2024, 12, 31))
    assert is_time_barred(D(2019, 3, 15), D(2025, 1, 1))
    assert not is_time_barred(D(2019, 3, 15), D(2099, 1, 1), (suspended(D(2020, 2, 1)),))


def test_bad_events_are_refused():
    with pytest.raises(ValueError):
        LimitationEvent("umorzenie", D(2020, 1, 1))
    with pytest.raises(ValueError):
        LimitationEvent("zawieszenie", D(2020, 1, 10), D(2020, 1, 9))
    with pytest.raises(ValueError):
        LimitationEvent("przerwanie", D(2020, 1, 10), D(2020, 2, 1))


@pytest.mark.parametrize("day, expected", [(D(2024, 2, 29), D(2029, 2, 28)), (D(2023, 6, 30), D(2028, 6, 30))])
def test_years_are_counted_by_art_12(day, expected):
    assert add_years(day, 5) == expected


@given(
    due=st.dates(min_value=D(2010, 1, 1), max_value=D(2030, 12, 31)),
    events=st.lists(st.one_of(
        st.builds(interrupted, st.dates(min_value=D(2010, 1, 1), max_value=D(2040, 12, 31))),
        st.builds(lambda first, days: suspended(first, first + dt.timedelta(days=days)),
                  st.dates(min_value=D(2010, 1, 1), max_value=D(2040, 12, 31)), st.integers(0, 800)),
    ), max_size=4),
)
def test_events_never_bring_the_date_forward(due, events):
    """Conservative: an interruption or a suspension never makes a liability expire sooner."""
    base = limitation_date(due)
    found = limitation_date(due, tuple(events))
    assert found is None or found >= base
    for cut in range(len(events)):
        earlier = limitation_date(due, tuple(events[:cut]))
        if earlier is not None and all(e.on > earlier for e in events[cut:]):
            assert found == earlier  # what happens after the liability expired changes nothing
