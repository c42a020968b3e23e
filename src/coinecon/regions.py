"""Regions: ISO 3166-1 alpha-2 codes, checked against the standard's list.

The list of the 249 officially assigned codes ships with the package (as the
ISO 4217 currencies do). A price book, an eligibility policy and a buyer's
region all name regions by these codes; a code outside the list is refused,
with the likely intended one where a common mistake is known::

    >>> region("GB")
    'GB'
    >>> region_name("KR")
    'Korea, Republic of'
    >>> try:
    ...     region("UK")
    ... except InvalidRegionError as error:
    ...     print(error)
    'UK' is not an ISO 3166-1 alpha-2 region code: the United Kingdom is 'GB'
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

from coinecon.errors import InvalidRegionError

__all__ = ["region", "region_name", "regions"]

# Codes people write that ISO 3166-1 does not assign (or assigns otherwise).
_MISTAKES = {
    "UK": "the United Kingdom is 'GB'",
    "EL": "Greece is 'GR' (EL is the European Union's own code)",
    "EU": "the European Union is not a region: list its members",
    "XK": "Kosovo's XK is not assigned by ISO 3166-1",
    "ZZ": "ZZ is reserved for an unknown region",
}


@functools.cache
def _names() -> dict[str, str]:
    text = resources.files("coinecon").joinpath("data/iso3166.csv").read_text("utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(text.splitlines())}


def regions() -> frozenset[str]:
    """Every officially assigned ISO 3166-1 alpha-2 code."""
    return frozenset(_names())


def region(code: object) -> str:
    """Return *code* if it is an assigned ISO 3166-1 alpha-2 code.

    Raises:
        InvalidRegionError: for anything else: not text, not two upper-case
            letters, or not assigned (``UK``, ``ZZ``).
    """
    if isinstance(code, str) and code in _names():
        return code
    if not isinstance(code, str):
        raise InvalidRegionError(
            f"a region is an ISO 3166-1 alpha-2 code such as 'US', got {code!r}"
        )
    hint = _MISTAKES.get(code.upper())
    if hint is None and code.upper() in _names():
        hint = f"codes are upper case: {code.upper()!r}"
    raise InvalidRegionError(
        f"{code!r} is not an ISO 3166-1 alpha-2 region code"
        + (f": {hint}" if hint else " (see coinecon.regions.regions())")
    )


def region_name(code: str) -> str:
    """The ISO 3166-1 short name of the region *code*."""
    return _names()[region(code)]
