"""`platforma payments ...`: individual accounts, QR payloads, bank statements, the reconciliation job."""
from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click


def _print(data: dict) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _runtime():
    from platforma.config import load_settings
    from platforma.core.runtime import Runtime

    return Runtime.from_settings(load_settings())


@click.group(help="Płatności: rachunki indywidualne, kody QR, wyciągi bankowe, uzgadnianie płatności.")
def payments() -> None:
    pass


@payments.command("virtual-account", help="Indywidualny numer rachunku podatnika (NRB) według układu z konfiguracji.")
@click.option("--taxpayer", "taxpayer_id", type=int, help="numer podatnika")
@click.option("--nrb", help="odwrotnie: czyj jest ten numer rachunku")
def virtual_account(taxpayer_id: int | None, nrb: str | None) -> None:
    from platforma.config import load_settings
    from platforma.payments.queries import virtual_layout
    from platforma.payments.rules import format_nrb

    layout = virtual_layout(load_settings())
    if layout is None:
        raise click.ClickException("rachunki indywidualne są wyłączone (payments.virtual_accounts.enabled = false)")
    if (taxpayer_id is None) == (nrb is None):
        raise click.UsageError("podaj --taxpayer albo --nrb")
    if taxpayer_id is not None:
        try:
            account = layout.account_for(taxpayer_id)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _print({"taxpayer": taxpayer_id, "nrb": account, "formatted": format_nrb(account)})
        return
    owner = layout.taxpayer_for(nrb or "")
    if owner is None:
        raise click.ClickException("to nie jest rachunek indywidualny tej gminy (inny zakres albo błędna suma kontrolna)")
    _print({"nrb": nrb, "taxpayer": owner})


@payments.command("qr", help="Treść kodu QR przelewu (rekomendacja ZBP 2D); --png zapisuje obraz.")
@click.option("--nip", default="", help="NIP odbiorcy (puste dla osoby fizycznej)")
@click.option("--account", required=True, help="NRB odbiorcy")
@click.option("--amount", default="", help="kwota w złotych, np. 12.00 (puste: wpisuje płacący)")
@click.option("--name", "recipient", required=True, help="nazwa odbiorcy (do 20 znaków)")
@click.option("--title", required=True, help="tytuł przelewu (do 32 znaków)")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="zapisz kod jako PNG")
def qr(nip: str, account: str, amount: str, recipient: str, title: str, png: Path | None) -> None:
    import segno

    from platforma.payments.rules import QR_MAX_AMOUNT, zbp_qr_payload

    value = None
    if amount.strip():
        try:
            value = Decimal(amount.replace(",", ".").replace(" ", ""))
        except InvalidOperation:
            raise click.BadParameter(f"kwota musi być liczbą, np. 12.00, a podano {amount!r}", param_hint="--amount") from None
        if not value.is_finite() or value <= 0:
            raise click.BadParameter("kwota musi być dodatnia", param_hint="--amount")
    try:
        payload = zbp_qr_payload(nip=nip, account=account, amount=value, recipient=recipient, title=title)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(payload.text)
    if value is not None and value > QR_MAX_AMOUNT:
        click.echo(f"Uwaga: kwota {value} zł przekracza 9999,99 zł, więc kod jej nie zawiera (000000): płacący wpisze ją sam.",
                   err=True)
    if png is not None:
        segno.make(payload.text, error="L", encoding="utf-8").save(str(png), scale=8, border=4)


@payments.command("parse-statement", help="Odczytaj wyciąg (MT940 lub camt.053/054) i wypisz go jako JSON.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def parse_statement(file: Path) -> None:
    from platforma.payments.statements import StatementError, parse_statement_json

    try:
        with file.open("rb") as handle:
            data = parse_statement_json(handle)
    except StatementError as exc:
        raise click.ClickException(f"{file.name}: {exc}") from None
    _print(data)


@payments.command("import-statement", help="Wczytaj wyciąg: dopasuj i zaksięguj wpłaty; reszta czeka na przypisanie.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_statement(file: Path) -> None:
    from platforma.core import audit
    from platforma.core.db import transaction
    from platforma.payments.queries import statement_accounts, virtual_layout
    from platforma.payments.reconciliation import ImportRefused
    from platforma.payments.reconciliation import import_statement as run_import

    runtime = _runtime()
    try:
        with transaction(runtime.session_factory) as session, file.open("rb") as handle:
            result = run_import(session, handle, file_name=file.name, layout=virtual_layout(runtime.settings),
                                accounts=statement_accounts(runtime.settings))
            audit.record(session, "payments.statement_imported", object_type="statement_file", object_id=file.name[:64],
                         details={**result.as_dict(), "via": "cli"})
    except ImportRefused as exc:
        raise click.ClickException(f"wyciąg odrzucony, nic nie zaksięgowano: {exc}") from None
    _print(result.as_dict())


@payments.command("forget-uploads", help="Usuń treść plików wyciągów przesłanych przez urzędników ponad N dni temu "
                  "(wczytanych albo odrzuconych). Wyciągi i ich pozycje zostają; z pliku zostają nazwa, rozmiar i SHA-256.")
@click.option("--older-than-days", "days", type=click.IntRange(min=30), required=True,
              help="ile dni (co najmniej 30) plik ma być przechowywany")
def forget_uploads(days: int) -> None:
    from platforma.core import audit
    from platforma.core.db import transaction, utcnow
    from platforma.payments.reconciliation import forget_uploaded_files

    with transaction(_runtime().session_factory) as session:
        count = forget_uploaded_files(session, uploaded_before=utcnow() - dt.timedelta(days=days))
        audit.record(session, "payments.statement_files_forgotten", object_type="statement_import",
                     details={"files": count, "older_than_days": days, "via": "cli"})
    _print({"forgotten": count, "older_than_days": days})


@payments.command("reconcile", help="Zapytaj bramki o płatności bez potwierdzenia; przeterminowane oznacz jako wygasłe.")
def reconcile() -> None:
    from platforma.payments.flows import reconcile_pending

    _print(reconcile_pending(_runtime()))


@payments.command("report", help="Wpłaty zaksięgowane danego dnia (dla księgowości), CSV na standardowe wyjście.")
@click.option("--day", default=None, help="dzień RRRR-MM-DD (domyślnie dziś)")
def report(day: str | None) -> None:
    from platforma.core.db import transaction
    from platforma.payments.reconciliation import daily_report_rows, report_csv
    from platforma.web.filters import today_warsaw

    try:
        chosen = dt.date.fromisoformat(day) if day else today_warsaw()
    except ValueError:
        raise click.BadParameter(f"data musi mieć postać RRRR-MM-DD, a podano {day!r}", param_hint="--day") from None
    with transaction(_runtime().session_factory) as session:
        rows = daily_report_rows(session, chosen)
    sys.stdout.write(report_csv(rows).lstrip("\ufeff"))
