"""One owner for rejection reasons (casewatch.domain.rejections): every reason a code path can
dead-letter with is a label value the engine's exposition lists, so none reaches /metrics as
``other`` unless it really is unknown."""
from __future__ import annotations

import ast
from pathlib import Path

from prometheus_client import generate_latest

from casewatch.domain import rejections
from casewatch.domain.history import ChildHistory
from casewatch.adapters.prometheus.exposition import DEAD_LETTER_REASONS, ENGINE_DEAD_LETTER_REASONS

ROOT = Path(__file__).resolve().parents[3]
ENGINE = ROOT / "services" / "engine"
# the engine's code: the service and the layers it stands on (docs/architecture.md)
ENGINE_CODE = [ENGINE, ROOT / "casewatch" / "processing", ROOT / "casewatch" / "adapters" / "prometheus"]
ENV = {"la_code": "E06000004", "team": "cp_1", "child_ref": "ps_" + "b" * 32}


def ev(event_id, event_type, **fields):
    return {**ENV, "event_id": event_id, "event_type": event_type, **fields}


def test_the_exposition_lists_every_domain_rejection_reason():
    constants = {value for name, value in vars(rejections).items()
                 if name.isupper() and isinstance(value, str)}
    assert constants == set(rejections.REJECTION_REASONS)
    assert rejections.REJECTION_REASONS <= DEAD_LETTER_REASONS
    assert "end_before_start" in DEAD_LETTER_REASONS  # the reason that used to be published as "other"


def test_history_rules_name_their_reason_only_through_the_rejections_module():
    """No bare string becomes a rejection reason in history.py: every ``reason = ...`` there is a
    name imported from casewatch.domain.rejections (or None)."""
    tree = ast.parse((ROOT / "casewatch" / "domain" / "history.py").read_text())
    assigned = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "reason" for t in node.targets)]
    assert assigned, "history.py no longer assigns reason: update this test"
    for value in assigned:
        if isinstance(value, ast.Constant):
            assert value.value is None, f"bare reason string {value.value!r} in history.py"
        else:
            assert isinstance(value, ast.Name) and getattr(rejections, value.id, None) in rejections.REJECTION_REASONS


def test_every_rule_break_is_rejected_with_a_listed_reason():
    # one event breaking each cross-event rule
    events = [
        ev("s", "s47.started", start_date="2026-03-10", s47_ref="S"),
        ev("i", "icpc.held", date="2026-03-09", s47_ref="S", resulted_in_cpp=False),            # icpc_before_s47
        ev("c", "s47.completed", end_date="2026-03-09", s47_ref="S"),                            # end_before_start
        ev("p", "cp_plan.started", start_date="2026-03-10", plan_ref="P", initial_category="NEG"),
        ev("r", "cp_review.held", date="2026-03-09", plan_ref="P"),                               # review_before_plan
        ev("e", "cp_plan.ended", end_date="2026-03-09", plan_ref="P", end_route="other"),        # end_before_start
        ev("a", "assessment.started", start_date="2026-03-10", assessment_ref="A"),
        ev("ac", "assessment.completed", authorisation_date="2026-03-09", assessment_ref="A"),   # end_before_start
        ev("l", "lac.started", decom="2026-03-10", legal_status="C2", placement="U4"),
        ev("lr", "lac_review.held", date="2026-03-09"),                                          # review_before_plan
        ev("le", "lac.ended", dec="2026-03-09", reason_ceased="E11"),                            # end_before_start
    ]
    got = dict(ChildHistory(events).rejections)
    assert got == {"i": "icpc_before_s47", "c": "end_before_start", "r": "review_before_plan",
                   "e": "end_before_start", "ac": "end_before_start", "lr": "review_before_plan",
                   "le": "end_before_start"}
    assert set(got.values()) <= DEAD_LETTER_REASONS


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def test_every_engine_dead_letter_call_site_uses_a_listed_reason():
    """Scan the engine's code: each ``dead_letter(reason, ...)`` / ``dead_lettered(stage, reason)``
    call and each ``set_aside.append((reason, ...))`` either passes a literal the exposition lists,
    or passes the variable of one of the two known routes (the set-aside loop, and the domain's
    ``applied.rejections``). A new route with a computed reason fails here until it is checked."""
    literals: list[str] = []
    variables: list[tuple[str, str]] = []
    for path in sorted(p for folder in ENGINE_CODE for p in folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            arg = None
            if name in ("dead_letter", "dead_letters") and node.args:  # the agent's sink, the processor's port
                arg = node.args[0]
            elif name == "dead_lettered" and len(node.args) >= 2:
                arg = node.args[1]
            elif (name == "append" and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == "set_aside"
                  and node.args and isinstance(node.args[0], ast.Tuple)):
                arg = node.args[0].elts[0]
            if arg is None:
                continue
            if isinstance(arg, ast.Constant):
                literals.append(arg.value)
            else:
                variables.append((path.name, ast.unparse(arg)))
    # the processor takes its own reasons from the declared error policy (no literal at its call
    # sites): the policy's reasons are exactly the engine's list the exposition publishes
    from casewatch.processing.error_policy import POLICY
    policy_reasons = {rule.reason.value for rule in POLICY.values() if rule.reason is not None}
    assert literals or policy_reasons, "no dead-letter call sites found: update this test"
    assert set(literals) <= DEAD_LETTER_REASONS, sorted(set(literals) - DEAD_LETTER_REASONS)
    assert set(literals) <= ENGINE_DEAD_LETTER_REASONS  # the engine's own reasons are its own list
    assert policy_reasons == ENGINE_DEAD_LETTER_REASONS
    known = {("app.py", "reason"), ("exposition.py", "reason"), ("processor.py", "reason")}
    assert set(variables) <= known, sorted(set(variables) - known)
    # the "reason" appended to set_aside in processor.py comes from the domain's rejections
    processor = (ROOT / "casewatch" / "processing" / "processor.py").read_text()
    assert "for event_id, reason in applied.rejections:" in processor


def test_a_domain_rejection_is_published_under_its_own_reason():
    """EngineMetrics.dead_lettered, on a registry of its own: a listed reason is its own label
    value, an unknown one is ``other``."""
    from prometheus_client import CollectorRegistry, Counter

    from casewatch.adapters.prometheus.exposition import EngineMetrics

    class Bare:  # only what dead_lettered uses
        pass

    metrics = Bare()
    registry = CollectorRegistry()
    metrics.dead = Counter("casewatch_events_dead_lettered", "x", ["stage", "reason"], registry=registry)
    EngineMetrics.dead_lettered(metrics, "rules", "end_before_start")
    EngineMetrics.dead_lettered(metrics, "rules", "not_a_reason")
    text = generate_latest(registry).decode()
    assert 'casewatch_events_dead_lettered_total{reason="end_before_start",stage="rules"} 1.0' in text
    assert 'casewatch_events_dead_lettered_total{reason="other",stage="rules"} 1.0' in text
