"""Feeds that do not carry a code (the DfE CSC API has no abuse category and no legal status) still
count: the child is on a plan / looked after, under the label value `not_recorded`."""
from datetime import date

from casewatch.domain.calendar import WorkingDayCalendar
from casewatch.domain.history import ChildHistory
from casewatch.domain.indicators import contribution

BASE = {"la_code": "E06000004", "team": "cp_1", "child_ref": "ps_" + "1" * 32, "schema_version": 1}


def _stocks(events, as_of=date(2026, 3, 31)):
    return contribution(ChildHistory(events), as_of, WorkingDayCalendar()).stocks


def test_cp_plan_without_category_is_open_under_not_recorded():
    plan = dict(BASE, event_id="00000000-0000-4000-8000-000000000001", event_type="cp_plan.started",
                plan_ref="ps_" + "2" * 32, start_date="2026-01-05", effective_date="2026-01-05")
    stocks = _stocks([plan])
    open_plans = {dict(labels)["category"]: v for (m, labels), v in stocks.items()
                  if m == "casewatch_cp_plans_open"}
    assert open_plans == {"not_recorded": 1.0}


def test_looked_after_without_legal_status_is_counted_under_not_recorded():
    lac = dict(BASE, team="lac_1", event_id="00000000-0000-4000-8000-000000000002", event_type="lac.started",
               decom="2026-02-02", placement="U6", effective_date="2026-02-02")
    stocks = _stocks([lac])
    looked_after = {dict(labels)["legal_status_group"]: v for (m, labels), v in stocks.items()
                    if m == "casewatch_lac_open"}
    assert looked_after == {"not_recorded": 1.0}
