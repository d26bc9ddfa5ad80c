"""`platforma taxes ...`: the rules at the command line, for clerks' scripts and for checks."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation

import click

from platforma.taxes import rules


def _date(_ctx, param, value):
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"data musi mieć postać RRRR-MM-DD, a podano {value!r}") from None


def _amount(_ctx, param, value):
    try:
        amount = Decimal(value.replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        raise click.BadParameter(f"kwota musi być liczbą, np. 1000.00, a podano {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(rules.GROSZ):
        raise click.BadParameter("kwota musi być nieujemna, z dokładnością do grosza")
    return amount


def _print(data: dict) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _rates_and_threshold(paid_on: dt.date) -> tuple[rules.RateTable, Decimal]:
    from platforma.config import load_settings
    from platforma.core.runtime import Runtime
    from platforma.taxes.settings import interest_threshold, rate_table

    runtime = Runtime.from_settings(load_settings())
    with runtime.session_factory() as session:
        return rate_table(session), interest_threshold(session, paid_on)


@click.group(help="Podatki i opłaty lokalne: odsetki, raty, stan konta.")
def taxes() -> None:
    pass


@taxes.command(help="Odsetki za zwłokę od zaległości (art. 53-56b Ordynacji podatkowej).")
@click.option("--amount", required=True, callback=_amount, help="zaległość, np. 1000.00")
@click.option("--due", required=True, callback=_date, help="termin płatności (RRRR-MM-DD), przed przesunięciem z art. 12 §5")
@click.option("--paid", required=True, callback=_date, help="dzień zapłaty (RRRR-MM-DD)")
@click.option("--rate", "rate_kind", type=click.Choice(list(rules.RATE_KINDS)), default="standard", show_default=True)
def interest(amount: Decimal, due: dt.date, paid: dt.date, rate_kind: str) -> None:
    effective = rules.next_working_day(due)
    try:
        table, threshold = _rates_and_threshold(paid)
        result = rules.arrears_interest(amount, effective, paid, table, threshold, rate_kind)
    except (KeyError, ValueError) as exc:  # no rate or threshold for those days (MissingSetting is a KeyError)
        raise click.ClickException(f"brak stopy odsetek lub progu na te dni: {exc.args[0]}")
    _print({
        "effective_due": effective.isoformat(),
        "days": result.days,
        "periods": [
            {"from": p.start.isoformat(), "to": p.end.isoformat(), "days": p.days,
             "rate": str(p.rate.quantize(rules.GROSZ)), "interest": str(p.interest.quantize(rules.FOUR_PLACES))}
            for p in result.periods
        ],
        "unrounded": str(result.unrounded.quantize(rules.FOUR_PLACES)),
        "interest": str(result.amount),
        "charged": result.charged,
    })


@taxes.command(help="Raty podatku za rok (whole złoty, summing to the tax).")
@click.option("--tax", required=True, type=click.Choice(list(rules.TAX_KINDS)))
@click.option("--payer", required=True, type=click.Choice(list(rules.PAYER_TYPES)))
@click.option("--amount", required=True, callback=_amount, help="podatek w pełnych złotych")
@click.option("--year", required=True, type=click.IntRange(2000, 2100))
@click.option("--delivered", callback=_date, help="dzień doręczenia decyzji (art. 47 §2 OP)")
@click.option("--from", "liable_from", callback=_date, help="początek obowiązku podatkowego w roku")
def schedule(tax: str, payer: str, amount: Decimal, year: int, delivered: dt.date | None, liable_from: dt.date | None) -> None:
    try:
        installments = rules.installment_schedule(tax, payer, amount, year, delivered=delivered, liable_from=liable_from)
    except ValueError as exc:
        raise click.ClickException(str(exc))
    _print({"installments": [{"due": i.due.isoformat(), "amount": str(i.amount)} for i in installments]})


def account_json(state) -> dict:
    """The account as JSON (amounts as strings): the same numbers the pages show."""
    def s(value):
        return str(value)

    return {
        "as_of": state.as_of.isoformat(),
        "liabilities": [
            {
                "id": item.id, "tax": item.tax_kind, "year": item.year, "description": item.description,
                "decision": item.decision_number, "przypis": s(item.przypis), "odpis": s(item.odpis),
                "wplaty": s(item.wplaty), "zaleglosc": s(item.zaleglosc), "odsetki": s(item.odsetki),
                "biezace": s(item.biezace), "do_zaplaty": s(item.do_zaplaty),
                "installments": [
                    {"number": i.number, "due": i.due.isoformat(), "amount": s(i.assessed), "paid": s(i.paid),
                     "left": s(i.left), "interest": s(i.interest), "status": i.status,
                     "expires_after": i.limitation_date.isoformat() if i.limitation_date else None,
                     "przedawnione": s(i.expired_principal), "przedawnione_odsetki": s(i.expired_interest)}
                    for i in item.installments
                ],
                # added after the first version of this JSON (its keys above are unchanged)
                "korekty": s(item.korekty), "przedawnione": s(item.przedawnione),
                "przedawnione_odsetki": s(item.przedawnione_odsetki),
                "przedawnione_on": item.przedawnione_on.isoformat() if item.przedawnione_on else None,
                "archived": item.archived,
            }
            for item in state.liabilities
        ],
        "zaleglosc": s(state.zaleglosc), "odsetki": s(state.odsetki), "koszty": s(state.koszty),
        "nadplata": s(state.nadplata), "do_zaplaty": s(state.do_zaplaty), "przedawnione": s(state.przedawnione),
        "payments": [
            {"ref": p.ref, "paid_on": p.paid_on.isoformat(), "total": s(p.total), "interest": s(p.interest),
             "overpayment": s(p.overpayment), "offset": p.offset}
            for p in state.payments
        ],
    }


@taxes.command(help="Stan konta podatnika na dzień (JSON): te same liczby co na stronach.")
@click.option("--taxpayer", "taxpayer_id", required=True, type=int, help="numer podatnika w systemie")
@click.option("--as-of", "as_of", callback=_date, help="dzień (RRRR-MM-DD); domyślnie dziś")
def balance(taxpayer_id: int, as_of: dt.date | None) -> None:
    from platforma.config import load_settings
    from platforma.core.runtime import Runtime
    from platforma.taxes.models import Taxpayer
    from platforma.taxes.queries import account
    from platforma.web.filters import today_warsaw

    runtime = Runtime.from_settings(load_settings())
    with runtime.session_factory() as session:
        taxpayer = session.get(Taxpayer, taxpayer_id)
        if taxpayer is None:
            raise click.ClickException(f"nie ma podatnika o numerze {taxpayer_id}")
        try:
            state = account(session, taxpayer_id, as_of or today_warsaw())
        except KeyError as exc:
            raise click.ClickException(f"brak stopy odsetek lub progu na ten dzień: {exc.args[0]}")
        data = {"taxpayer": taxpayer_id, "name": taxpayer.display_name, **account_json(state)}
    _print(data)


@taxes.command("offset-overpayments",
               help="Zalicza nadpłaty z urzędu na zaległości z odsetkami i na raty, których termin minął "
                    "(art. 76 § 1 i art. 76a Ordynacji podatkowej); ponowne uruchomienie niczego nie powtarza.")
@click.option("--as-of", "as_of", callback=_date, help="dzień (RRRR-MM-DD); domyślnie dziś")
def offset_overpayments(as_of: dt.date | None) -> None:
    from platforma.config import load_settings
    from platforma.core.db import transaction
    from platforma.core.runtime import Runtime
    from platforma.taxes import operations
    from platforma.web.filters import today_warsaw

    day = as_of or today_warsaw()
    runtime = Runtime.from_settings(load_settings())
    offsets = []
    try:
        with transaction(runtime.session_factory) as session:  # one transaction: all or nothing
            taxpayers = operations.taxpayers_with_overpayment(session, day)
            for taxpayer_id in taxpayers:
                offsets.extend(operations.offset_overpayments(session, taxpayer_id=taxpayer_id, as_of=day))
    except KeyError as exc:
        raise click.ClickException(f"brak stopy odsetek lub progu na ten dzień: {exc.args[0]}")
    _print({"as_of": day.isoformat(), "taxpayers": len(taxpayers), "offsets": len(offsets),
            "amount": str(sum((o.amount for o in offsets), Decimal(0)))})
