"""The report's figures as PNG bytes: a registry name -> builder returning one figure per algo.

Drawn on `matplotlib.figure.Figure` with the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

from dsrl_platform.report.scores import DENSE, GROUP, Analysis

DPI = 100
PANEL = (4.2, 3.0)  # inches per subplot
MAX_COLUMNS = 3


@dataclass
class Figure:
    name: str  # file stem, e.g. learning_curves_td3
    title: str
    png: bytes
    caption: str


def _png(fig: MplFigure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _label(method: str, level: float, budget: int, budgets: int) -> str:
    text = method if method == DENSE else f"{method} {100 * level:.0f}%"
    return f"{text} ({budget:,} steps)" if budgets > 1 else text


def _colours(keys: list[tuple]) -> dict[tuple, str]:
    """Dense black, every other key (method, ...) its own tab10 colour, stable across panels."""
    others = sorted({k for k in keys if k[0] != DENSE})
    return {**{k: "black" for k in keys if k[0] == DENSE},
            **{k: f"C{i % 10}" for i, k in enumerate(others)}}


LINE_STYLES = ("-", "--", ":", "-.")


def _line_styles(budgets) -> dict[int, str]:
    """One line style per budget (colour already says the method)."""
    return {b: LINE_STYLES[i % len(LINE_STYLES)] for i, b in enumerate(sorted(budgets))}


def _panels(n: int, title: str) -> tuple[MplFigure, list]:
    cols = min(n, MAX_COLUMNS)
    rows = -(-n // cols)
    fig = MplFigure(figsize=(PANEL[0] * cols, PANEL[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, list(axes[:n])


def _per_env_curves(a: Analysis, x: str, stem: str, title: str, xlabel: str, caption: str) -> list[Figure]:
    curves = a.mean_curves()
    out = []
    for algo, by_algo in curves.groupby("algo", sort=True):
        envs = sorted(by_algo["env"].unique())
        colours = _colours(list(by_algo[["method", "level"]].drop_duplicates().itertuples(index=False, name=None)))
        budgets = by_algo["budget"].nunique()
        styles = _line_styles(by_algo["budget"].unique())
        fig, axes = _panels(len(envs), f"{algo}: {title}")
        for ax, env in zip(axes, envs):
            for key, g in by_algo[by_algo["env"] == env].groupby(GROUP, sort=True):
                _, _, budget, method, level = key
                colour = colours[(method, level)]
                ax.plot(g[x], g["mean"], color=colour, linestyle=styles[budget],
                        label=_label(method, level, budget, budgets))
                ax.fill_between(g[x], g["mean"] - g["ci"], g["mean"] + g["ci"], color=colour, alpha=0.2, lw=0)
            ax.set_title(env)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("evaluation return")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize="small")
        out.append(Figure(f"{stem}_{algo}", f"{algo}: {title}", _png(fig), caption))
    return out


def learning_curves(a: Analysis) -> list[Figure]:
    conf = f"{100 * a.options.confidence:g}%"
    return _per_env_curves(a, "step", "learning_curves", "learning curves", "environment steps",
                           f"Mean evaluation return over seeds; band: {conf} t-interval of the mean.")


def return_vs_flops(a: Analysis) -> list[Figure]:
    return _per_env_curves(a, "flops", "return_vs_flops", "return vs training FLOPs",
                           "cumulative training FLOPs",
                           "Mean evaluation return over seeds against cumulative training FLOPs "
                           "(mean over seeds) at the same step.")


def return_vs_sparsity(a: Analysis) -> list[Figure]:
    iqm = a.iqm
    conf = f"{100 * a.options.confidence:g}%"
    out = []
    for algo, by_algo in iqm.groupby("algo", sort=True):
        fig, (ax,) = _panels(1, f"{algo}: normalised return vs sparsity")
        colours = _colours([(m,) for m in by_algo["method"].unique()])
        budgets = by_algo["budget"].nunique()
        for (budget, method), g in by_algo.groupby(["budget", "method"], sort=True):
            g = g.sort_values("level")
            colour = colours[(method,)]
            yerr = np.vstack([g["iqm"] - g["ci_low"], g["ci_high"] - g["iqm"]])
            label = method if budgets == 1 else f"{method} ({budget:,} steps)"
            ax.errorbar(100 * g["level"], g["iqm"], yerr=yerr, color=colour, marker="o", capsize=3, label=label)
        ax.axhline(1.0, color="black", ls="--", lw=0.8)
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel("IQM of normalised return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        out.append(Figure(f"return_vs_sparsity_{algo}", f"{algo}: normalised return vs sparsity", _png(fig),
                          f"IQM of dense-normalised final returns over runs and environments; bars: "
                          f"{conf} stratified-bootstrap CI; dashed: dense = 1."))
    return out


FIGURES: dict[str, Callable[[Analysis], list[Figure]]] = {
    "learning_curves": learning_curves,
    "return_vs_flops": return_vs_flops,
    "return_vs_sparsity": return_vs_sparsity,
}


def _register_beyond() -> None:
    """Issue 14's figures (dormant neurons, scaling grids) live in report/beyond.py."""
    from dsrl_platform.report.beyond import FIGURES as beyond

    FIGURES.update(beyond)


_register_beyond()
