"""Accessible PDFs (tagged, PDF/UA-1) in Polish, rendered from Jinja templates with WeasyPrint."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Response, render_template


def html_to_pdf(html: str, attachments: Sequence[Any] = ()) -> bytes:
    """The document as a tagged PDF. Nothing is fetched: a document shows what a resident or clerk wrote,
    and nothing in it may make the server open a file or a network address (a stylesheet, an image, a
    font); the templates carry their styles inline."""
    from weasyprint import HTML, URLFetcher  # imported here: only PDF pages need it

    return HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=())).write_pdf(
        pdf_variant="pdf/ua-1", attachments=list(attachments) or None)


def render_pdf(template: str, filename: str, **context) -> Response:
    pdf = html_to_pdf(render_template(template, **context))
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
