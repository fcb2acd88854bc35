"""The casewatch house style for Grafana boards, on Grafana's own ``grafana-foundation-sdk``.

The boards (dashboards/boards.py) are made of the SDK's builders: ``timeseries.Panel``, ``stat.Panel``,
``bargauge.Panel``, ``prometheus.Dataquery``, ``dashboard.QueryVariable`` / ``CustomVariable`` /
``AnnotationQuery`` / ``Row`` and ``dashboard.Dashboard``; the JSON is the SDK models' own ``to_json``
(through the SDK's ``JSONEncoder``). This module only sets what every casewatch panel shares (the
Prometheus data source, the options of each panel type, the red/amber/green steps, ``noValue``) and
lays the panels out.

Panels are laid out left to right on Grafana's 24-column grid, wrapping to the next line when a panel
would not fit; a row starts a new line. (The SDK's ``Dashboard.with_panel`` places a panel at the
current position even when it runs past column 24, so each panel's position is computed here and set
on the panel before it is added.) Panel ids and target refIds are assigned here too, so they are
unique and stable as long as the board definition does not change.

The boards carry the SDK's ``schemaVersion`` (36, the default of the dashboard kind the pinned SDK
models); Grafana migrates an older schema version when it loads a board.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from grafana_foundation_sdk.builders import bargauge, dashboard as sdk_dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import common as sdk_common
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models.prometheus import QueryEditorMode

DATASOURCE = dashboard.DataSourceRef(type_val="prometheus", uid="prometheus")
GRAFANA_ANNOTATIONS = dashboard.DataSourceRef(type_val="grafana", uid="-- Grafana --")
GRID_WIDTH = 24

GREEN, AMBER, RED, BLUE, GREY = "green", "#EAB839", "red", "blue", "text"

# What a panel shows when its query returns nothing (Grafana's fieldConfig.defaults.noValue, "No data"
# when unset). A count with no series is a zero; a ratio is absent when its denominator is 0; on the
# published board a ratio is also absent when its numerator or denominator is under 6 (suppressed).
NO_VALUE_COUNT = "0"
NO_VALUE_RATIO = "n/a"
NO_VALUE_SUPPRESSED = "suppressed"

Steps = Sequence[tuple[float | None, str]]
PanelBuilder = cogbuilder.Builder[dashboard.Panel] | cogbuilder.Builder[dashboard.RowPanel]


def query(expr: str, legend: str = "__auto") -> prometheus.Dataquery:
    """A PromQL target; the panel decides range or instant and sets its refId."""
    return (prometheus.Dataquery().expr(expr).legend_format(legend).editor_mode(QueryEditorMode.CODE)
            .datasource(DATASOURCE))


def thresholds(steps: Steps | None) -> sdk_dashboard.ThresholdsConfig:
    steps = steps or [(None, BLUE)]
    return sdk_dashboard.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE).steps(
        [dashboard.Threshold(value=value, color=colour) for value, colour in steps])


def suppressed_count_mapping(suppress_below: int) -> list[dashboard.ValueMapping]:
    """Counts 1..suppress_below-1 shown as "<suppress_below" (0 stays 0)."""
    return [dashboard.RangeMap(options=dashboard.DashboardRangeMapOptions(
        from_val=1, to=suppress_below - 1, result=dashboard.ValueMappingResult(text=f"<{suppress_below}")))]


def _common(panel, title: str, targets: Sequence[prometheus.Dataquery], *, instant: bool, width: int,
            height: int, unit: str | None, description: str, no_value: str, steps: Steps | None,
            mappings: Sequence[dashboard.ValueMapping], decimals: int | None, max_value: float | None):
    panel.title(title).description(description).datasource(DATASOURCE).span(width).height(height)
    for i, target in enumerate(targets):
        (target.instant() if instant else target.range()).ref_id(chr(ord("A") + i))
        panel.with_target(target)
    panel.no_value(no_value).mappings(list(mappings)).thresholds(thresholds(steps))
    if unit:
        panel.unit(unit)
    if decimals is not None:
        panel.decimals(decimals)
    if max_value is not None:
        panel.max(max_value)
    return panel


def timeseries_panel(title: str, targets: Sequence[prometheus.Dataquery], *, no_value: str, width: int = 6,
                     height: int = 6, unit: str | None = None, description: str = "", steps: Steps | None = None,
                     decimals: int | None = None, max_value: float | None = None, threshold_lines: bool = False,
                     dashed_legends: Sequence[str] = ()) -> timeseries.Panel:
    """A time series of range queries; ``threshold_lines`` draws the steps as dashed lines and each of
    ``dashed_legends`` (reference series such as "England 2025") is drawn dashed in the text colour."""
    panel = _common(timeseries.Panel(), title, targets, instant=False, width=width, height=height, unit=unit,
                    description=description, no_value=no_value, steps=steps, mappings=(), decimals=decimals,
                    max_value=max_value)
    panel.color_scheme(sdk_dashboard.FieldColor().mode(dashboard.FieldColorModeId.PALETTE_CLASSIC))
    panel.line_width(2).fill_opacity(0).span_nulls(True).thresholds_style(
        sdk_common.GraphThresholdsStyleConfig().mode(
            common.GraphTresholdsStyleMode.DASHED if threshold_lines else common.GraphTresholdsStyleMode.OFF))
    panel.legend(sdk_common.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                 .placement(common.LegendPlacement.BOTTOM).show_legend(True))
    panel.tooltip(sdk_common.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                  .sort(common.SortOrder.DESCENDING))
    for legend in dashed_legends:
        panel.override_by_name(legend, [
            dashboard.DynamicConfigValue(id_val="custom.lineStyle", value=common.LineStyle(fill="dash", dash=[10, 10])),
            dashboard.DynamicConfigValue(id_val="color", value=dashboard.FieldColor(
                mode=dashboard.FieldColorModeId.FIXED, fixed_color=GREY)),
        ])
    return panel


def _last_not_null() -> sdk_common.ReduceDataOptions:
    return sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def stat_panel(title: str, targets: Sequence[prometheus.Dataquery], *, no_value: str, width: int = 4,
               height: int = 5, unit: str | None = None, description: str = "", steps: Steps | None = None,
               mappings: Sequence[dashboard.ValueMapping] = (), decimals: int | None = None) -> stat.Panel:
    """One figure (instant queries, the last value), coloured by its threshold steps."""
    panel = _common(stat.Panel(), title, targets, instant=True, width=width, height=height, unit=unit,
                    description=description, no_value=no_value, steps=steps, mappings=mappings,
                    decimals=decimals, max_value=None)
    panel.color_scheme(sdk_dashboard.FieldColor().mode(dashboard.FieldColorModeId.THRESHOLDS))
    return (panel.reduce_options(_last_not_null()).color_mode(common.BigValueColorMode.BACKGROUND)
            .graph_mode(common.BigValueGraphMode.NONE).text_mode(common.BigValueTextMode.AUTO)
            .justify_mode(common.BigValueJustifyMode.AUTO).orientation(common.VizOrientation.AUTO))


def bargauge_panel(title: str, targets: Sequence[prometheus.Dataquery], *, no_value: str, width: int = 6,
                   height: int = 6, unit: str | None = None, description: str = "", steps: Steps | None = None,
                   mappings: Sequence[dashboard.ValueMapping] = (), decimals: int | None = None) -> bargauge.Panel:
    """One horizontal bar per series (instant queries, the last value)."""
    panel = _common(bargauge.Panel(), title, targets, instant=True, width=width, height=height, unit=unit,
                    description=description, no_value=no_value, steps=steps, mappings=mappings,
                    decimals=decimals, max_value=None)
    panel.color_scheme(sdk_dashboard.FieldColor().mode(dashboard.FieldColorModeId.THRESHOLDS))
    return (panel.reduce_options(_last_not_null()).display_mode(common.BarGaugeDisplayMode.BASIC)
            .orientation(common.VizOrientation.HORIZONTAL).show_unfilled(True))


def row(title: str) -> sdk_dashboard.Row:
    return sdk_dashboard.Row(title).collapsed(False)


def query_variable(name: str, label: str, label_values: str) -> sdk_dashboard.QueryVariable:
    """A multi-value variable from ``label_values(...)``, all selected by default (All = ``.*``)."""
    return (sdk_dashboard.QueryVariable(name).label(label).datasource(DATASOURCE)
            .query({"query": label_values, "refId": f"{name}-variable"})
            .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED).include_all(True).multi(True)
            .all_value(".*").sort(dashboard.VariableSort.ALPHABETICAL_ASC).hide(dashboard.VariableHide.DONT_HIDE)
            .current(dashboard.VariableOption(selected=True, text=["All"], value=["$__all"])).options([]))


def custom_variable(name: str, label: str, options: Sequence[str], default: str | None = None
                    ) -> sdk_dashboard.CustomVariable:
    """A single-value variable from a fixed list of options."""
    value = default or options[0]
    return (sdk_dashboard.CustomVariable(name).label(label).values(",".join(options)).include_all(False)
            .multi(False).hide(dashboard.VariableHide.DONT_HIDE)
            .current(dashboard.VariableOption(selected=True, text=value, value=value))
            .options([dashboard.VariableOption(selected=o == value, text=o, value=o) for o in options]))


def tag_annotation(name: str, tag: str, colour: str) -> sdk_dashboard.AnnotationQuery:
    """Grafana's own annotations carrying ``tag`` (organisation annotations, not a panel's)."""
    return (sdk_dashboard.AnnotationQuery().name(name).enable(True).icon_color(colour)
            .datasource(GRAFANA_ANNOTATIONS)
            .target(sdk_dashboard.AnnotationTarget().type("tags").tags([tag]).match_any(True).limit(100)))


@dataclass
class Board:
    uid: str
    title: str
    description: str
    panels: list[PanelBuilder]
    variables: list[cogbuilder.Builder[dashboard.VariableModel]]
    tags: tuple[str, ...] = ("casewatch",)
    time_from: str = "now-90d"
    refresh: str = "1m"
    folder: str = "casewatch"
    annotations: tuple[cogbuilder.Builder[dashboard.AnnotationQuery], ...] = ()

    def dashboard(self) -> dashboard.Dashboard:
        """The SDK's dashboard model, laid out."""
        board = (sdk_dashboard.Dashboard(self.title).uid(self.uid).description(self.description)
                 .tags(list(self.tags)).timezone("Europe/London").readonly()
                 .tooltip(dashboard.DashboardCursorSync.CROSSHAIR).version(1).refresh(self.refresh)
                 .time(self.time_from, "now").variables(list(self.variables))
                 .annotations(list(self.annotations)).links([]))
        x, y, line_height = 0, 0, 0
        for panel_id, builder in enumerate(self.panels, 1):
            builder.id(panel_id)
            if isinstance(builder, sdk_dashboard.Row):
                y, x, line_height = y + line_height, 0, 0
                board.with_row(builder.grid_pos(dashboard.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)))
                y += 1
                continue
            size = builder.build().grid_pos      # the panel's span and height
            if x + size.w > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            board.with_panel(builder.grid_pos(dashboard.GridPos(h=size.h, w=size.w, x=x, y=y)))
            x += size.w
            line_height = max(line_height, size.h)
        return board.build()

    def render(self) -> dict[str, Any]:
        data = json.loads(json.dumps(self.dashboard(), cls=JSONEncoder))
        # The SDK's VariableModel has no `definition` (the query text Grafana shows in the board's
        # variable list and editor), so it is added to the SDK's output here.
        for variable in data["templating"]["list"]:
            if variable["type"] == "query":
                variable["definition"] = variable["query"]["query"]
        return data
