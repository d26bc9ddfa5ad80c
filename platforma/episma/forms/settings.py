"""The dated settings the forms read: the stamp duty of the certificate and the waste-fee rates.

Registered when platforma.episma.forms is imported (the administrator's page "Stawki i terminy" lists
every registered key). Only the stamp duty is seeded (migration 0009): it is the same in every gmina.
The waste-fee rate and the composting discount are set by each rada gminy and are not assumed.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from platforma.core.settings import MissingSetting, SettingKey, decimal_on, decimal_string, register, row_on

STAMP_DUTY_CERTIFICATE = register(SettingKey(
    key="stamp_duty.tax_clearance_certificate",
    label="Opłata skarbowa za zaświadczenie o niezaleganiu w podatkach (zł)",
    legal_basis="ustawa o opłacie skarbowej, załącznik, część II pkt 21",
    unit="zł",
    validate=decimal_string(places=2),
))
WASTE_RATE = register(SettingKey(
    key="waste.rate_per_person",
    label="Stawka opłaty za gospodarowanie odpadami komunalnymi od mieszkańca (zł miesięcznie)",
    legal_basis="art. 6k ust. 1 pkt 1 ustawy o utrzymaniu czystości i porządku w gminach",
    unit="zł",
    validate=decimal_string(places=2),
))
WASTE_COMPOSTER_DISCOUNT = register(SettingKey(
    key="waste.composter_discount_per_person",
    label="Zwolnienie w części z opłaty za odpady dla kompostujących w kompostowniku przydomowym "
          "(zł od mieszkańca miesięcznie)",
    legal_basis="art. 6k ust. 4a ustawy o utrzymaniu czystości i porządku w gminach",
    unit="zł",
    validate=decimal_string(places=2),
))

#: the seed of migration 0009: the amount has not changed since the act came into force
STAMP_DUTY_SEED = (STAMP_DUTY_CERTIFICATE.key, dt.date(2007, 1, 1), "21.00")


def optional_decimal(session: Session, key: str, day: dt.date) -> Decimal | None:
    """The value in force on `day`, or None when the administrator has not set one."""
    try:
        return decimal_on(session, key, day)
    except MissingSetting:
        return None


def in_force_since(session: Session, key: str, day: dt.date) -> dt.date | None:
    try:
        return row_on(session, key, day).effective_from
    except MissingSetting:
        return None
