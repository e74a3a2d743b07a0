"""The study report: report.md and a self-contained report.html with every table and figure the runs support."""

from vptlab.report.build import ReportFiles, ReportOptions, build_report

__all__ = ["ReportFiles", "ReportOptions", "build_report"]
