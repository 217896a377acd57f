"""Kazakhstan's individual identification number (IIN): its format and control digit.

An IIN is twelve digits: YYMMDD of birth, a century-and-sex digit, four serial digits and a
control digit. Core never keeps one: it stores only the keyed hash (``core.identity.national_id``).
"""

from __future__ import annotations

import datetime as dt
import operator

_FIRST_WEIGHTS = tuple(range(1, 12))
_SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_CENTURY_BY_DIGIT = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}


def control_digit(first_eleven: str) -> int | None:
    """The control digit for eleven leading digits, or None when no digit can be valid."""
    digits = list(map(int, first_eleven))
    check = sum(map(operator.mul, digits, _FIRST_WEIGHTS)) % 11
    if check == 10:
        check = sum(map(operator.mul, digits, _SECOND_WEIGHTS)) % 11
    return None if check == 10 else check


def iin_problem(value: str) -> str | None:
    """Why ``value`` is not a valid IIN, or None when it is one."""
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return "an IIN is exactly twelve digits"
    century = _CENTURY_BY_DIGIT.get(int(value[6]))
    if century is None:
        return "the seventh digit of an IIN must be 1 to 6"
    try:
        dt.date(century + int(value[0:2]), int(value[2:4]), int(value[4:6]))
    except ValueError:
        return "the first six digits of an IIN must be a birth date"
    if control_digit(value[:11]) != int(value[11]):
        return "the control digit of the IIN does not match"
    return None


def is_iin_shaped(value: str) -> bool:
    """True for twelve ASCII digits: an IIN, or near enough to one that it must not be kept."""
    return len(value) == 12 and value.isascii() and value.isdigit()


def synthetic_iin(n: int) -> str:
    """A valid IIN made from ``n``, distinct for each n below 1.8e8: for demos and load tests."""
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=n % 18_000)
    serial = (n // 18_000) % 10_000
    # (birth, serial) is unique per n; the sex digit is only varied to find a valid control digit.
    for sex_digit in (3, 4, 5, 6):
        body = f"{birth:%y%m%d}{sex_digit}{serial:04d}"
        check = control_digit(body)
        if check is not None:
            return f"{body}{check}"
    raise ValueError(f"no valid IIN for {n}")
