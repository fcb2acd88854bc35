"""The services' errors are modelled as the library's are (docs/architecture.md, "Errors"): each
service package that raises its own errors has one ``exceptions`` module, every error there is a
``CasewatchError``, keeps the built-in base it had (so ``except ValueError`` still catches it) and
stays importable from the module that raises it."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from casewatch.errors import CasewatchError

# (exceptions module, error, the built-in base it keeps, the module that raises it)
ERRORS = [
    ("services.feeds.exceptions", "FeedConfigError", ValueError, "services.feeds.envelope"),
    ("services.feeds.exceptions", "ReturnsError", ValueError, "services.feeds.ssda903"),
    ("services.ingest.exceptions", "NotAcknowledged", Exception, "services.ingest.api"),
    ("services.notifier.exceptions", "RotaError", ValueError, "services.notifier.rota"),
    ("services.simulator.exceptions", "KafkaDown", Exception, "services.simulator.commands"),
]
# The engine's package is another hand's (issue 14); the others are checked whole.
SERVICES = ("feeds", "ingest", "notifier", "simulator")


@pytest.mark.parametrize("home,name,builtin,raiser", ERRORS, ids=[e[1] for e in ERRORS])
def test_each_error_is_a_casewatch_error_on_its_builtin_base(home, name, builtin, raiser):
    error = getattr(importlib.import_module(home), name)
    assert issubclass(error, CasewatchError) and issubclass(error, builtin)
    assert getattr(importlib.import_module(raiser), name) is error
    with pytest.raises(builtin):
        raise error(*((3, 5) if name == "NotAcknowledged" else ("a sentence with the fix",)))


def test_not_acknowledged_says_how_many_were_stored():
    from services.ingest.exceptions import NotAcknowledged
    exc = NotAcknowledged(3, 5)
    assert (exc.acknowledged, exc.total, str(exc)) == (3, 5, "3 of 5 acknowledged")


def service_errors() -> dict[str, type]:
    """Every exception class defined in the four services' modules, by qualified name."""
    found = {}
    for service in SERVICES:
        package = importlib.import_module(f"services.{service}")
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                    found[f"{cls.__module__}.{cls.__name__}"] = cls
    return found


def test_every_error_a_service_defines_is_in_its_exceptions_module_on_the_common_base():
    found = service_errors()
    assert set(found) == {f"{home}.{name}" for home, name, _, _ in ERRORS}
    assert all(issubclass(cls, CasewatchError) for cls in found.values())
