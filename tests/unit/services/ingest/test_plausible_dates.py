"""The plausible dates ingest and the loader accept end at the deployment's "today"
(casewatch.bootstrap.today_for: CASEWATCH_FIXED_TODAY when set, else London's date) plus
CASEWATCH_LATEST_EVENT_DAYS_AHEAD; checked on the publisher the ingest service is built with
(Parts.publisher), no Kafka. Expected dates written by hand."""
from __future__ import annotations

from datetime import date

from casewatch import bootstrap
from casewatch.config import Settings
from schemas.examples import valid_examples

KEY = "plausible-dates-test-key-0123456789abcdef"


def referral_on(day: str) -> dict:
    event = dict(valid_examples()["referral.received"])
    event.update(referral_date=day, effective_date=day, occurred_at=f"{day}T10:15:00+01:00",
                 recorded_at=f"{day}T16:40:05+01:00")
    return event


def refused_dates(publisher, day: str) -> list:
    checked = publisher.check(referral_on(day), pre_pseudonymised=True)
    return [e["loc"] for e in checked.errors if e["type"] == "date_range"]


def test_a_fixed_today_ends_the_plausible_dates_of_the_ingest_publisher():
    settings = Settings(pseudonymisation_key=KEY, fixed_today="2025-07-01", latest_event_days_ahead=0)
    publisher = bootstrap.build(settings).publisher("ingest", source="ingest")
    assert publisher.date_range == (date(1990, 1, 1), date(2025, 7, 1))
    assert refused_dates(publisher, "2025-07-01") == []
    assert refused_dates(publisher, "2025-07-02") != []  # the day after the fixed today


def test_the_default_end_is_one_year_after_the_fixed_today():
    settings = Settings(pseudonymisation_key=KEY, fixed_today="2024-02-29")
    publisher = bootstrap.build(settings).publisher("ingest", source="ingest")
    # 29 February one year on is 28 February 2025
    assert publisher.date_range == (date(1990, 1, 1), date(2025, 2, 28))
    assert refused_dates(publisher, "2025-02-28") == [] and refused_dates(publisher, "2025-03-01") != []
