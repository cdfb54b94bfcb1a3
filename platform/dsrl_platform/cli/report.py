"""`dsrl-platform report`: tables, figures and a dashboard (the work is in dsrl_platform.report.build)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dsrl_platform.cli import tracking_arg

HELP = "turn an experiment's tracked runs into the papers' tables and figures"

DEFAULT_DASHBOARD = Path("dashboards/sokar2022.yaml")
DEFAULT_OUT_ROOT = Path("reports")
# The shipped dashboards, found from any working directory (editable install / checkout).
REPO_DASHBOARDS = Path(__file__).resolve().parents[3] / "dashboards"


def dashboard_path(value: Path) -> Path:
    """As given if it exists; else a shipped dashboard: 'graesser2022' or 'dashboards/x.yaml'."""
    if value.exists() or value.is_absolute():
        return value
    for candidate in (REPO_DASHBOARDS / value.name, REPO_DASHBOARDS / f"{value.name}.yaml"):
        if candidate.is_file():
            return candidate
    return value  # load_dashboard names the missing file


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", metavar="EXPERIMENT", help="MLflow experiment name (the spec's name)")
    p.add_argument("--dashboard", type=Path, default=DEFAULT_DASHBOARD,
                   help="dashboard YAML: which tables and figures; a shipped one also by name, e.g. "
                        f"graesser2022 (default: {DEFAULT_DASHBOARD})")
    p.add_argument("--out", type=Path, help=f"output directory (default: {DEFAULT_OUT_ROOT}/<EXPERIMENT>)")
    tracking_arg(p)


def handle(args: argparse.Namespace) -> int:
    from dsrl_platform.tracking import check_store

    tracking_uri = check_store(args.tracking_uri, must_exist=True)  # before the plotting libraries load

    from dsrl_platform.report.build import INDEX, build_report

    result = build_report(args.experiment, dashboard=dashboard_path(args.dashboard),
                          out=args.out or DEFAULT_OUT_ROOT / args.experiment,
                          tracking_uri=tracking_uri)
    print(f"report: {result.finished_runs} finished runs, {result.unfinished_runs} unfinished "
          "(listed, excluded from statistics)")
    print(f"wrote {len(result.files)} files to {result.out_dir}")
    print(f"open {result.out_dir / INDEX}")
    if result.parent_run_id:
        print(f"logged as artifacts '{result.artifact_path}' of run {result.parent_run_id}")
    return 0
