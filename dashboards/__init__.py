"""casewatch Grafana boards as code, and the ratio recording rules they share with the alerts."""
from dashboards.build import panel_queries

__all__ = ["panel_queries"]
