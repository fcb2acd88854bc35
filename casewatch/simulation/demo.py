"""The stack's living demo authority: its seeded history, as the simulator publishes it and as the stack
backfills it into Prometheus.
"""
from __future__ import annotations

from datetime import date, timedelta
from casewatch.config import Settings
from casewatch.simulation.rates import PROFILES


# The stack's living demo authority (``casewatch stack up``): the same seeded history goes to
# Kafka (``simulate --demo``) and, as daily figures, into Prometheus before it starts.
DEMO_PROFILE = "stockton"   # casewatch.simulation.rates.PROFILES: the demo authority E06000004's own rates
# Stockton-on-Tees's children under 18: the profile's own population, the one `simulate --demo`
# uses, so the backfilled history and the history the engine receives are the same children
DEMO_POPULATION = PROFILES[DEMO_PROFILE]["POPULATION"]
DEMO_SEED = 1
DEMO_HISTORY_DAYS = 730  # two years (``--history-years 2``)


def demo_history_events(settings, until: date):
    """The demo authority's history events up to ``until``, as ``simulate --demo`` publishes them."""
    from casewatch.simulation.authority import authority_events
    return authority_events(settings.la_code_list, DEMO_POPULATION, DEMO_SEED,
                            until - timedelta(days=DEMO_HISTORY_DAYS), until, profile=DEMO_PROFILE)


def demo_history_payloads(settings, until: date) -> list[dict]:
    """The demo history as the engine receives it: checked and pseudonymised at the ingest edge
    (the publisher's own check, no Kafka needed); what the edge rejects is left out."""
    publisher = make_publisher(settings, "simulator")
    checked = (publisher.check(event) for event in demo_history_events(settings, until))
    return [c.payload for c in checked if c.ok]


def make_publisher(settings: Settings, source_system: str):
    """The ingest module's publisher. Kept in one function so the adapter is in one place."""
    from casewatch.adapters.kafka.publisher import EventPublisher
    return EventPublisher(settings, source_system=source_system)
