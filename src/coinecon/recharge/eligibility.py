"""Who may buy coins: age, parental consent, regions.

A purchase needs an adult buyer, or a minor with a recorded parental consent,
in a region where recharge is offered. What is kept is what the decision
needs and no more:

* an :class:`AgeAttestation`: who vouched for the holder's age (the host's
  ID check, an app store, a payment provider) and when, for which region, and
  the date from which the holder is of age there. When the host passes a
  birth date, the library computes that date (with ``python-dateutil``'s
  ``relativedelta``) and keeps it, never the birth date; for a holder of age
  already, or when the host attests that the holder is an adult, the date is
  the attestation's, so nothing of the birth date is kept at all;
* a :class:`ParentalConsent`: the guardian's reference in the host's system
  (never their name), who recorded it and when.

The age of majority is 18 unless the policy says otherwise for a region::

    >>> from datetime import date
    >>> policy = EligibilityPolicy(age_of_majority={"KR": 19})
    >>> policy.majority("KR"), policy.majority("FR")
    (19, 18)
    >>> AgeAttestation.from_birth_date(date(2010, 6, 15), region="FR", source="id-check",
    ...                                attested_on=date(2026, 1, 2), policy=policy).adult_from
    datetime.date(2028, 6, 15)
    >>> AgeAttestation.from_birth_date(date(1990, 6, 15), region="FR", source="id-check",
    ...                                attested_on=date(2026, 1, 2), policy=policy).adult_from
    datetime.date(2026, 1, 2)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from typing import Any, final

import attrs
from dateutil.relativedelta import relativedelta

from coinecon._checks import identifier, stored_pairs
from coinecon.errors import InvalidTypeError, ValidationError
from coinecon.regions import region

__all__ = ["AgeAttestation", "EligibilityPolicy", "ParentalConsent"]

DEFAULT_MAJORITY = 18
"""The age of majority where the policy states none."""


def _date(_instance: object, attribute: Any, value: Any) -> None:
    if type(value) is not date:
        raise InvalidTypeError(f"{attribute.name} must be a date, got {value!r}")


def _region(_instance: object, _attribute: object, value: Any) -> None:
    region(value)


@final
@attrs.frozen
class AgeAttestation:
    """Who vouched for a holder's age, and from when they are of age.

    Attributes:
        source: who vouched (``"id-check"``, ``"app-store"``).
        attested_on: when.
        region: the region whose age of majority :attr:`adult_from` follows.
        majority: that age of majority.
        adult_from: the first day the holder is of age there.
    """

    source: str = attrs.field(validator=identifier("attestation source"))
    attested_on: date = attrs.field(validator=_date)
    region: str = attrs.field(validator=_region)
    majority: int
    adult_from: date = attrs.field(validator=_date)

    @classmethod
    def from_birth_date(
        cls,
        birth_date: date,
        *,
        region: str,
        source: str,
        attested_on: date,
        policy: EligibilityPolicy,
    ) -> AgeAttestation:
        """The attestation of a holder born on *birth_date*: of age from the
        birthday of the region's age of majority (a 29 February birthday falls
        on 28 February in other years, as ``relativedelta`` reckons it), or,
        for a holder of age already, from the attestation. The birth date is
        not kept, and neither is anything it could be worked back from for a
        holder of age."""
        _date(None, attrs.fields(cls).adult_from, birth_date)
        if birth_date > attested_on:
            raise ValidationError("a birth date cannot be after the attestation")
        majority = policy.majority(region)
        of_age = max(birth_date + relativedelta(years=majority), attested_on)
        return cls(source, attested_on, region, majority, of_age)

    @classmethod
    def adult(
        cls, *, region: str, source: str, attested_on: date, policy: EligibilityPolicy
    ) -> AgeAttestation:
        """The attestation that the holder is of age in *region* now."""
        return cls(source, attested_on, region, policy.majority(region), attested_on)

    def covers(self, region_code: str, on: date, policy: EligibilityPolicy) -> bool:
        """Whether the holder is of age in *region_code* on *on*: of age
        here, and the region's age of majority no higher than the one
        attested for."""
        return self.adult_from <= on and policy.majority(region_code) <= self.majority

    def to_data(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "source": self.source,
            "attested_on": self.attested_on.isoformat(),
            "region": self.region,
            "majority": self.majority,
            "adult_from": self.adult_from.isoformat(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AgeAttestation:
        """What :meth:`to_data` wrote."""
        return cls(
            data["source"],
            date.fromisoformat(data["attested_on"]),
            data["region"],
            data["majority"],
            date.fromisoformat(data["adult_from"]),
        )


@final
@attrs.frozen
class ParentalConsent:
    """A guardian's consent to a minor's purchases.

    Attributes:
        guardian: the guardian's reference in the host's system.
        source: who recorded it (``"parent-portal"``).
        given_on: when.
    """

    guardian: str = attrs.field(validator=identifier("guardian reference"))
    source: str = attrs.field(validator=identifier("consent source"))
    given_on: date = attrs.field(validator=_date)

    def to_data(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "guardian": self.guardian,
            "source": self.source,
            "given_on": self.given_on.isoformat(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ParentalConsent:
        """What :meth:`to_data` wrote."""
        return cls(data["guardian"], data["source"], date.fromisoformat(data["given_on"]))


def _majorities(value: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    value = stored_pairs(value)
    if not isinstance(value, Mapping):
        raise InvalidTypeError(f"age_of_majority maps regions to ages, got {value!r}")
    pairs = []
    for code, age in value.items():
        if type(age) is not int or not 0 < age < 100:
            raise ValidationError(f"an age of majority is an int from 1 to 99, got {age!r}")
        pairs.append((region(code), age))
    return tuple(sorted(pairs))


def _regions(value: Collection[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Collection):
        raise InvalidTypeError(f"regions is a collection of region codes, got {value!r}")
    return frozenset(region(code) for code in value)


@final
@attrs.frozen
class EligibilityPolicy:
    """Who may buy coins.

    Attributes:
        regions: where recharge is offered; ``None`` (the default) offers it
            wherever the price book sells.
        age_of_majority: the age of majority of regions where it is not 18.
        require_age: whether a purchase needs an age attestation (or a
            parental consent); a host that checks age itself turns it off.
    """

    regions: frozenset[str] | None = attrs.field(default=None, converter=_regions)
    age_of_majority: tuple[tuple[str, int], ...] = attrs.field(factory=dict, converter=_majorities)
    require_age: bool = True

    def majority(self, region_code: str) -> int:
        """The age of majority in *region_code*."""
        for code, age in self.age_of_majority:
            if code == region_code:
                return age
        return DEFAULT_MAJORITY
