"""A small builder for Grafana dashboard JSON (schemaVersion 39), just what the casewatch boards use.

Panels are laid out left to right on Grafana's 24-column grid, wrapping to the next line; a row
starts a new line. Panel ids and target refIds are assigned when the board is rendered, so they are
unique and stable as long as the board definition does not change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
GRID_WIDTH = 24

GREEN, AMBER, RED, BLUE, GREY = "green", "#EAB839", "red", "blue", "text"


@dataclass
class Target:
    expr: str
    legend: str = "__auto"
    instant: bool = False


@dataclass
class Panel:
    title: str
    kind: str                                     # stat | timeseries | bargauge | row
    targets: list[Target] = field(default_factory=list)
    width: int = 6
    height: int = 6
    unit: str | None = None
    description: str = ""
    steps: list[tuple[float | None, str]] | None = None   # threshold steps (value, colour)
    mappings: list[dict] = field(default_factory=list)
    decimals: int | None = None
    threshold_lines: bool = False                 # draw the threshold steps on a time series
    max_value: float | None = None
    dashed_legends: tuple[str, ...] = ()          # series drawn as dashed reference lines


def row(title: str) -> Panel:
    return Panel(title=title, kind="row", width=GRID_WIDTH, height=1)


@dataclass
class Variable:
    name: str
    label: str
    query: str | None = None                      # label_values(...) for a query variable
    options: tuple[str, ...] = ()                 # values for a custom variable
    default: str | None = None
    include_all: bool = True
    multi: bool = True

    def render(self) -> dict[str, Any]:
        if self.query is not None:
            return {
                "name": self.name, "label": self.label, "type": "query", "datasource": DATASOURCE,
                "query": {"query": self.query, "refId": f"{self.name}-variable"},
                "definition": self.query, "refresh": 2, "includeAll": self.include_all,
                "multi": self.multi, "allValue": ".*", "sort": 1, "hide": 0,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "options": [],
            }
        value = self.default or self.options[0]
        return {
            "name": self.name, "label": self.label, "type": "custom", "query": ",".join(self.options),
            "includeAll": False, "multi": False, "hide": 0,
            "current": {"selected": True, "text": value, "value": value},
            "options": [{"selected": o == value, "text": o, "value": o} for o in self.options],
        }


@dataclass
class Board:
    uid: str
    title: str
    description: str
    panels: list[Panel]
    variables: list[Variable]
    tags: tuple[str, ...] = ("casewatch",)
    time_from: str = "now-90d"
    refresh: str = "1m"
    folder: str = "casewatch"
    annotations: tuple[dict[str, Any], ...] = ()

    def render(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "Europe/London",
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": self.refresh,
            "time": {"from": self.time_from, "to": "now"},
            "templating": {"list": [v.render() for v in self.variables]},
            "annotations": {"list": list(self.annotations)},
            "links": [],
            "panels": _layout(self.panels),
        }


def _layout(panels: list[Panel]) -> list[dict[str, Any]]:
    out, x, y, line_height, next_id = [], 0, 0, 0, 1
    for panel in panels:
        if panel.kind == "row" or x + panel.width > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        grid = {"h": panel.height, "w": panel.width, "x": x, "y": y}
        out.append(_render_panel(panel, next_id, grid))
        next_id += 1
        if panel.kind == "row":
            y += panel.height
            continue
        x += panel.width
        line_height = max(line_height, panel.height)
    return out


def _ref_id(i: int) -> str:
    return chr(ord("A") + i)


def _render_panel(p: Panel, panel_id: int, grid: dict) -> dict[str, Any]:
    if p.kind == "row":
        return {"id": panel_id, "type": "row", "title": p.title, "gridPos": grid, "collapsed": False,
                "panels": []}
    defaults: dict[str, Any] = {"mappings": p.mappings}
    if p.unit:
        defaults["unit"] = p.unit
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    if p.max_value is not None:
        defaults["max"] = p.max_value
    steps = p.steps or [(None, BLUE)]
    defaults["thresholds"] = {"mode": "absolute",
                              "steps": [{"color": colour, "value": value} for value, colour in steps]}
    overrides = []
    if p.kind == "timeseries":
        defaults["color"] = {"mode": "palette-classic"}
        defaults["custom"] = {"lineWidth": 2, "fillOpacity": 0, "spanNulls": True,
                              "thresholdsStyle": {"mode": "dashed" if p.threshold_lines else "off"}}
        for legend in p.dashed_legends:
            overrides.append({
                "matcher": {"id": "byName", "options": legend},
                "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                               {"id": "color", "value": {"mode": "fixed", "fixedColor": GREY}}],
            })
    else:
        defaults["color"] = {"mode": "thresholds"}
    options: dict[str, Any]
    if p.kind == "stat":
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "colorMode": "background", "graphMode": "none", "textMode": "auto",
                   "justifyMode": "auto", "orientation": "auto"}
    elif p.kind == "bargauge":
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "displayMode": "basic", "orientation": "horizontal", "showUnfilled": True}
    else:
        options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    return {
        "id": panel_id,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "gridPos": grid,
        "datasource": DATASOURCE,
        "targets": [
            {"refId": _ref_id(i), "datasource": DATASOURCE, "expr": t.expr, "legendFormat": t.legend,
             "range": not t.instant or p.kind == "timeseries",
             "instant": t.instant and p.kind != "timeseries", "editorMode": "code"}
            for i, t in enumerate(p.targets)
        ],
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": options,
    }
