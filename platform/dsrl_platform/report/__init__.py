"""Reports: MLflow runs of an experiment → the papers' tables, statistics, figures and HTML.

data (MLflow → pandas) → scores (per run / per group numbers) → tables, figures →
render (CSV, Markdown, LaTeX) and dashboard (index.html) → build (the `report` command).
"""
