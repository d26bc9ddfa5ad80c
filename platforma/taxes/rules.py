"""The law of local taxes as pure functions over plain values: no Flask, no session.

Abbreviations: OP = Ordynacja podatkowa (ustawa z 29 sierpnia 1997 r.); upol = ustawa o podatkach
i opłatach lokalnych; upr = ustawa o podatku rolnym; upl = ustawa o podatku leśnym; rozporządzenie
w sprawie odsetek = rozporządzenie Ministra Finansów z 22 sierpnia 2005 r. w sprawie naliczania
odsetek za zwłokę. Amounts are Decimal; a float is refused wherever money enters.
"""
from __future__ import annotations

import bisect
import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Iterable, Sequence

import holidays

ZLOTY = Decimal("1")
GROSZ = Decimal("0.01")
FOUR_PLACES = Decimal("0.0001")
DAYS_IN_YEAR = Decimal(365)  # also in leap years (§ 2 rozporządzenia w sprawie odsetek)
ONE_PAYMENT_LIMIT = Decimal(100)  # zł; art. 6 ust. 7 upol, art. 6a ust. 6 upr, art. 6 ust. 7 upl
LATE_DELIVERY_DAYS = 14  # art. 47 §2 OP

TAX_KINDS = ("nieruchomosci", "rolny", "lesny", "laczne", "srodki_transportowe")
PAYER_TYPES = ("natural", "legal")
RATE_KINDS = {"standard": Decimal("1"), "reduced": Decimal("0.5"), "increased": Decimal("1.5")}  # art. 56, 56a, 56b OP


def money(value: Decimal | int | str) -> Decimal:
    """Accept an amount only as Decimal, int or str: a binary float never touches money."""
    if isinstance(value, float):
        raise TypeError("float given for an amount")
    return Decimal(value)


# -- rounding (art. 63 OP) -------------------------------------------------------------------------

def round_to_zloty(amount: Decimal) -> Decimal:
    """Art. 63 §1 OP: whole złoty; below 50 gr down, 50 gr and more up."""
    return money(amount).quantize(ZLOTY, rounding=ROUND_HALF_UP)


def round_to_grosz(amount: Decimal) -> Decimal:
    return money(amount).quantize(GROSZ, rounding=ROUND_HALF_UP)


# -- working days (art. 12 §5 OP) ------------------------------------------------------------------

@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.Poland(years=year))


def is_working_day(day: dt.date) -> bool:
    """Not a Saturday, a Sunday or a statutory public holiday (art. 12 §5 OP names Saturday too)."""
    return day.weekday() < 5 and day not in _holidays(day.year)


def next_working_day(day: dt.date) -> dt.date:
    """Art. 12 §5 OP: a deadline that ends on a day off moves to the next working day."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


# -- installment schedules -------------------------------------------------------------------------

@dataclass(frozen=True)
class ScheduledInstallment:
    number: int
    #: the statutory date (termin płatności raty)
    nominal_due: dt.date
    #: the date that counts: after art. 47 §2 (late delivery) and art. 12 §5 (days off)
    due: dt.date
    amount: Decimal


def _installment_periods(tax: str, payer: str, year: int) -> list[tuple[dt.date, tuple[int, ...]]]:
    """The statutory due dates of a year and the months each installment stands for."""
    quarterly = [
        (dt.date(year, 3, 15), (1, 2, 3)),
        (dt.date(year, 5, 15), (4, 5, 6)),
        (dt.date(year, 9, 15), (7, 8, 9)),
        (dt.date(year, 11, 15), (10, 11, 12)),
    ]
    if tax == "srodki_transportowe":
        # art. 11 ust. 1 upol: two installments in proportion to the time the obligation lasts, by
        # 15 February and by 15 September (an obligation arising later: `_transport_periods`)
        return [(dt.date(year, 2, 15), (1, 2, 3, 4, 5, 6)), (dt.date(year, 9, 15), (7, 8, 9, 10, 11, 12))]
    if payer == "natural" or tax in ("rolny", "laczne"):
        # natural persons: art. 6 ust. 7 upol, art. 6a ust. 6 upr, art. 6 ust. 7 upl, art. 6c upr (łączne);
        # legal persons pay the agricultural tax on the same four dates (art. 6a ust. 7 upr)
        return quarterly
    monthly = [(dt.date(year, month, 15), (month,)) for month in range(1, 13)]
    if tax == "nieruchomosci":
        # art. 6 ust. 9 pkt 1 upol: legal persons monthly by the 15th, for January by 31 January
        monthly[0] = (dt.date(year, 1, 31), (1,))
    # leśny, legal persons: monthly by the 15th (art. 6 ust. 8 upl); January assumed the 15th (to verify:
    # a gmina's notice says 31 January, the statute's text could not be read here; ADR 0014)
    return monthly


def _transport_periods(year: int, arisen: dt.date, covered: set[int]) -> list[tuple[dt.date, list[int]]]:
    """Art. 11 ust. 2 upol: an obligation that arose after 1 February is paid, its first installment,
    within 14 days from the day it arose (the first day of a month, art. 9 ust. 4 upol), the second by
    15 September; one that arose from 1 September, at once within 14 days. The first installment
    stands for the covered months of the first half year; for an obligation arising in July or August
    (no such month) for the months before September (assumption, ADR 0014)."""
    within = arisen + dt.timedelta(days=LATE_DELIVERY_DAYS)  # 14 days (the same number as art. 47 §2 OP)
    if arisen >= dt.date(year, 9, 1):
        return [(within, sorted(covered))]
    last_of_first = 6 if any(m <= 6 for m in covered) else 8
    first = [m for m in sorted(covered) if m <= last_of_first]
    return [(within, first), (dt.date(year, 9, 15), [m for m in sorted(covered) if m > last_of_first])]


def effective_due(nominal: dt.date, delivered: dt.date | None = None) -> dt.date:
    """The due date that counts for one installment.

    Art. 47 §2 OP: a decision delivered fewer than 14 days before the due date (or after it) makes the
    amount due 14 days after delivery. Then art. 12 §5 OP moves a day off to the next working day.
    """
    due = nominal
    if delivered is not None and (nominal - delivered).days < LATE_DELIVERY_DAYS:
        due = delivered + dt.timedelta(days=LATE_DELIVERY_DAYS)
    return next_working_day(due)


def installment_schedule(
    tax: str,
    payer: str,
    amount: Decimal,
    year: int,
    *,
    delivered: dt.date | None = None,
    liable_from: dt.date | None = None,
    liable_to: dt.date | None = None,
) -> list[ScheduledInstallment]:
    """Installments of a tax for a year, in whole złoty, summing to the tax.

    `amount` is the tax for the part of the year the obligation covers (from `liable_from` to
    `liable_to`, whole months). Each installment takes the share of the covered months it stands for
    (the four dates stand for quarters, monthly dates for their month); installments standing for no
    covered month are dropped. Shares are rounded to whole złoty (art. 63 OP) and the last installment
    carries the difference. A tax of 100 zł or less is paid at once by the first installment's date.
    """
    if tax not in TAX_KINDS:
        raise ValueError(f"unknown tax {tax!r}")
    if payer not in PAYER_TYPES:
        raise ValueError(f"unknown payer type {payer!r}")
    if tax == "laczne" and payer != "natural":
        raise ValueError("łączne zobowiązanie pieniężne concerns natural persons only (art. 6c upr)")
    amount = money(amount)
    if amount != amount.to_integral_value() or amount <= 0:
        raise ValueError("a tax is a positive whole number of złoty (art. 63 OP)")
    first_month = liable_from.month if liable_from and liable_from.year == year else 1
    last_month = liable_to.month if liable_to and liable_to.year == year else 12
    if first_month > last_month:
        raise ValueError("the obligation must cover at least one month of the year")
    covered = set(range(first_month, last_month + 1))

    if tax == "srodki_transportowe" and liable_from is not None and dt.date(year, 2, 1) < liable_from <= dt.date(year, 12, 31):
        periods = _transport_periods(year, liable_from, covered)
    else:
        periods = [(due, [m for m in months if m in covered]) for due, months in _installment_periods(tax, payer, year)]
    periods = [(due, months) for due, months in periods if months]
    if not periods:  # e.g. vehicles: no covered month in either half cannot happen, kept for safety
        raise ValueError("no installment falls in the covered months")

    if tax != "srodki_transportowe" and amount <= ONE_PAYMENT_LIMIT:
        periods = [(periods[0][0], sorted(covered))]

    total_months = sum(len(months) for _, months in periods)
    exact = [amount * len(months) / total_months for _, months in periods[:-1]]
    shares = [round_to_zloty(share) for share in exact]
    if amount - sum(shares) <= 0:
        # tiny taxes: rounding half up would leave nothing (or less) for the last installment
        shares = [share.to_integral_value(rounding=ROUND_FLOOR) for share in exact]
    shares.append(amount - sum(shares))
    dated = [(nominal, share) for (nominal, _), share in zip(periods, shares) if share > 0]
    return [
        ScheduledInstallment(number, nominal, effective_due(nominal, delivered), share)
        for number, (nominal, share) in enumerate(dated, start=1)
    ]


def waste_fee_schedule(
    monthly_fee: Decimal, year: int, *, frequency: str, day: int, in_advance: bool, first_month: int = 1, last_month: int = 12
) -> list[ScheduledInstallment]:
    """The waste fee's installments under the rada gminy's resolution (a per-gmina, dated setting).

    The fee is not rounded to złoty (DOMAIN.md, "Rounding"): it stays in grosze. Paid in advance, an
    installment is due on `day` of the period's first month; in arrears, on `day` of the month after it.
    """
    months_per = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}[frequency]
    monthly_fee = round_to_grosz(monthly_fee)
    result = []
    for start in range(1, 13, months_per):
        months = [m for m in range(start, start + months_per) if first_month <= m <= last_month]
        if not months:
            continue
        if in_advance:
            due_year, due_month = year, start
        else:
            due_year, due_month = (year, start + months_per) if start + months_per <= 12 else (year + 1, 1)
        due_day = min(day, calendar.monthrange(due_year, due_month)[1])
        nominal = dt.date(due_year, due_month, due_day)
        result.append(ScheduledInstallment(len(result) + 1, nominal, next_working_day(nominal), monthly_fee * len(months)))
    return result


# -- interest on arrears (art. 53-56b OP; rozporządzenie w sprawie odsetek) ------------------------

@dataclass(frozen=True)
class RateTable:
    """The standard yearly rate of interest on tax arrears (percent), by the date it takes effect."""

    changes: tuple[tuple[dt.date, Decimal], ...]

    def __post_init__(self) -> None:
        if not self.changes:
            raise ValueError("empty rate table")
        if list(self.changes) != sorted(self.changes):
            raise ValueError("rate changes must be in date order")
        # the dates alone, for bisect (computed once: interest is computed for every installment)
        object.__setattr__(self, "_days", [day for day, _ in self.changes])

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[dt.date, Decimal | str]]) -> "RateTable":
        return cls(tuple(sorted((day, money(rate)) for day, rate in rows)))

    def rate_on(self, day: dt.date) -> Decimal:
        index = bisect.bisect_right(self._days, day) - 1
        if index < 0:
            raise KeyError(f"no interest rate known for {day.isoformat()}")
        return self.changes[index][1]

    def periods(self, first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date, Decimal]]:
        """[first, last] cut where the rate changes (each rate period is computed separately)."""
        result = []
        start = first
        change_days = self._days
        while start <= last:
            rate = self.rate_on(start)
            following = bisect.bisect_right(change_days, start)
            end = last if following >= len(change_days) else min(last, change_days[following] - dt.timedelta(days=1))
            if result and result[-1][2] == rate:  # a change that kept the rate (the 8% floor) is no new period
                result[-1] = (result[-1][0], end, rate)
            else:
                result.append((start, end, rate))
            start = end + dt.timedelta(days=1)
        return result


@dataclass(frozen=True)
class InterestPeriod:
    start: dt.date
    end: dt.date
    days: int
    rate: Decimal
    #: exact Kz × L × O / 365 for the period (not rounded)
    interest: Decimal


@dataclass(frozen=True)
class Interest:
    due: dt.date
    paid_on: dt.date
    periods: tuple[InterestPeriod, ...]
    #: the exact sum of the periods
    unrounded: Decimal
    #: the sum rounded once to whole złoty (art. 63 §1 OP)
    rounded: Decimal
    #: False when the rounded interest does not exceed the threshold (art. 54 §1 pkt 5 OP)
    charged: bool

    @property
    def days(self) -> int:
        return sum(p.days for p in self.periods)

    @property
    def amount(self) -> Decimal:
        """What is charged."""
        return self.rounded if self.charged else Decimal(0)


def arrears_interest(
    principal: Decimal,
    due: dt.date,
    paid_on: dt.date,
    rates: RateTable,
    threshold: Decimal,
    rate_kind: str = "standard",
) -> Interest:
    """Interest on arrears `principal` whose (effective) due date was `due`, paid on `paid_on`.

    Days run from the day after the due date up to and including the day of payment; each rate period
    is computed separately as Kz × L × O / 365 and only the sum is rounded (§ 2 of the regulation).
    Interest is not charged when the rounded amount does not exceed `threshold` (art. 54 §1 pkt 5 OP:
    three times the registered-letter surcharge, 8.70 zł): 8 zł is not charged, 9 zł is.
    """
    principal = money(principal)
    if principal < 0:
        raise ValueError("arrears cannot be negative")
    factor = RATE_KINDS[rate_kind]
    periods = []
    first = due + dt.timedelta(days=1)
    if paid_on >= first and principal > 0:
        for start, end, rate in rates.periods(first, paid_on):
            applied = rate * factor
            days = (end - start).days + 1
            periods.append(InterestPeriod(start, end, days, applied, principal * days * applied / 100 / DAYS_IN_YEAR))
    unrounded = sum((p.interest for p in periods), Decimal(0))
    rounded = round_to_zloty(unrounded)
    return Interest(due, paid_on, tuple(periods), unrounded, rounded, rounded > money(threshold))


# -- allocating a payment (art. 62 §1, art. 55 §2 OP) ----------------------------------------------

@dataclass(frozen=True)
class Arrear:
    """One open amount: an installment (or other charge) not paid in full."""

    key: str
    #: the effective due date
    due: dt.date
    principal: Decimal
    #: interest fixed at an earlier partial payment and still unpaid (whole złoty)
    interest_unpaid: Decimal = Decimal(0)
    #: new interest runs from the day after this date (the due date, or the last partial payment)
    interest_from: dt.date | None = None


@dataclass(frozen=True)
class AllocatedPart:
    key: str
    principal: Decimal
    interest: Decimal
    #: the interest the arrear carried on the day of payment (charged amount, whole złoty)
    interest_due: Decimal
    principal_left: Decimal
    interest_left: Decimal


@dataclass(frozen=True)
class Allocation:
    parts: tuple[AllocatedPart, ...]
    #: what no arrear took: nadpłata (art. 72 OP); it is kept and shown, never dropped
    overpayment: Decimal

    @property
    def total(self) -> Decimal:
        return sum((p.principal + p.interest for p in self.parts), Decimal(0)) + self.overpayment


def interest_on_day(arrear: Arrear, paid_on: dt.date, rates: RateTable, threshold: Decimal) -> Decimal:
    """The interest an arrear carries on a day: what was left unpaid plus what grew since (charged part)."""
    start = arrear.interest_from or arrear.due
    grown = arrears_interest(arrear.principal, start, paid_on, rates, threshold)
    total = arrear.interest_unpaid + grown.rounded
    # the threshold concerns the interest on the arrear as a whole
    return total if total > money(threshold) else Decimal(0)


def allocate_payment(
    amount: Decimal,
    paid_on: dt.date,
    arrears: Sequence[Arrear],
    rates: RateTable,
    threshold: Decimal,
    designated: Sequence[str] | None = None,
) -> Allocation:
    """Share a payment among open arrears.

    Art. 62 §1 OP: what the taxpayer designates is paid first; otherwise (and with what remains) the
    arrears with the earliest due date. Art. 55 §2 OP: a payment that does not cover an arrear and its
    interest together is split between them in the proportion of the arrear to the interest on the day
    of payment. The split is kept in grosze, never rounded to złoty, and every grosz is accounted for:
    what is left over is an overpayment.
    """
    remaining = money(amount)
    if remaining <= 0:
        raise ValueError("a payment must be positive")
    if remaining != round_to_grosz(remaining):
        raise ValueError("a payment is a whole number of grosze")
    by_key = {a.key: a for a in arrears}
    chosen = [by_key[k] for k in (designated or []) if k in by_key]
    rest = sorted((a for a in arrears if a.key not in {c.key for c in chosen}), key=lambda a: (a.due, a.key))
    parts = []
    for arrear in [*chosen, *rest]:
        if remaining <= 0:
            break
        interest = interest_on_day(arrear, paid_on, rates, threshold) if paid_on > arrear.due else arrear.interest_unpaid
        owed = arrear.principal + interest
        if owed <= 0:
            continue
        if remaining >= owed:
            principal_part, interest_part = arrear.principal, interest
        else:
            principal_part = round_to_grosz(remaining * arrear.principal / owed)
            interest_part = remaining - principal_part
        remaining -= principal_part + interest_part
        parts.append(
            AllocatedPart(arrear.key, principal_part, interest_part, interest,
                          arrear.principal - principal_part, interest - interest_part)
        )
    return Allocation(tuple(parts), remaining)


# -- przedawnienie: the limitation of a tax liability (art. 70 OP) ---------------------------------

LIMITATION_YEARS = 5  # art. 70 §1 OP
#: art. 70 §4 (przerwanie: an enforcement measure the taxpayer was notified of), art. 70 §2 pkt 1 and
#: §6-§7 (zawieszenie: deferral or instalments granted, criminal proceedings, a complaint to the
#: administrative court, a stay of execution...), art. 70 §8 (zabezpieczenie: a tax mortgage or
#: pledge; such a liability does not expire)
LIMITATION_KINDS = ("przerwanie", "zawieszenie", "zabezpieczenie")


@dataclass(frozen=True)
class LimitationEvent:
    """Something that changes the running of the limitation period of a liability."""

    kind: str
    #: the day it happened: the enforcement measure applied, the first day suspended, the mortgage
    on: dt.date
    #: a suspension's last day (the period runs on from the next day, art. 70 §7); None: not ended yet
    until: dt.date | None = None

    def __post_init__(self) -> None:
        if self.kind not in LIMITATION_KINDS:
            raise ValueError(f"unknown limitation event {self.kind!r}")
        if self.until is not None and (self.kind != "zawieszenie" or self.until < self.on):
            raise ValueError("only a suspension has a last day, not before its first")


def add_years(day: dt.date, years: int) -> dt.date:
    """Art. 12 §2-§3 OP: a term in years ends on the day of the same date; 29 February, in a year
    without it, on the last day of February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _suspended_days(start: dt.date, end: dt.date, suspensions: list[tuple[dt.date, dt.date | None]]) -> dt.date | None:
    """`end` moved by the days of the suspensions that fall within the running period [start, end]
    (art. 70 §6: it does not start, or stops, on the first day; §7: runs on from the day after the
    last). Overlapping suspensions count once. None: a suspension still lasts."""
    merged: list[list] = []
    for first, last in sorted(suspensions, key=lambda s: s[0]):
        if merged and (merged[-1][1] is None or first <= merged[-1][1] + dt.timedelta(days=1)):
            if merged[-1][1] is not None:
                merged[-1][1] = None if last is None else max(merged[-1][1], last)
            continue
        merged.append([first, last])
    for first, last in merged:
        if first > end:
            break  # began after the period had run out: changes nothing
        if last is None:
            return None
        counted_from = max(first, start)
        if last >= counted_from:
            end += dt.timedelta(days=(last - counted_from).days + 1)
    return end


@lru_cache(maxsize=65536)
def limitation_date(due: dt.date, events: tuple[LimitationEvent, ...] = ()) -> dt.date | None:
    """The last day on which a tax liability due on `due` (its effective due date) still exists;
    from the next day it has expired (art. 59 §1 pkt 9 OP). None: it does not expire (yet).

    Art. 70 §1 OP: 5 years from the end of the calendar year in which the payment deadline passed.
    Art. 70 §4: an enforcement measure the taxpayer was notified of interrupts it; it runs anew from
    the next day (5 years by art. 12 §3, so it ends on the measure's date 5 years on). Art. 70 §2
    pkt 1, §6-§7: a suspension adds the days it lasted while the period ran. Art. 70 §8: a liability
    secured by a tax mortgage or pledge does not expire.

    Conservative where the law leaves doubt (ADR 0014): a last day that is not a working day moves
    to the next working day (art. 12 §5 OP; courts mostly hold that it does not apply to limitation,
    but moving it never hides what may still be owed), an interruption never shortens the period
    (one applied in the year of the due date would end it before the end of year + 5), a suspension
    counts every day it overlaps, and a measure applied after the period ran out changes nothing
    (the liability had already expired).
    """
    if any(event.kind == "zabezpieczenie" for event in events):
        return None
    suspensions = [(e.on, e.until) for e in events if e.kind == "zawieszenie"]
    start = dt.date(due.year + 1, 1, 1)
    end = _last_day(_suspended_days(start, dt.date(due.year + LIMITATION_YEARS, 12, 31), suspensions))
    for measure in sorted(e.on for e in events if e.kind == "przerwanie"):
        if end is None:
            return None
        if measure > end:
            break
        anew = _last_day(_suspended_days(measure + dt.timedelta(days=1), add_years(measure, LIMITATION_YEARS), suspensions))
        end = None if anew is None else max(end, anew)
    return end


def _last_day(end: dt.date | None) -> dt.date | None:
    return None if end is None else next_working_day(end)


def is_time_barred(due: dt.date, day: dt.date, events: tuple[LimitationEvent, ...] = ()) -> bool:
    """Has the liability due on `due` expired by `day` (art. 70 OP, see `limitation_date`)?"""
    last = limitation_date(due, events)
    return last is not None and day > last
