"""Figures beyond the two papers (issue 14): dormant neurons over training (Sokar et al. 2023),
and return against network width and against nonzero parameters (scaling grids: Obando-Ceron,
Courville, Castro 2024, "In value-based deep RL, a pruned network is a good network").

They need what the tables do not read: each run's `width` param and its dormant-neuron
histories (names.DORMANT_PREFIX + network), fetched through the same tracking client — one
more search of the experiment's trial runs, and a history per run and network. Registered in
figures.FIGURES (imported from there: this module imports figures' helpers only when drawing).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import pandas as pd

from dsrl_platform import names
from dsrl_platform.report import stats

if TYPE_CHECKING:
    from dsrl_platform.report.figures import Figure
    from dsrl_platform.report.scores import Analysis

_WORKERS = 4  # history calls in flight (data.py's choice)
_TRIALS: WeakKeyDictionary = WeakKeyDictionary()  # Analysis -> {run_id: MLflow run}


def _trial_runs(a: Analysis) -> dict[str, Any]:
    if a not in _TRIALS:
        from dsrl_platform.tracking import Tracker

        tracker = Tracker.connect(a.data.tracking_uri)
        _TRIALS[a] = {r.info.run_id: r for r in tracker.all_trial_runs(a.data.experiment_id)}
    return _TRIALS[a]


def runs_with_width(a: Analysis) -> pd.DataFrame:
    """The finished runs (Analysis.runs) with their `width` multiplier (1 where not logged)."""
    trials = _trial_runs(a)
    runs = a.runs.copy()
    runs["width"] = [float(trials[r].data.params.get("width", 1.0)) if r in trials else 1.0 for r in runs["run_id"]]
    return runs


def dormant_histories(a: Analysis) -> pd.DataFrame:
    """run_id, network, step, fraction: every finished run's τ-dormant fraction per network
    (the value logged last wins at a step, as for returns)."""
    from dsrl_platform.report.data import dedupe_steps
    from dsrl_platform.tracking import Tracker

    trials = _trial_runs(a)
    wanted = [(rid, key) for rid in a.runs["run_id"] if rid in trials for key in trials[rid].data.metrics
              if key.startswith(names.DORMANT_PREFIX) and "." not in key[len(names.DORMANT_PREFIX):]]
    tracker = Tracker.connect(a.data.tracking_uri)

    def one(item: tuple[str, str]) -> pd.DataFrame:
        rid, key = item
        history = pd.DataFrame(tracker.metric_history(rid, key), columns=["step", "timestamp", "fraction"])
        return dedupe_steps(history).assign(run_id=rid, network=key[len(names.DORMANT_PREFIX):])

    with ThreadPoolExecutor(_WORKERS) as pool:
        frames = [f for f in pool.map(one, wanted) if len(f)]
    columns = ["run_id", "network", "step", "fraction"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _mean_ci(values: pd.Series, confidence: float) -> tuple[float, float]:
    v = values.to_numpy(dtype=float)
    return float(v.mean()), float(stats.mean_ci_halfwidth(v, confidence)) if v.size > 1 else 0.0


def _scaling_points(a: Analysis) -> pd.DataFrame:
    """Per algo × env × budget × method × level × width: final return (mean, CI half-width over
    seeds) and nonzero parameters (mean)."""
    rows = []
    for key, g in runs_with_width(a).groupby(["algo", "env", "budget", "method", "level", "width"], sort=True):
        mean, ci = _mean_ci(g["final_return"], a.options.confidence)
        rows.append((*key, mean, ci, float(g["params_total"].mean()), len(g)))
    return pd.DataFrame(rows, columns=["algo", "env", "budget", "method", "level", "width", "mean", "ci",
                                       "params", "seeds"])


def _scaling_figure(a: Analysis, x: str, stem: str, title: str, xlabel: str, caption: str) -> list[Figure]:
    from dsrl_platform.report.figures import Figure, _colours, _label, _panels, _png

    points = _scaling_points(a)
    out = []
    for algo, by_algo in points.groupby("algo", sort=True):
        envs = sorted(by_algo["env"].unique())
        colours = _colours(list(by_algo[["method", "level"]].drop_duplicates().itertuples(index=False, name=None)))
        budgets = by_algo["budget"].nunique()
        fig, axes = _panels(len(envs), f"{algo}: {title}")
        for ax, env in zip(axes, envs):
            for (budget, method, level), g in by_algo[by_algo["env"] == env].groupby(["budget", "method", "level"]):
                g = g.sort_values("width")
                ax.errorbar(g[x], g["mean"], yerr=g["ci"], color=colours[(method, level)], marker="o", capsize=3,
                            label=_label(method, level, budget, budgets))
            ax.set_xscale("log", base=2 if x == "width" else 10)
            if x == "width":  # the grid's multipliers as plain numbers
                ticks = sorted(by_algo["width"].unique())
                ax.set_xticks(ticks, [f"{w:g}" for w in ticks])
                ax.minorticks_off()
            ax.set_title(env)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("final return")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize="small")
        out.append(Figure(f"{stem}_{algo}", f"{algo}: {title}", _png(fig), caption))
    return out


def return_vs_width(a: Analysis) -> list[Figure]:
    conf = f"{100 * a.options.confidence:g}%"
    return _scaling_figure(a, "width", "return_vs_width", "final return vs width", "width multiplier",
                           f"Final return (mean over seeds; bars: {conf} t-interval) against the width multiplier of "
                           f"every hidden layer, one line per method and sparsity (Obando-Ceron et al. 2024).")


def return_vs_params(a: Analysis) -> list[Figure]:
    conf = f"{100 * a.options.confidence:g}%"
    return _scaling_figure(a, "params", "return_vs_params", "final return vs nonzero parameters",
                           "nonzero weights (every trained network, no biases)",
                           f"Final return (mean over seeds; bars: {conf} t-interval) against the nonzero weights at the "
                           f"end of training; the points of a line are its widths.")


def dormant_fraction(a: Analysis) -> list[Figure]:
    """τ-dormant fraction of each network over training, mean over seeds and environments."""
    from dsrl_platform.report.figures import Figure, _colours, _label, _panels, _png
    from dsrl_platform.report.scores import GROUP

    histories = dormant_histories(a)
    if histories.empty:
        return []
    keys = a.runs[["run_id", *GROUP]]
    merged = histories.merge(keys, on="run_id")
    out = []
    for algo, by_algo in merged.groupby("algo", sort=True):
        networks = sorted(by_algo["network"].unique())
        colours = _colours(list(by_algo[["method", "level"]].drop_duplicates().itertuples(index=False, name=None)))
        budgets = by_algo["budget"].nunique()
        fig, axes = _panels(len(networks), f"{algo}: dormant neurons")
        for ax, network in zip(axes, networks):
            for (budget, method, level), g in by_algo[by_algo["network"] == network].groupby(["budget", "method", "level"]):
                curve = g.groupby("step")["fraction"].mean()
                ax.plot(curve.index, 100 * curve.to_numpy(), color=colours[(method, level)],
                        label=_label(method, level, budget, budgets))
            ax.set_title(network)
            ax.set_xlabel("environment steps")
            ax.set_ylabel("τ-dormant neurons (%)")
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize="small")
        out.append(Figure(f"dormant_fraction_{algo}", f"{algo}: dormant neurons", _png(fig),
                          "Share of each network's hidden units that are τ-dormant (normalised mean |activation| ≤ τ "
                          "on the latest training batch; Sokar et al. 2023), mean over seeds and environments."))
    return out


FIGURES = {"return_vs_width": return_vs_width, "return_vs_params": return_vs_params,
           "dormant_fraction": dormant_fraction}
