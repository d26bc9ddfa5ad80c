"""Vocabularies several forms share (the same msgids as the taxes pages)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

#: platforma.taxes.models.TAX_KINDS with their names
TAX_KINDS = (
    ("nieruchomosci", _l("Podatek od nieruchomości")),
    ("rolny", _l("Podatek rolny")),
    ("lesny", _l("Podatek leśny")),
    ("laczne", _l("Łączne zobowiązanie pieniężne")),
    ("srodki_transportowe", _l("Podatek od środków transportowych")),
    ("odpady", _l("Opłata za gospodarowanie odpadami komunalnymi")),
)
NOT_CHOSEN = ("", _l("— nie wskazuję —"))
YES_NO = (("tak", _l("Tak")), ("nie", _l("Nie")))
