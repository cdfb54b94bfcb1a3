"""Dashboards: which tables and figures a report shows (dashboards/*.yaml), and its index.html.

The page is self-contained: CSS inline, figures as base64 PNG data URIs, no scripts, no
network; it opens offline from disk and in MLflow's artifact viewer.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from dsrl_platform.config import first_error
from dsrl_platform.yamlfile import read_mapping
from dsrl_platform.report import stats
from dsrl_platform.report.figures import FIGURES, Figure
from dsrl_platform.report.render import html_fragment
from dsrl_platform.report.scores import SCORES, Options, Score
from dsrl_platform.report.tables import TABLES, Table


def _known(kind: str, registry: dict):
    def check(name: str) -> str:
        if name not in registry:
            raise ValueError(f"unknown {kind} {name!r} (known: {', '.join(registry)})")
        return name
    return AfterValidator(check)


TableName = Annotated[str, _known("table", TABLES)]
FigureName = Annotated[str, _known("figure", FIGURES)]


class DashboardSpec(BaseModel):
    """One dashboard: its tables and figures in order, and the statistics' settings."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="short id; artifacts go under report/<name>")
    title: str = Field(description="heading of the page")
    description: str = Field("", description="a paragraph under the heading")
    tables: list[TableName] = Field(default_factory=list, description=f"tables in order, from: {', '.join(TABLES)}")
    figures: list[FigureName] = Field(default_factory=list, description=f"figures in order, from: {', '.join(FIGURES)}")
    score: Score = Field("last_final_evals", description="a run's score: " + "; ".join(f"{k}: {v}" for k, v in SCORES.items()))
    sparsity_decimals: int = Field(2, ge=0, le=6,
                                   description="runs whose sparsity rounds to the same value share a row")
    bootstrap_reps: int = Field(stats.DEFAULT_REPS, ge=2000, description="stratified-bootstrap replicates")
    bootstrap_seed: int = Field(0, ge=0, description="seed of the bootstrap: the same report twice gives the same CIs")
    confidence: float = Field(stats.DEFAULT_CONFIDENCE, gt=0, lt=1, description="level of confidence intervals")

    def options(self) -> Options:
        return Options(self.score, self.sparsity_decimals, self.bootstrap_reps, self.bootstrap_seed, self.confidence)


def load_dashboard(path: Path) -> DashboardSpec:
    """Read and validate a dashboard YAML; mistakes raise ValueError naming file and key."""
    raw = read_mapping(path, f"dashboard {path}", "name, title, tables, figures")
    try:
        return DashboardSpec.model_validate(raw)
    except ValidationError as err:
        raise ValueError(first_error(err, prefix=f"dashboard {path}: ")) from None


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#222}
h1{margin-bottom:.2rem} .meta{color:#666;font-size:.9rem}
nav a{margin-right:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:left;white-space:nowrap;
font-variant-numeric:tabular-nums} th{background:#f4f4f4}
.note{color:#555;font-size:.85rem;margin:.2rem 0} .files{font-size:.85rem}
figure{margin:1rem 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.85rem} section{margin-bottom:2rem;overflow-x:auto}
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_fragment(f: Figure) -> str:
    e = html.escape
    return (f'<section class="figure" id="figure-{e(f.name)}"><h2>{e(f.title)}</h2><figure>'
            f'<img src="{data_uri(f.png)}" alt="{e(f.title)}">'
            f'<figcaption>{e(f.caption)} <a href="figures/{e(f.name)}.png">png</a></figcaption>'
            f"</figure></section>")


def render_page(spec: DashboardSpec, experiment: str, tables: list[Table], figures: list[Figure],
                counts: dict[str, int]) -> str:
    """The whole index.html as one string."""
    e = html.escape
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    nav = "".join(f'<a href="#table-{e(t.name)}">{e(t.title)}</a>' for t in tables)
    nav += "".join(f'<a href="#figure-{e(f.name)}">{e(f.title)}</a>' for f in figures)
    body = "".join(html_fragment(t) for t in tables)
    body += "".join(_figure_fragment(f) for f in figures)
    if not figures:
        body += '<section><h2>Figures</h2><p class="empty">No finished runs to plot.</p></section>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{e(spec.title)}: {e(experiment)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{e(spec.title)}</h1>"
        f'<p class="meta">experiment <b>{e(experiment)}</b> · dashboard {e(spec.name)} · '
        f"{e(summary)} · generated {now}</p>"
        + (f"<p>{e(spec.description)}</p>" if spec.description else "")
        + f"<nav>{nav}</nav></header><main>{body}</main></body></html>\n"
    )
