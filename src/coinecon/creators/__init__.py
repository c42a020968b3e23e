"""Creators: what they earn of the gifts they receive, and their profiles."""

from coinecon.creators.profiles import CreatorProfile
from coinecon.creators.share import RevenueShare, Split

__all__ = ["CreatorProfile", "RevenueShare", "Split"]
