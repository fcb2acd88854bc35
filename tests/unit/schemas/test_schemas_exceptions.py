"""The wire models' errors are casewatch errors (one base, docs/architecture.md "Errors") and keep
the built-in base their callers catch: a code-list file on disk that is malformed is a
RuntimeError, an event that fails validation a ValueError."""
from __future__ import annotations

import pytest

from casewatch.domain.exceptions import CasewatchError
from schemas import ValidationFailure, parse_event
from schemas.code_lists import CodeListError, _load_year


def test_an_invalid_event_is_a_casewatch_error_and_still_a_value_error():
    with pytest.raises(ValidationFailure) as info:
        parse_event({"event_type": "referral.received"})
    assert isinstance(info.value, CasewatchError) and isinstance(info.value, ValueError)
    with pytest.raises(ValueError):  # what the callers catch
        parse_event({"event_type": "referral.received"})


def test_a_malformed_code_list_file_is_a_casewatch_error_and_still_a_runtime_error(tmp_path):
    year = tmp_path / "2025-26"
    year.mkdir()
    (year / "lists.yaml").write_text("collection_year: 2019-20\nlists: {}\n", encoding="utf-8")
    with pytest.raises(CodeListError) as info:
        _load_year(year)
    assert isinstance(info.value, CasewatchError) and isinstance(info.value, RuntimeError)
