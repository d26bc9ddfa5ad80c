"""Dated settings: law-driven values with the day from which each applies (DESIGN.md, rule 7).

Rates, thresholds, costs and schedules change by law or by resolution; a computation for a past
day must use the value of that day. Every value is a row (key, effective_from); the value on a day
is the row with the latest effective_from not after it. `set_value` only adds rows: a mistake is put
right by a row with a later date, so a computation for a past day can always be repeated.

Values are JSON: a decimal is kept as a string ("14.50"), never as a JSON number (a float).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from platforma.core.db import Base, UTCDateTime, clear_caches, utcnow


class JSONText(TypeDecorator):
    """A JSON value in a TEXT column, written the same way on every database (sorted keys, UTF-8).

    Floats are refused anywhere in the value: amounts and rates travel as decimal strings.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        _refuse_floats(value)
        return json.dumps(value, sort_keys=True, ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("float given for a setting value: use a decimal string such as \"14.50\"")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_floats(item)


class DatedSetting(Base):
    """One value of a setting, in force from `effective_from` until the next row of the same key."""

    __tablename__ = "dated_setting"
    __table_args__ = (
        sa.CheckConstraint("key <> ''", name="key"),
        sa.UniqueConstraint("key", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: a key of KNOWN, e.g. "interest.standard_rate"
    key: Mapped[str] = mapped_column(sa.String(64))
    #: the first day the value applies
    effective_from: Mapped[dt.date]
    #: the value as JSON: a decimal string ("14.50") or an object (a schedule)
    value: Mapped[Any] = mapped_column(JSONText)
    #: where the value comes from (an act, a resolution) or why it was added
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the administrator who added it; null for values seeded by a migration
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))


# -- the registry of known settings --------------------------------------------------------------

@dataclass(frozen=True)
class SettingKey:
    """A setting the platform knows: its Polish label, legal basis and validator.

    `validate` returns the value to store (normalised) or raises ValueError with a Polish message.
    """

    key: str
    label: str
    legal_basis: str
    unit: str
    validate: Callable[[Any], Any]


KNOWN: dict[str, SettingKey] = {}


def register(setting: SettingKey) -> SettingKey:
    if setting.key in KNOWN:
        raise ValueError(f"setting {setting.key} is already registered")
    KNOWN[setting.key] = setting
    return setting


def known(key: str) -> SettingKey:
    try:
        return KNOWN[key]
    except KeyError:
        raise MissingSetting(f"nieznane ustawienie: {key}") from None


class MissingSetting(KeyError):
    """No value of a setting applies on the day asked (or the key is unknown)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_DECIMAL = re.compile(r"^\d+(?:[.,]\d+)?$")


def decimal_string(*, places: int = 2, minimum: Decimal = Decimal(0), maximum: Decimal | None = None,
                   above_minimum: bool = False) -> Callable[[Any], str]:
    """A validator for a non-negative decimal kept as a string with exactly `places` places."""

    quantum = Decimal(1).scaleb(-places)

    def validate(value: Any) -> str:
        if isinstance(value, (float, bool)):
            raise ValueError("podaj liczbę dziesiętną jako tekst, np. \"14.50\"")
        if isinstance(value, (int, Decimal)):
            text = str(value)
        elif isinstance(value, str):
            text = value.strip()
        else:
            raise ValueError("podaj liczbę dziesiętną, np. \"14.50\"")
        if not _DECIMAL.match(text):
            raise ValueError(f"„{value}” nie jest liczbą nieujemną (np. 14.50)")
        try:
            number = Decimal(text.replace(",", "."))
        except InvalidOperation:
            raise ValueError(f"„{value}” nie jest liczbą") from None
        if number != number.quantize(quantum):
            raise ValueError(f"„{value}” ma więcej niż {places} miejsca po przecinku")
        if number < minimum or (above_minimum and number == minimum):
            raise ValueError(f"wartość musi być {'większa niż' if above_minimum else 'co najmniej'} {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"wartość nie może przekraczać {maximum}")
        return str(number.quantize(quantum))

    return validate


WASTE_FREQUENCIES = ("monthly", "quarterly", "semiannual", "annual", "custom")
_MONTH_DAY = re.compile(r"^(\d\d)-(\d\d)$")


def waste_schedule(value: Any) -> dict[str, Any]:
    """The payment schedule of the waste fee set by the rada gminy (art. 6l ust. 1 ucpg).

    Either a regular schedule, where each period is a month, quarter, half-year or year:
        {"frequency": "monthly" | "quarterly" | "semiannual" | "annual", "day": 1..31, "in_advance": bool}
    in_advance true: due on `day` of the period's first month ("z góry"; for monthly: the same month);
    false: due on `day` of the month after the period ("z dołu"). A day past the month's end means
    its last day (31 = "do końca miesiąca").
    Or fixed dates in the year, each for an equal part of the year's fee:
        {"frequency": "custom", "due_dates": ["03-15", "05-15", "09-15", "11-15"]}
    """
    if not isinstance(value, dict):
        raise ValueError("harmonogram musi być obiektem, np. {\"frequency\": \"monthly\", \"day\": 15, \"in_advance\": true}")
    frequency = value.get("frequency")
    if frequency not in WASTE_FREQUENCIES:
        raise ValueError(f"częstotliwość musi być jedną z: {', '.join(WASTE_FREQUENCIES)}")
    if frequency == "custom":
        allowed = {"frequency", "due_dates"}
        dates = value.get("due_dates")
        if not isinstance(dates, list) or not dates or len(dates) > 12:
            raise ValueError("podaj od 1 do 12 terminów w roku (due_dates), np. [\"03-15\", \"09-15\"]")
        for item in dates:
            match = _MONTH_DAY.match(item) if isinstance(item, str) else None
            try:
                if not match:
                    raise ValueError
                dt.date(2001, int(match.group(1)), int(match.group(2)))  # 29 Feb is not a yearly date
            except ValueError:
                raise ValueError(f"termin „{item}” nie jest datą w postaci MM-DD (np. 03-15)") from None
        if dates != sorted(set(dates)):
            raise ValueError("terminy muszą być różne i uporządkowane od najwcześniejszego")
        normalised: dict[str, Any] = {"frequency": "custom", "due_dates": list(dates)}
    else:
        allowed = {"frequency", "day", "in_advance"}
        day, in_advance = value.get("day"), value.get("in_advance")
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
            raise ValueError("dzień płatności (day) musi być liczbą od 1 do 31")
        if not isinstance(in_advance, bool):
            raise ValueError("podaj, czy opłata jest płatna z góry (in_advance: true) czy z dołu (false)")
        normalised = {"frequency": frequency, "day": day, "in_advance": in_advance}
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"nieznane pola harmonogramu: {', '.join(sorted(unknown))}")
    return normalised


INTEREST_STANDARD_RATE = register(SettingKey(
    key="interest.standard_rate",
    label="Stawka podstawowa odsetek za zwłokę (% w skali roku)",
    legal_basis="art. 56 § 1 Ordynacji podatkowej",
    unit="%",
    # the reduced (50%) and increased (150%) rates of art. 56a and 56b derive from it: not stored
    validate=decimal_string(places=2, minimum=Decimal(0), maximum=Decimal(100), above_minimum=True),
))
INTEREST_THRESHOLD = register(SettingKey(
    key="interest.threshold",
    label="Kwota odsetek, których się nie pobiera (zł)",
    legal_basis="art. 54 § 1 pkt 5 Ordynacji podatkowej",
    unit="zł",
    validate=decimal_string(places=2),
))
REMINDER_COST = register(SettingKey(
    key="reminder.cost",
    label="Koszty upomnienia (zł)",
    legal_basis="art. 15 § 1 i 4 ustawy o postępowaniu egzekucyjnym w administracji",
    unit="zł",
    validate=decimal_string(places=2),
))
WASTE_SCHEDULE = register(SettingKey(
    key="waste.schedule",
    label="Terminy płatności opłaty za gospodarowanie odpadami komunalnymi",
    legal_basis="art. 6l ust. 1 ustawy o utrzymaniu czystości i porządku w gminach",
    unit="",
    validate=waste_schedule,
))


# -- reading and adding values -------------------------------------------------------------------

def _check_day(day: Any, what: str) -> None:
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise TypeError(f"{what} must be a date, not {type(day).__name__}")


def row_on(session: Session, key: str, day: dt.date) -> DatedSetting:
    """The row in force on `day`; MissingSetting (a KeyError) when none is."""
    setting = known(key)
    _check_day(day, "day")
    row = session.scalars(
        sa.select(DatedSetting)
        .where(DatedSetting.key == key, DatedSetting.effective_from <= day)
        .order_by(DatedSetting.effective_from.desc())
        .limit(1)
    ).first()
    if row is None:
        raise MissingSetting(
            f"brak wartości ustawienia „{setting.label}” ({key}) obowiązującej {day:%d.%m.%Y}: "
            f"administrator musi ją dodać z datą obowiązywania nie późniejszą niż ten dzień"
        )
    return row


def value_on(session: Session, key: str, day: dt.date) -> Any:
    """The value of `key` in force on `day` (a decimal string or an object)."""
    return row_on(session, key, day).value


def decimal_on(session: Session, key: str, day: dt.date) -> Decimal:
    """`value_on` for the settings that hold a decimal string."""
    return Decimal(value_on(session, key, day))


def history(session: Session, key: str) -> list[DatedSetting]:
    """Every value of `key`, oldest first."""
    known(key)
    return list(session.scalars(
        sa.select(DatedSetting).where(DatedSetting.key == key).order_by(DatedSetting.effective_from)
    ))


def set_value(session: Session, key: str, effective_from: dt.date, value: Any, *,
              author_id: int | None, note: str = "") -> DatedSetting:
    """Add a value of `key` from `effective_from`. Never changes an existing row: a value already
    set from that day is refused; put a mistake right with a row from a later day."""
    setting = known(key)
    _check_day(effective_from, "effective_from")
    normalised = setting.validate(value)
    exists = session.scalar(
        sa.select(sa.func.count()).select_from(DatedSetting)
        .where(DatedSetting.key == key, DatedSetting.effective_from == effective_from)
    )
    if exists:
        raise ValueError(
            f"{setting.label}: wartość od tego dnia już istnieje ({effective_from:%d.%m.%Y}); "
            f"aby ją poprawić, dodaj wartość od późniejszego dnia"
        )
    row = DatedSetting(key=key, effective_from=effective_from, value=normalised, note=note[:500],
                       created_by_id=author_id)
    session.add(row)
    clear_caches(session)  # what was read before this value no longer holds
    session.flush()
    return row
