"""Study reports built from run directories only: figures, tables, Markdown and HTML.

Modules: `collect` (read run directories into results), `series` (plot data, no drawing),
`figures` (draw plot data with matplotlib, data saved beside each PNG), `tables` (the results
table), `document` (the report as data), `markdown` and `htmldoc` (renderers), `mdhtml` (HTML
tables and the markdown subset of task sections), `build` (all of it for one study).
Nothing here trains, evaluates or imports torch.
"""

from dlab.reports.build import ReportResult, build_report, default_out_dir

__all__ = ["ReportResult", "build_report", "default_out_dir"]
