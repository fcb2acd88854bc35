"""A stack part whose casewatch module cannot be found stops `stack up` with its name and the fix (issue 14: a
renamed service module used to be left out quietly, so the stack came up without it)."""
from __future__ import annotations

import pytest

from casewatch.stack.components import Component, StackError


def part(module: str | None) -> Component:
    return Component("engine", "http://127.0.0.1:1/metrics", prepare=lambda: [], health=lambda: (True, ""),
                     optional_module=module)


def test_a_part_whose_module_is_there_is_started():
    assert part("services.engine.app").available()
    assert part(None).available()


@pytest.mark.parametrize("module", ["services.engine.not_there", "services.not_a_service.app"])
def test_a_part_whose_module_is_missing_stops_stack_up(module):
    with pytest.raises(StackError) as raised:
        part(module).available()
    message = str(raised.value)
    assert f"the engine part's module {module} cannot be found" in message
    assert "pip install -e ." in message
