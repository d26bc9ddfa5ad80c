"""Accessible PDFs (tagged, PDF/UA-1) in Polish, rendered from Jinja templates with WeasyPrint."""
from __future__ import annotations

from flask import Response, render_template


def render_pdf(template: str, filename: str, **context) -> Response:
    from weasyprint import HTML  # imported here: only PDF pages need it

    html = render_template(template, **context)
    pdf = HTML(string=html).write_pdf(pdf_variant="pdf/ua-1")
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
