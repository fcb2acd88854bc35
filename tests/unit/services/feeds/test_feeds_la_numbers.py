"""The DfE LA number -> ONS code table (services/feeds/la_numbers.yaml): every English authority
with children's services, and known pairs checked by hand against the published lists."""
from __future__ import annotations

from importlib import resources

import pytest
import yaml

from services.feeds.envelope import FeedConfigError, OLD_LA_NUMBERS, ONS_LA_CODE, resolve_la_code

TABLE = yaml.safe_load(resources.files("services.feeds").joinpath("la_numbers.yaml").read_text("utf-8"))


def test_every_english_authority_once():
    current = TABLE["current"]
    assert len(current) == 153                                # England's 153 LAs (April 2023 on)
    codes = [pair[0] for pair in current.values()]
    assert len(set(codes)) == 153                             # no ONS code twice
    assert all(ONS_LA_CODE.match(c) for c in codes)
    assert all(n.isdigit() and len(n) == 3 for n in current)
    # By ONS type: 33 London boroughs (E09), 36 metropolitan districts (E08), 21 counties (E10),
    # 63 unitary authorities (E06).
    assert sum(c.startswith("E09") for c in codes) == 33
    assert sum(c.startswith("E08") for c in codes) == 36
    assert sum(c.startswith("E10") for c in codes) == 21
    assert sum(c.startswith("E06") for c in codes) == 63
    assert not set(TABLE["former"]) & set(current)


@pytest.mark.parametrize("number, ons", [
    ("808", "E06000004"),   # Stockton-on-Tees
    ("202", "E09000007"),   # Camden
    ("330", "E08000025"),   # Birmingham
    ("926", "E10000020"),   # Norfolk
    ("201", "E09000001"),   # City of London
    ("320", "E09000031"),   # Waltham Forest
    ("383", "E08000035"),   # Leeds
    ("815", "E06000065"),   # North Yorkshire (unitary from April 2023)
    ("933", "E06000066"),   # Somerset (unitary from April 2023)
    ("942", "E06000063"),   # Cumberland
    ("943", "E06000064"),   # Westmorland and Furness
    ("940", "E06000061"),   # North Northamptonshire
    ("941", "E06000062"),   # West Northamptonshire
    ("825", "E06000060"),   # Buckinghamshire
    ("839", "E06000058"),   # Bournemouth, Christchurch and Poole
    ("838", "E06000059"),   # Dorset
    ("420", "E06000053"),   # Isles of Scilly
    ("886", "E10000016"),   # Kent
    ("909", "E10000006"),   # Cumbria, for returns from before April 2023
])
def test_known_pairs(number, ons):
    assert OLD_LA_NUMBERS[number] == ons
    assert resolve_la_code(None, number) == ons
    assert resolve_la_code(None, "0" + number) == ons     # leading zeros as some exports write them


def test_a_number_of_no_english_authority_still_needs_la_code_or_a_mapping():
    with pytest.raises(FeedConfigError):
        resolve_la_code(None, "975")
    assert resolve_la_code(None, "975", {"975": "E10000002"}) == "E10000002"
    assert resolve_la_code(None, "808", {"808": "E06000001"}) == "E06000001"  # --la-map overrides
