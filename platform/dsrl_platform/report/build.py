"""`dsrl-platform report`: experiment runs → tables, figures and index.html in one directory.

Everything is written to a temporary sibling directory first and moved into place at the end,
so an error leaves the previous report (or nothing) rather than half a report. The finished
directory is then logged as artifacts of the experiment's newest launch run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dsrl_platform.paths import check_can_be_directory
from dsrl_platform.report.dashboard import DashboardSpec, load_dashboard, render_page
from dsrl_platform.report.data import load_experiment, log_report_artifacts
from dsrl_platform.report.figures import FIGURES, Figure
from dsrl_platform.report.render import write_table
from dsrl_platform.report.scores import Analysis
from dsrl_platform.report.tables import ALWAYS, TABLES, Table

INDEX = "index.html"
ARTIFACT_ROOT = "report"


@dataclass
class ReportResult:
    out_dir: Path
    files: list[Path]  # relative to out_dir
    parent_run_id: str | None
    artifact_path: str
    finished_runs: int
    unfinished_runs: int


def build_report(experiment: str, *, dashboard: Path, out: Path, tracking_uri: str,
                 log_artifacts: bool = True) -> ReportResult:
    spec = load_dashboard(dashboard)
    out = Path(out).resolve()
    _check_replaceable(out)
    _check_writable(out)
    data = load_experiment(experiment, tracking_uri)
    analysis = Analysis(data, spec.options())
    tables = [TABLES[name](analysis) for name in _table_names(spec)]
    figures = [f for name in spec.figures for f in FIGURES[name](analysis)]
    counts = {"finished runs": len(data.finished_runs()), "unfinished runs": len(data.unfinished_runs())}

    _make_parent(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write in {out.parent} ({err.strerror or err})") from None
    try:
        files = _write(tmp, spec, experiment, tables, figures, counts)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    artifact_path = f"{ARTIFACT_ROOT}/{spec.name}"
    run_id = log_report_artifacts(experiment, tracking_uri, out, artifact_path) if log_artifacts else None
    return ReportResult(out, files, run_id, artifact_path, *counts.values())


def _table_names(spec: DashboardSpec) -> list[str]:
    return [*spec.tables, *(n for n in ALWAYS if n not in spec.tables)]


def _write(root: Path, spec: DashboardSpec, experiment: str, tables: list[Table],
           figures: list[Figure], counts: dict[str, int]) -> list[Path]:
    files: list[Path] = []
    for t in tables:
        files += write_table(t, root / "tables")
    (root / "figures").mkdir()
    for f in figures:
        path = root / "figures" / f"{f.name}.png"
        path.write_bytes(f.png)
        files.append(path)
    index = root / INDEX
    index.write_text(render_page(spec, experiment, tables, figures, counts), encoding="utf-8")
    files.append(index)
    return [p.relative_to(root) for p in files]


def _check_replaceable(out: Path) -> None:
    """Only an empty directory or an earlier report may be replaced (never, say, '.')."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / INDEX).is_file())):
        raise ValueError(f"--out {out}: exists and is not a report directory (no {INDEX}); "
                         "choose another directory")


def _check_writable(out: Path) -> None:
    """Before reading the store: `out` can be created, or replaced, by renames in its parent."""
    check_can_be_directory(out.parent, f"--out {out}")
    if out.exists() and not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: is not writable")


def _make_parent(out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot create {out.parent} ({err.strerror or err})") from None


def _move_into_place(tmp: Path, out: Path) -> None:
    """Swap `tmp` in for `out` by renames within one directory; on failure `out` is as it was."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
