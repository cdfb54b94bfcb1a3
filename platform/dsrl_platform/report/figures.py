"""The report's figures as PNG bytes: a registry name -> builder returning one figure per algo.

Drawn on `matplotlib.figure.Figure` with the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

from dsrl_platform.report import stats
from dsrl_platform.report.scores import DENSE, GROUP, Analysis, method_display

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
    text = method if method == DENSE else f"{method_display(method)} {100 * level:.0f}%"
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


def _by_level(ax, frame: pd.DataFrame, value: str, reference: float | None) -> None:
    """`value` (with ci_low/ci_high) of each method at its sparsity levels, evenly spaced as in
    Graesser et al.'s plots; dense, at 0%, as a line with its band across every level."""
    levels = sorted(frame.loc[frame["method"] != DENSE, "level"].unique())
    at = {level: i for i, level in enumerate(levels)}
    colours = _colours([(m,) for m in frame["method"].unique()])
    styles, budgets = _line_styles(frame["budget"].unique()), frame["budget"].nunique()
    for (budget, method), g in frame.groupby(["budget", "method"], sort=True):
        g = g.sort_values("level")
        colour, style = colours[(method,)], styles[budget]
        label = method_display(method) if budgets == 1 else f"{method_display(method)} ({budget:,} steps)"
        if method == DENSE:
            ax.axhline(g[value].iloc[0], color=colour, ls=style, lw=1.2, label=label)
            ax.axhspan(g["ci_low"].iloc[0], g["ci_high"].iloc[0], color=colour, alpha=0.08, lw=0)
            continue
        x = [at[level] for level in g["level"]]
        ax.plot(x, g[value], color=colour, ls=style, marker="o", label=label)
        ax.fill_between(x, g["ci_low"], g["ci_high"], color=colour, alpha=0.2, lw=0)
    if reference is not None:
        ax.axhline(reference, color="black", ls=":", lw=0.8)
    ax.set_xticks(range(len(levels)), [f"{100 * level:g}" for level in levels])
    ax.set_xlabel("sparsity (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def _per_algo_by_level(frame: pd.DataFrame, value: str, stem: str, title: str, ylabel: str,
                       reference: float | None, caption: str) -> list[Figure]:
    out = []
    for algo, by_algo in frame.groupby("algo", sort=True):
        fig, (ax,) = _panels(1, f"{algo}: {title}")
        _by_level(ax, by_algo, value, reference)
        ax.set_ylabel(ylabel)
        out.append(Figure(f"{stem}_{algo}", f"{algo}: {title}", _png(fig), caption))
    return out


def return_vs_sparsity(a: Analysis) -> list[Figure]:
    conf = f"{100 * a.options.confidence:g}%"
    return _per_algo_by_level(
        a.iqm, "iqm", "return_vs_sparsity", "normalised return vs sparsity", "IQM of normalised return", 1.0,
        f"IQM of dense-normalised scores over runs and environments per method and sparsity level "
        f"(Dense (matched) at the level it matches); band: {conf} stratified-bootstrap CI; solid black: "
        f"dense with its CI; dotted: 1.")


def improvement_vs_sparsity(a: Analysis) -> list[Figure]:
    conf = f"{100 * a.options.confidence:g}%"
    return _per_algo_by_level(
        a.improvement, "p_improvement", "improvement_vs_sparsity", "probability of improvement over dense",
        "P(method > dense)", 0.5,
        f"Probability that a run of the method scores above a run of dense, per environment and averaged; "
        f"band: {conf} stratified-bootstrap CI; dotted: 0.5 (no difference).")


def final_return_vs_sparsity(a: Analysis) -> list[Figure]:
    """Per environment: the mean score over seeds against sparsity, t-interval band (runs
    that are not split, as the other views by level)."""
    conf = a.options.confidence
    rows = []
    for key, scores in a.runs[~a.runs["split"]].groupby(GROUP, sort=True)["final_return"]:
        mean, half = scores.mean(), stats.mean_ci_halfwidth(scores, conf)
        rows.append((*key, mean, mean - half, mean + half))
    frame = pd.DataFrame(rows, columns=[*GROUP, "mean", "ci_low", "ci_high"])
    out = []
    for algo, by_algo in frame.groupby("algo", sort=True):
        envs = sorted(by_algo["env"].unique())
        fig, axes = _panels(len(envs), f"{algo}: return vs sparsity")
        for ax, env in zip(axes, envs):
            _by_level(ax, by_algo[by_algo["env"] == env], "mean", None)
            ax.set_title(env)
            ax.set_ylabel("score (evaluation return)")
        out.append(Figure(f"final_return_vs_sparsity_{algo}", f"{algo}: return vs sparsity", _png(fig),
                          f"Mean score over seeds per method and sparsity level; band: "
                          f"{100 * conf:g}% t-interval of the mean; black line: dense."))
    return out


def actor_critic_heatmap(a: Analysis) -> list[Figure]:
    """Graesser et al.'s actor/critic study: IQM of normalised scores per sparsity cell."""
    out = []
    for algo, by_algo in a.actor_critic.groupby("algo", sort=True):
        panels = list(by_algo.groupby(["budget", "method"], sort=True))
        x_net, y_net = by_algo["x_network"].iloc[0], by_algo["y_network"].iloc[0]
        title = f"{algo}: {y_net} vs {x_net} sparsity"
        fig, axes = _panels(len(panels), title)
        budgets = by_algo["budget"].nunique()
        for ax, ((budget, method), g) in zip(axes, panels):
            xs, ys = sorted(g["x_sparsity"].unique()), sorted(g["y_sparsity"].unique())
            grid = g.pivot_table(index="y_sparsity", columns="x_sparsity", values="iqm").reindex(index=ys, columns=xs)
            image = ax.imshow(np.ma.masked_invalid(grid.to_numpy()), origin="lower", cmap="viridis", aspect="auto")
            for (i, j), v in np.ndenumerate(grid.to_numpy()):
                if np.isfinite(v):  # light text on viridis' dark half
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize="small",
                            color="white" if image.norm(v) < 0.5 else "black")
            ax.set_xticks(range(len(xs)), [f"{100 * x:g}" for x in xs])
            ax.set_yticks(range(len(ys)), [f"{100 * y:g}" for y in ys])
            ax.set_xlabel(f"{x_net} sparsity (%)")
            ax.set_ylabel(f"{y_net} sparsity (%)")
            ax.set_title(method_display(method) + (f" ({budget:,} steps)" if budgets > 1 else ""))
            fig.colorbar(image, ax=ax, label="IQM of normalised return")
        out.append(Figure(f"actor_critic_{algo}", title, _png(fig),
                          "IQM of dense-normalised scores over runs and environments per cell of "
                          f"{x_net} × {y_net} sparsity (Graesser et al. 2022: the critic needs most of "
                          "the parameters); CIs in the 'Actor vs critic sparsity' table."))
    return out


FIGURES: dict[str, Callable[[Analysis], list[Figure]]] = {
    "learning_curves": learning_curves,
    "return_vs_flops": return_vs_flops,
    "return_vs_sparsity": return_vs_sparsity,
    "improvement_vs_sparsity": improvement_vs_sparsity,
    "final_return_vs_sparsity": final_return_vs_sparsity,
    "actor_critic_heatmap": actor_critic_heatmap,
}


def _register_beyond() -> None:
    """Issue 14's figures (dormant neurons, scaling grids) live in report/beyond.py."""
    from dsrl_platform.report.beyond import FIGURES as beyond

    FIGURES.update(beyond)


_register_beyond()
