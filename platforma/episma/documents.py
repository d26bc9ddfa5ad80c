"""PDF renderings of the office's documents about letters: the receipt (UPO) and a reply.

The receipt's original is its sealed XML; the PDF shows what it states and who sealed it, checked by
verifying the seal when the PDF is made.
"""
from __future__ import annotations

import datetime as dt

from flask import render_template

from platforma.episma.models import Letter
from platforma.episma.rules import read_receipt


def _pdf(template: str, **context) -> bytes:
    from platforma.web.pdf import html_to_pdf

    return html_to_pdf(render_template(template, **context))


def receipt_pdf(letter: Letter, sealed: bytes, settings) -> bytes:
    from platforma.esign.seal import configured_trust_anchors
    from platforma.esign.verify import verify_document

    report = verify_document(sealed, trust_anchors=configured_trust_anchors(settings))
    return _pdf("episma/receipt_pdf.html", letter=letter, receipt=read_receipt(sealed), seal=report,
                gmina=settings.gmina)


def reply_pdf(letter: Letter, *, title: str, body: str, clerk_name: str, sent_at: dt.datetime, settings) -> bytes:
    return _pdf("episma/reply_pdf.html", letter=letter, title=title, body=body, clerk_name=clerk_name, sent_at=sent_at,
                gmina=settings.gmina)
