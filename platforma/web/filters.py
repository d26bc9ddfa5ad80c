"""Jinja filters: money and dates the Polish way, Markdown without raw HTML."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import get_locale
from markdown_it import MarkdownIt
from markupsafe import Markup

from platforma.payments.rules import format_nrb

WARSAW = ZoneInfo("Europe/Warsaw")
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


CENT = Decimal("0.01")


def money(value: Decimal | None) -> str:
    """1 234,56 zł (Polish) or 1,234.56 zł (English). Formatted by hand rather than through Babel:
    an account page prints hundreds of amounts and this was an eighth of its time."""
    if value is None:
        return ""
    text = f"{(value if isinstance(value, Decimal) else Decimal(value)).quantize(CENT):,.2f}"
    if str(get_locale() or "pl") != "en":
        text = text.replace(",", "\u00a0").replace(".", ",")
    # a no-break space keeps "zł" with its number in narrow table cells
    return text + "\u00a0zł"


def date_pl(value: dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(WARSAW).date()
    return value.strftime("%d.%m.%Y")


def datetime_pl(value: dt.datetime | None) -> str:
    """A UTC timestamp shown in Warsaw time."""
    if value is None:
        return ""
    return value.astimezone(WARSAW).strftime("%d.%m.%Y %H:%M")


def markdown(text: str) -> Markup:
    return Markup(_markdown.render(text or ""))


def today_warsaw() -> dt.date:
    return dt.datetime.now(WARSAW).date()


def nrb(value: str | None) -> str:
    return format_nrb(value) if value else ""


def init_app(app: Flask) -> None:
    app.add_template_filter(nrb)
    app.add_template_filter(money)
    app.add_template_filter(date_pl)
    app.add_template_filter(datetime_pl)
    app.add_template_filter(markdown)
    app.add_template_global(lambda: str(get_locale() or "pl"), "current_locale")
