"""The demo's letters: the registry office's departments and file plan, the waste-fee rates the DO form
uses, and one general letter of the demo resident, signed by the demo signer, filed and answered, so that
"Moje pisma" and "Kancelaria" show a whole case. Loading again changes nothing."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from platforma.accounts.models import User
from platforma.core import settings as dated
from platforma.core.runtime import Runtime
from platforma.episma.models import Department, FileCode, Letter

#: examples only: each office keeps its own list (the administrator's page "Wydziały i wykaz akt")
DEPARTMENTS = (("FN", "Referat Finansowy"), ("OR", "Referat Organizacyjny"), ("GK", "Referat Gospodarki Komunalnej"))
FILE_CODES = (("3120", "Wymiar podatków i opłat (przykład)"), ("3121", "Zaświadczenia w sprawach podatkowych (przykład)"),
              ("7031", "Opłata za gospodarowanie odpadami komunalnymi (przykład)"),
              ("0152", "Skargi i wnioski (przykład)"))
#: demonstration waste-fee rates (each rada gminy passes its own): zł per person a month
WASTE_RATES = ((dt.date(2024, 1, 1), "32.00", "2.00"), (dt.date(2026, 1, 1), "36.00", "3.00"))


def load_demo_catalogues(session: Session) -> int:
    created = 0
    known = set(session.scalars(sa.select(Department.code)))
    for code, name in DEPARTMENTS:
        if code not in known:
            session.add(Department(code=code, name=name))
            created += 1
    known = set(session.scalars(sa.select(FileCode.code)))
    for code, title in FILE_CODES:
        if code not in known:
            session.add(FileCode(code=code, title=title))
            created += 1
    import platforma.episma.forms  # noqa: F401  (registers the waste-fee settings)

    for day, rate, discount in WASTE_RATES:
        for key, value in (("waste.rate_per_person", rate), ("waste.composter_discount_per_person", discount)):
            if not any(row.effective_from == day for row in dated.history(session, key)):
                dated.set_value(session, key, day, value, author_id=None, note="stawka demonstracyjna (uchwała rady gminy)")
                created += 1
    session.flush()
    return created


def load_demo_letter(session: Session, runtime: Runtime, resident_email: str, clerk_email: str) -> int:
    """One letter of the demo resident, filed and answered; 0 when it exists or the instance has no demo signer."""
    from platforma.demo.signing import SIGNER_KEY_FILE, sign_demo
    from platforma.episma import operations as ops

    directory = Path(runtime.settings.instance_dir)
    if not (directory / SIGNER_KEY_FILE).exists():
        return 0
    resident = session.scalars(sa.select(User).where(User.email == resident_email)).one()
    if session.scalar(sa.select(sa.func.count(Letter.id)).where(Letter.author_id == resident.id)):
        return 0
    clerk = session.scalars(sa.select(User).where(User.email == clerk_email)).one()
    letter = ops.create_draft(session, form_code="pismo_ogolne", form_version="1",
                              title="Pismo ogólne do urzędu: Prośba o kopię decyzji podatkowej", author=resident,
                              taxpayer_id=None, data={"subject": "Prośba o kopię decyzji podatkowej",
                                                      "body": "Proszę o przesłanie kopii decyzji w sprawie podatku od "
                                                              "nieruchomości na 2026 rok."})
    document = sign_demo(ops.document_to_sign(session, runtime.settings, letter, resident), directory)
    verified = ops.verify_upload(runtime, letter, document)
    ops.file_letter(session, runtime, letter, document, "prosba-o-kopie.xml", verified, actor=resident)
    ops.issue_receipt(session, runtime, letter.id)
    department = session.scalars(sa.select(Department).where(Department.code == "FN")).one()
    ops.assign(session, letter, actor=clerk, department_id=department.id, assignee_id=clerk.id, file_code="3120",
               case_reference=f"FN.3120.1.{letter.register_year}")
    ops.send_reply(session, runtime, letter, actor=clerk, title="Kopia decyzji",
                   body="Dzień dobry,\n\nw załączeniu przesyłamy kopię decyzji. Oryginał jest w aktach sprawy.",
                   files=[])
    return 1
