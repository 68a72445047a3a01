"""The Pacific Amphitheatre as the seed document describes it: 8,500 seats in 8 sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.models import SectionType

VENUE_SLUG = "pacific-amphitheatre"
VENUE_NAME = "Pacific Amphitheatre"
VENUE_ADDRESS = "88 Fair Drive, Costa Mesa, CA 92626"
VENUE_TIMEZONE = "America/Los_Angeles"
EVENT_NAME = "OC MENA Festival Concert"


@dataclass(frozen=True, slots=True)
class SectionSeed:
    slug: str
    name: str
    section_type: SectionType
    price_cents: int
    rows: int | None
    seats_per_row: int | None
    capacity: int
    map_color: str
    map_coordinates: dict[str, Any] = field(default_factory=dict)


def _arc(start: int, end: int, inner: int, outer: int) -> dict[str, Any]:
    """A wedge of the bowl on a 1000 x 700 map, stage at (500, 60); angles in degrees."""
    return {
        "shape": "arc",
        "cx": 500,
        "cy": 60,
        "start_angle": start,
        "end_angle": end,
        "inner_radius": inner,
        "outer_radius": outer,
    }


R, GA = SectionType.RESERVED, SectionType.GENERAL_ADMISSION
SECTIONS: tuple[SectionSeed, ...] = (
    SectionSeed(
        "orch-center",
        "Orchestra Center",
        R,
        12_500,
        30,
        50,
        1_500,
        "#7B2CBF",
        _arc(60, 120, 80, 230),
    ),
    SectionSeed(
        "orch-left", "Orchestra Left", R, 10_000, 20, 40, 800, "#9D4EDD", _arc(120, 160, 80, 230)
    ),
    SectionSeed(
        "orch-right", "Orchestra Right", R, 10_000, 20, 40, 800, "#9D4EDD", _arc(20, 60, 80, 230)
    ),
    SectionSeed(
        "mezz-center",
        "Mezzanine Center",
        R,
        8_500,
        24,
        50,
        1_200,
        "#3A86FF",
        _arc(60, 120, 240, 360),
    ),
    SectionSeed(
        "mezz-left", "Mezzanine Left", R, 7_500, 20, 30, 600, "#4895EF", _arc(120, 160, 240, 360)
    ),
    SectionSeed(
        "mezz-right", "Mezzanine Right", R, 7_500, 20, 30, 600, "#4895EF", _arc(20, 60, 240, 360)
    ),
    SectionSeed("terrace", "Terrace", R, 6_000, 30, 50, 1_500, "#F77F00", _arc(20, 160, 370, 480)),
    SectionSeed("lawn", "Lawn", GA, 4_500, None, None, 1_500, "#2A9D8F", _arc(10, 170, 490, 640)),
)

VENUE_CAPACITY = sum(s.capacity for s in SECTIONS)
