"""On generated histories (random dates, codes, references, amendments, voids and repeats per
child): any arrival order with any repeats gives identical figures, compacted events give the
figures of the full ones, and every rejection reason is one the engine publishes as itself."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from casewatch.domain.rejections import REJECTION_REASONS
from tests.support.generated_histories import arrival, as_of_dates, authority_history
from tests.unit.domain.test_golden import run

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(authority_history(), as_of_dates(), st.data())
def test_any_arrival_order_with_repeats_gives_identical_figures(events, as_of, data):
    shuffled = data.draw(arrival(events))
    assert run(shuffled, as_of) == run(events, as_of)


@SETTINGS
@given(authority_history(), as_of_dates())
def test_compacted_events_give_the_figures_of_the_full_events(events, as_of):
    assert run(events, as_of, use_compact=False) == run(events, as_of)


@settings(max_examples=60, deadline=None)
@given(authority_history(), as_of_dates())
def test_every_rejection_is_a_listed_reason_and_no_figure_is_negative(events, as_of):
    samples, rejections = run(events, as_of)
    assert {reason for _, reason in rejections} <= REJECTION_REASONS
    assert all(value >= 0 for value in samples.values())
