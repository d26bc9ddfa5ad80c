"""NRB check digits, PESEL, NIP and REGON, and the synthetic people that must pass them."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platforma.demo.people import businesses, nip_for, people, pesel_for, regon_for
from platforma.payments.rules import format_nrb, is_valid_nrb, normalise_nrb, nrb_check_digits
from platforma.taxes.identifiers import validate_nip, validate_pesel, validate_regon


def test_published_polish_iban_example_is_valid():
    # the example account of the ECBS/SWIFT IBAN registry for Poland
    assert is_valid_nrb("PL61 1090 1014 0000 0712 1981 2874")
    assert nrb_check_digits("109010140000071219812874") == "61"


def test_one_wrong_digit_is_caught():
    assert not is_valid_nrb("61109010140000071219812875")
    assert not is_valid_nrb("6110901014000007121981287")  # 25 digits
    assert not is_valid_nrb("61 1090 1014 0000 0712 1981 287X")


@given(st.text(alphabet="0123456789", min_size=24, max_size=24))
def test_check_digits_make_every_bban_valid(bban):
    assert is_valid_nrb(nrb_check_digits(bban) + bban)


@given(st.text(alphabet="0123456789", min_size=24, max_size=24), st.integers(0, 23), st.integers(1, 9))
def test_any_single_digit_change_is_detected(bban, position, delta):
    nrb = nrb_check_digits(bban) + bban
    digits = list(nrb)
    digits[position + 2] = str((int(digits[position + 2]) + delta) % 10)
    assert not is_valid_nrb("".join(digits))


def test_format_and_normalise():
    assert format_nrb("61109010140000071219812874") == "61 1090 1014 0000 0712 1981 2874"
    assert normalise_nrb(" pl61-1090 1014 0000 0712 1981 2874 ") == "61109010140000071219812874"


@pytest.mark.parametrize(
    "func, value, message",
    [
        (validate_pesel, "44051401358", "PESEL ma błędną cyfrę kontrolną"),
        (validate_pesel, "4405140135", "PESEL ma nieprawidłową długość"),
        (validate_pesel, "4405140135a", "PESEL może zawierać tylko cyfry"),
        (validate_nip, "1234563219", "NIP ma błędną cyfrę kontrolną"),
        (validate_regon, "123456786", "REGON ma błędną cyfrę kontrolną"),
    ],
)
def test_messages_are_polish(func, value, message):
    with pytest.raises(ValueError, match=message):
        func(value)


def test_valid_examples():
    assert validate_pesel("44051401359") == "44051401359"
    assert validate_nip("123-456-32-18") == "1234563218"
    assert validate_regon("123456785") == "123456785"


def test_synthetic_people_pass_checksums_and_are_unique():
    crowd = people(20_000, seed=7)
    assert len({p.pesel for p in crowd}) == len(crowd)
    for person in crowd[:2000]:
        assert validate_pesel(person.pesel) == person.pesel
        # the PESEL's 10th digit is even for women
        assert (int(person.pesel[9]) % 2 == 0) == person.female
    firms = businesses(3000, seed=7)
    assert len({b.nip for b in firms}) == len(firms)


def test_pesel_century_encoding():
    import datetime as dt

    assert pesel_for(dt.date(2004, 7, 1), 0, female=False)[2:4] == "27"  # 2000s add 20 to the month
    assert pesel_for(dt.date(1999, 7, 1), 0, female=False)[2:4] == "07"
    assert validate_nip(nip_for(123)) and validate_regon(regon_for(123))
