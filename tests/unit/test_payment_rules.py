"""Individual account numbers and the ZBP 2D payload: pure rules, tested exhaustively."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platforma.payments.rules import (
    VirtualAccountLayout,
    format_nrb,
    is_valid_nrb,
    luhn_digit,
    nrb_check_digits,
    zbp_qr_payload,
)

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "zbp_qr" / "zbp_2d_qr_vectors.json").read_text())
LAYOUT = VirtualAccountLayout("90900004", "2001")


def test_check_digits_follow_iso_13616():
    # 92 1240 1234 0001 5678 9012 3456 is the ZBP recommendation's own example account
    assert nrb_check_digits("124012340001567890123456") == "92"
    assert is_valid_nrb("PL92 1240 1234 0001 5678 9012 3456")
    assert not is_valid_nrb("93124012340001567890123456")


@given(st.integers(min_value=1, max_value=LAYOUT.max_taxpayer_id))
def test_every_taxpayer_gets_a_valid_account_that_leads_back_to_them(taxpayer_id):
    account = LAYOUT.account_for(taxpayer_id)
    assert len(account) == 26 and is_valid_nrb(account)
    assert account[2:14] == "909000042001"
    assert LAYOUT.taxpayer_for(account) == taxpayer_id
    assert LAYOUT.taxpayer_for(format_nrb(account)) == taxpayer_id


def test_accounts_outside_the_range_or_mistyped_are_nobodys():
    account = LAYOUT.account_for(1234)
    assert account == nrb_check_digits("909000042001000000001234") + "909000042001000000001234"
    other_bank = nrb_check_digits("124012342001000000001234") + "124012342001000000001234"
    assert LAYOUT.taxpayer_for(other_bank) is None
    mistyped = account[:-1] + ("5" if account[-1] != "5" else "6")
    assert LAYOUT.taxpayer_for(mistyped) is None  # the NRB check digits catch it
    assert LAYOUT.taxpayer_for("not a number") is None
    zero = nrb_check_digits("909000042001000000000000") + "909000042001000000000000"
    assert LAYOUT.taxpayer_for(zero) is None


def test_a_payer_check_digit_catches_transposed_digits_the_nrb_check_misses():
    layout = VirtualAccountLayout("90900004", "2001", payer_check_digit=True)
    account = layout.account_for(1234)
    assert account[-5:] == "1234" + luhn_digit("00000001234")
    assert layout.taxpayer_for(account) == 1234
    # swap two payer digits and recompute the NRB check digits: only the Luhn digit notices
    bban = account[2:]
    swapped = bban[:-3] + bban[-2] + bban[-3] + bban[-1]
    assert layout.taxpayer_for(nrb_check_digits(swapped) + swapped) is None


@pytest.mark.parametrize("sort_code, fixed, message", [
    ("1234567", "", "8 cyfr"), ("12345678", "1234567890123", "0 do 12"),
])
def test_bad_layouts_are_refused_in_polish(sort_code, fixed, message):
    with pytest.raises(ValueError, match=message):
        VirtualAccountLayout(sort_code, fixed)


def test_taxpayer_ids_beyond_the_payer_part_are_refused():
    with pytest.raises(ValueError, match="nie mieści się"):
        LAYOUT.account_for(LAYOUT.max_taxpayer_id + 1)
    with pytest.raises(ValueError):
        LAYOUT.account_for(0)


@pytest.mark.parametrize("vector", [v for v in VECTORS["vectors"] if "direct_debit_id" not in v["input"]],
                         ids=lambda v: v["label"][:40])
def test_zbp_payload_matches_the_recommendations_examples(vector):
    given_ = vector["input"]
    amount = Decimal(given_["amount_grosze"]) / 100 if given_["amount_grosze"] else None
    payload = zbp_qr_payload(nip=given_["nip"], account=given_["account"], amount=amount, recipient=given_["recipient"],
                             title=given_["title"])
    assert payload.text == vector["expected"]
    assert payload.carries_amount is (amount is not None)


def test_above_9999_99_the_code_carries_no_amount():
    account = "92124012340001567890123456"
    assert zbp_qr_payload(nip="1234567890", account=account, amount=Decimal("9999.99"), recipient="Gmina",
                          title="x").text.split("|")[3] == "999999"
    big = zbp_qr_payload(nip="1234567890", account=account, amount=Decimal("10000.00"), recipient="Gmina", title="x")
    assert big.text.split("|")[3] == "000000" and not big.carries_amount


def test_fields_are_cut_to_their_length_in_characters_and_never_break_the_separator():
    payload = zbp_qr_payload(nip=None, account="92124012340001567890123456", amount=Decimal("1.00"),
                             recipient="Urząd Gminy Przykładowo Wielkie", title="Tytuł | płatności 01234567890123456789")
    fields = payload.text.split("|")
    assert len(fields) == 9
    assert fields[4] == "Urząd Gminy Przykład" and len(fields[4]) == 20
    assert fields[5] == "Tytuł płatności 0123456789012345" and len(fields[5]) == 32


@pytest.mark.parametrize("kwargs, message", [
    ({"account": "92124012340001567890123457"}, "NRB"),
    ({"nip": "12345"}, "NIP"),
    ({"amount": Decimal("1.005")}, "dwa miejsca"),
])
def test_bad_qr_input_is_refused_in_polish(kwargs, message):
    values = {"nip": "1234567890", "account": "92124012340001567890123456", "amount": Decimal("1.00"),
              "recipient": "Gmina", "title": "x", **kwargs}
    with pytest.raises(ValueError, match=message):
        zbp_qr_payload(**values)


def test_qr_command_prints_the_payload_first_and_writes_the_image(tmp_path):
    from click.testing import CliRunner

    from platforma.cli import cli

    image = tmp_path / "kod.png"
    result = CliRunner().invoke(cli, ["payments", "qr", "--nip", "1234567890", "--account", "92124012340001567890123456",
                                      "--amount", "12.00", "--name", "Odbiorca 1", "--title", "FV 1234/34/2012",
                                      "--png", str(image)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "1234567890|PL|92124012340001567890123456|001200|Odbiorca 1|FV 1234/34/2012|||"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    big = CliRunner().invoke(cli, ["payments", "qr", "--account", "92124012340001567890123456", "--amount", "12000",
                                   "--name", "Gmina", "--title", "podatek"])
    assert big.exit_code == 0 and big.output.splitlines()[0].split("|")[3] == "000000"
    assert "przekracza 9999,99 zł" in big.output
    bad = CliRunner().invoke(cli, ["payments", "qr", "--account", "123", "--name", "G", "--title", "t"])
    assert bad.exit_code != 0 and "NRB" in bad.output and "Traceback" not in bad.output
