"""Load the demo gmina: taxpayers, the three demo accounts and their links. Running it twice changes nothing."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.accounts import operations as account_ops
from platforma.accounts.models import User
from platforma.core.db import utcnow
from platforma.demo.people import businesses, people
from platforma.demo.letters import load_demo_catalogues, load_demo_letter
from platforma.demo.payments import load_demo_payments
from platforma.demo.taxes import load_demo_taxes
from platforma.taxes.models import Taxpayer

SOURCE = "demo"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    full_name: str
    role: str
    #: fixed TOTP secrets so that the demo can be tried with any authenticator app
    totp_secret: str | None


DEMO_ACCOUNTS = (
    DemoAccount("jan.kowalski@example.com", "Mieszkaniec-Demo-2026", "Jan Kowalski", "resident", None),
    DemoAccount("urzednik@example.com", "Urzednik-Demo-2026", "Ewa Urzędnicza", "clerk", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
    DemoAccount("admin@example.com", "Administrator-Demo-2026", "Adam Administrator", "admin", "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"),
)

NATURAL_COUNT = 320
LEGAL_COUNT = 40


def demo_resident_pesel() -> str:
    """The PESEL of the demo resident Jan Kowalski (the first generated person; his names are set below)."""
    return people(1)[0].pesel


def load_demo(session: Session, runtime=None) -> dict[str, int]:
    created = {"taxpayers": 0, "accounts": 0, "links": 0}
    existing = set(session.scalars(sa.select(Taxpayer.source_key).where(Taxpayer.source == SOURCE)))
    for index, person in enumerate(people(NATURAL_COUNT)):
        key = f"P{index + 1:05d}"
        if key in existing:
            continue
        if index == 0:  # the demo resident himself
            person.first_name, person.last_name, person.female = "Jan", "Kowalski", False
            person.street, person.postal_code, person.city = "ul. Główna 12", "62-100", "Przykładowo"
        if index == 1:  # his mother, for whom he acts
            person.first_name, person.last_name, person.female = "Zofia", "Kowalska", True
        session.add(
            Taxpayer(
                kind="natural", first_name=person.first_name, last_name=person.last_name, pesel=person.pesel,
                street=person.street, postal_code=person.postal_code, city=person.city, source=SOURCE, source_key=key,
            )
        )
        created["taxpayers"] += 1
    for index, business in enumerate(businesses(LEGAL_COUNT)):
        key = f"F{index + 1:05d}"
        if key in existing:
            continue
        session.add(
            Taxpayer(
                kind="legal", name=business.name, nip=business.nip, regon=business.regon, street=business.street,
                postal_code=business.postal_code, city=business.city, source=SOURCE, source_key=key,
            )
        )
        created["taxpayers"] += 1
    session.flush()

    for account in DEMO_ACCOUNTS:
        user = account_ops.find_user(session, account.email)
        if user is None:
            user = account_ops.create_user(
                session, email=account.email, full_name=account.full_name, password=account.password,
                role=account.role, confirmed=True,
            )
            if account.totp_secret:
                user.totp_secret = account.totp_secret
                user.totp_confirmed_at = utcnow()
            created["accounts"] += 1

    resident = account_ops.find_user(session, DEMO_ACCOUNTS[0].email)
    clerk = account_ops.find_user(session, DEMO_ACCOUNTS[1].email)
    linked = {a.taxpayer.source_key for a in account_ops.taxpayers_of(session, resident)}
    wanted = [("P00001", "self", "tożsamość sprawdzona w urzędzie (dane demonstracyjne)"),
              ("P00002", "representative", "pełnomocnictwo ogólne (dane demonstracyjne)"),
              ("F00001", "representative", "pełnomocnictwo z KRS (dane demonstracyjne)")]
    for key, relation, note in wanted:
        if key in linked:
            continue
        taxpayer = session.scalars(sa.select(Taxpayer).where(Taxpayer.source == SOURCE, Taxpayer.source_key == key)).one()
        account_ops.link_taxpayer(session, user=resident, taxpayer=taxpayer, relation=relation, granted_by=clerk, note=note)
        created["links"] += 1
    created.update(load_demo_taxes(session))
    created.update(load_demo_payments(session))
    created["letters"] = load_demo_catalogues(session)
    if runtime is not None:
        created["letters"] += load_demo_letter(session, runtime, DEMO_ACCOUNTS[0].email, DEMO_ACCOUNTS[1].email)
    return created


def demo_users(session: Session) -> list[tuple[DemoAccount, User | None]]:
    return [(account, account_ops.find_user(session, account.email)) for account in DEMO_ACCOUNTS]
