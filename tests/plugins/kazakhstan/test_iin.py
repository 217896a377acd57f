"""IIN validation: the format, the birth date and the control digit.

Every literal below was worked out by hand from the IIN algorithm: the control digit is
``sum(d[i] * w[i]) mod 11`` with weights 1..11; when that is 10, weights 3..11, 1, 2; when that is
10 as well, no control digit makes the IIN valid.
"""

from __future__ import annotations

import pytest

from plugins.kazakhstan.iin import control_digit, iin_problem, synthetic_iin

VALID_IINS = [
    # body 90010130012, first pass 9+0+0+4+0+6+21+0+0+10+22 = 72; 72 mod 11 = 6.
    "900101300126",
    # body 85071540123, first pass 8+10+0+28+5+30+28+0+9+20+33 = 171; 171 mod 11 = 6.
    "850715401236",
    # body 01010150000 (born 2001, seventh digit 5), first pass 0+2+0+4+0+6+35 = 47; 47 mod 11 = 3.
    "010101500003",
    # body 00022950077 (29 February 2000), first pass 0+0+0+8+10+54+35+0+0+70+77 = 254;
    # 254 mod 11 = 1.
    "000229500771",
    # body 88031530051: first pass 8+16+0+12+5+30+21+0+0+50+11 = 153, 153 mod 11 = 10;
    # second pass 24+32+0+18+7+40+27+0+0+5+2 = 155, 155 mod 11 = 1.
    "880315300511",
]
# A body whose first pass gives 6, so 3 is not its control digit.
WRONG_CONTROL_DIGIT = "900101300123"
# Body 88031530051 again: its first pass gives 10, so 0 (10 mod 10) is not the control digit.
FIRST_PASS_TEN_WRONG_DIGIT = "880315300510"
# Body 88031530050: first pass 8+16+0+12+5+30+21+0+0+50+0 = 142, 142 mod 11 = 10;
# second pass 24+32+0+18+7+40+27+0+0+5+0 = 153, 153 mod 11 = 10: no digit makes it valid.
BOTH_PASSES_TEN = "88031530050"


@pytest.mark.parametrize("iin", VALID_IINS)
def test_hand_computed_iins_are_valid(iin: str) -> None:
    assert iin_problem(iin) is None


def test_the_second_pass_decides_when_the_first_gives_ten() -> None:
    assert control_digit("88031530051") == 1


def test_both_passes_giving_ten_means_no_control_digit() -> None:
    assert control_digit(BOTH_PASSES_TEN) is None


@pytest.mark.parametrize("last", list("0123456789"))
def test_an_iin_whose_passes_both_give_ten_is_invalid_whatever_its_last_digit(last: str) -> None:
    assert iin_problem(BOTH_PASSES_TEN + last) == "the control digit of the IIN does not match"


@pytest.mark.parametrize("iin", [WRONG_CONTROL_DIGIT, FIRST_PASS_TEN_WRONG_DIGIT, "850715401235"])
def test_a_wrong_control_digit_is_invalid(iin: str) -> None:
    assert iin_problem(iin) == "the control digit of the IIN does not match"


@pytest.mark.parametrize("value", ["", "90010130012", "9001013001260", "1" * 20])
def test_an_iin_of_the_wrong_length_is_invalid(value: str) -> None:
    assert iin_problem(value) == "an IIN is exactly twelve digits"


@pytest.mark.parametrize(
    "value",
    [
        "90010130012a",
        "9001013001-6",
        " 90010130012",
        "+90010130012",
        # Fullwidth digits pass str.isdigit but are not ASCII.
        "\uff19\uff10\uff10\uff11\uff10\uff11\uff13\uff10\uff10\uff11\uff12\uff16",
    ],
)
def test_an_iin_with_non_digits_is_invalid(value: str) -> None:
    assert iin_problem(value) == "an IIN is exactly twelve digits"


@pytest.mark.parametrize(
    "value",
    [
        "901301300126",  # month 13
        "900001300126",  # month 00
        "900132300126",  # 32 January
        "900100300126",  # day 00
        "990229300126",  # 29 February 1999 (the seventh digit 3 means the 1900s)
        "000229300126",  # 29 February 1900 is no date either: 1900 was not a leap year
    ],
)
def test_an_iin_whose_first_six_digits_are_no_date_is_invalid(value: str) -> None:
    assert iin_problem(value) == "the first six digits of an IIN must be a birth date"


@pytest.mark.parametrize("seventh", ["0", "7", "8", "9"])
def test_an_iin_with_an_unknown_century_digit_is_invalid(seventh: str) -> None:
    value = f"900101{seventh}00126"
    assert iin_problem(value) == "the seventh digit of an IIN must be 1 to 6"


def test_synthetic_iins_are_valid_and_distinct() -> None:
    numbers = [*range(2000), 17_999, 18_000, 18_001, 123_456_789, 179_999_999]
    iins = [synthetic_iin(n) for n in numbers]
    assert [iin for iin in iins if iin_problem(iin) is not None] == []
    assert len(set(iins)) == len(numbers)
