"""The korekty column (postings of kind korekta, each naming what it corrects) on both databases: the
resident's account page, the clerk's view of it, the PDF statement and `platforma taxes balance`
(an added key: the keys it had keep their names and values) show the same sums."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import sqlalchemy as sa

from platforma.accounts import operations as account_ops
from platforma.core.db import transaction
from platforma.taxes import operations as ops
from platforma.taxes.cli import account_json
from platforma.taxes.models import Posting
from platforma.taxes.queries import account
from platforma.web.filters import today_warsaw
from tests.integration.test_tax_documents import read_pdf

D = dt.date
#: the keys of a liability in `taxes balance` before the korekty column (issue 3's first version)
FIRST_KEYS = {"id", "tax", "year", "description", "decision", "przypis", "odpis", "wplaty", "zaleglosc", "odsetki",
              "biezace", "do_zaplaty", "installments"}


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html).replace("\xa0", " "))


def zl(value) -> str:
    sign = "-" if Decimal(value) < 0 else ""
    return sign + f"{abs(Decimal(value)):,.2f}".replace(",", " ").replace(".", ",") + " zł"


def test_the_korekty_column_everywhere(runtime, logged_in, create_user, create_taxpayer):
    resident, clerk, person = create_user(), create_user("clerk"), create_taxpayer()
    with transaction(runtime.session_factory) as session:
        liability = ops.assess_liability(
            session, tax_kind="nieruchomosci", payer_type="natural", year=2025, amount=Decimal(1000),
            parties=[(person.id, "principal")], installments=[(D(2025, 3, 15), Decimal(600)), (D(2025, 9, 15), Decimal(400))],
            booked_on=D(2025, 2, 14), source="local", source_key="L", description="Podatek 2025")
        przypis = session.scalars(sa.select(Posting).where(Posting.installment_id == liability.installments[1].id,
                                                           Posting.kind == "przypis")).one()
        for key, amount, day in (("K1", "-200.00", D(2025, 4, 1)), ("K2", "50.00", D(2025, 4, 2))):
            session.add(Posting(taxpayer_id=person.id, liability_id=liability.id, installment_id=przypis.installment_id,
                                kind="korekta", amount=Decimal(amount), corrects_id=przypis.id, booked_on=day, value_date=day,
                                origin="import", source="dziedzinowy", source_key=key))
        account_ops.link_taxpayer(session, user=session.merge(resident), taxpayer=session.merge(person), relation="self",
                                  granted_by=None)
    with runtime.session_factory() as session:
        state = account(session, person.id, today_warsaw())
    [item] = state.liabilities
    assert item.korekty == Decimal("-150.00")
    assert item.installments[1].assessed == Decimal("250.00")  # the korekty count in what the installment asks for

    data = account_json(state)
    [entry] = data["liabilities"]
    assert FIRST_KEYS <= set(entry) and entry["korekty"] == "-150.00"
    assert (entry["przypis"], entry["odpis"], entry["zaleglosc"]) == ("1000.00", "0", str(item.zaleglosc))

    for user in (resident, clerk):
        client = logged_in(user)
        html = client.get(f"/podatki/{person.id}/").get_data(as_text=True)
        assert ("jako pracownik urzędu" in html) == (user is clerk)
        header = text_of(re.search(r"<thead.*?</thead>", html, re.S).group(0))
        assert header.split() == ["Zobowiązanie", "Przypis", "Odpis", "Korekty", "Wpłaty", "Zaległość", "Odsetki", "na",
                                  "dziś", "Do", "zapłaty"]
        cells = re.findall(r'<td class="govuk-table__cell govuk-table__cell--numeric">(.*?)</td>',
                           re.search(rf'data-liability="{item.id}">(.*?)</tr>', html, re.S).group(1), re.S)
        assert [text_of(c).strip() for c in cells][:3] == [zl(1000), zl(0), zl(-150)]
        client.post("/konto/wyloguj", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)})

    client = logged_in(resident)
    pdf_text, _catalogue = read_pdf(client.get(f"/podatki/{person.id}/wyciag.pdf").data)
    assert "Korekty" in pdf_text and "-150,00" in pdf_text
