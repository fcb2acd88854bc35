"""casewatch: live volume, timeliness and workload-pressure figures for children's social care."""

__version__ = "0.1.0"
