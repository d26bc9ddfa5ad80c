"""The demo's payments: one imported bank statement, so that the clerks' pages show matched credits and
a few waiting in the unmatched queue. Importing it again changes nothing (the statement is known)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.demo.statement import camt053
from platforma.instance import DEMO_VALUES
from platforma.payments.reconciliation import import_statement
from platforma.payments.rules import VirtualAccountLayout
from platforma.taxes.models import Decision, Liability, LiabilityParty, Taxpayer

#: the layout `platforma init --demo` writes into gmina.toml
LAYOUT = VirtualAccountLayout(DEMO_VALUES["va_sort_code"], DEMO_VALUES["va_fixed"])


def load_demo_payments(session: Session) -> dict[str, int]:
    keys = ["P00003", "P00004", "P00005", "P00006"]
    found = dict(session.execute(sa.select(Taxpayer.source_key, Taxpayer.id).where(
        Taxpayer.source == "demo", Taxpayer.source_key.in_(keys))).all())
    if len(found) < len(keys):
        return {"statement_entries": 0}
    pesel = session.scalar(sa.select(Taxpayer.pesel).where(Taxpayer.id == found["P00006"]))
    # a decision naming one payer, of someone not credited above
    decision = session.scalar(
        sa.select(Decision.number).join(Liability, Liability.decision_id == Decision.id)
        .join(LiabilityParty, LiabilityParty.liability_id == Liability.id)
        .where(LiabilityParty.role == "principal", LiabilityParty.taxpayer_id.not_in(found.values()))
        .group_by(Decision.id, Decision.number).having(sa.func.count(sa.distinct(LiabilityParty.taxpayer_id)) == 1)
        .order_by(Decision.id).limit(1))
    lines = [
        ("250.00", True, "podatek od nieruchomości rata", LAYOUT.account_for(found["P00003"]), "ANNA NOWAK"),
        ("120.00", True, "opłata za odpady", LAYOUT.account_for(found["P00004"]), "PIOTR WIŚNIEWSKI"),
        ("88.00", True, "podatek rolny", LAYOUT.account_for(found["P00005"]), "KATARZYNA WÓJCIK"),
        ("140.00", True, f"podatek PESEL {pesel}", "", "TOMASZ KAMIŃSKI"),
        ("75.50", True, "za śmieci Kowalska ul. Polna", "", "MARIA KOWALSKA"),
        ("300.00", True, "darowizna na OSP", "", "JÓZEF LEWANDOWSKI"),
        ("12.30", False, "opłata za prowadzenie rachunku", "", "BANK"),
    ]
    if decision:
        lines.insert(4, ("210.00", True, f"{decision} rata", "", "ZBIGNIEW ZIELIŃSKI"))
    data = camt053(lines, account=DEMO_VALUES["nrb"], opening="25000.00", statement_id="DEMO-WYCIAG-1")
    result = import_statement(session, data, file_name="demo-wyciag.xml", layout=LAYOUT)
    return {"statement_entries": result.entries}
