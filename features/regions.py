"""Destination markets: ISO 3166-1 alpha-2 country -> region used by features.

Regions: ``US``, ``EU`` (the 27 member states), ``JP``, ``SEA`` (ASEAN), ``LATAM``, ``ME``
(Middle East), ``OTHER``; ``NONE`` is used for a firm with no exports in the window.
"""

from __future__ import annotations

EU = tuple(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
)
SEA = tuple("BN KH ID LA MY MM PH SG TH VN TL".split())  # noqa: SIM905
LATAM = tuple("AR BO BR CL CO CR CU DO EC SV GT HN MX NI PA PY PE PR UY VE".split())  # noqa: SIM905
ME = tuple("AE BH EG IL IQ IR JO KW LB OM PS QA SA SY TR YE".split())  # noqa: SIM905

REGIONS = ("US", "EU", "JP", "SEA", "LATAM", "ME", "OTHER")
MARKETS = (*REGIONS, "NONE")

COUNTRY_REGION: dict[str, str] = {
    "US": "US",
    "JP": "JP",
    **{c: "EU" for c in EU},
    **{c: "SEA" for c in SEA},
    **{c: "LATAM" for c in LATAM},
    **{c: "ME" for c in ME},
}

#: HS chapters of consumer goods (toys, apparel, footwear, cosmetics, furniture, household
#: electronics...) used by the EU consumer-goods exposure feature.
CONSUMER_HS_CHAPTERS = tuple(
    f"{c:02d}" for c in (33, 42, 61, 62, 63, 64, 65, 71, 85, 91, 94, 95, 96)
)


def region_of(country: str | None) -> str:
    """Region of a country code.

    >>> region_of("DE"), region_of("US"), region_of("CN")
    ('EU', 'US', 'OTHER')
    """
    if not country:
        return "OTHER"
    return COUNTRY_REGION.get(country.upper(), "OTHER")


def region_sql(column: str) -> str:
    """SQL ``CASE`` mapping a country column to its region (generated from the table above)."""
    groups: dict[str, list[str]] = {}
    for country, region in COUNTRY_REGION.items():
        groups.setdefault(region, []).append(country)
    whens = " ".join(
        f"WHEN {column} IN ({', '.join(repr(c) for c in sorted(cs))}) THEN '{region}'"
        for region, cs in groups.items()
    )
    return f"CASE {whens} ELSE 'OTHER' END"
