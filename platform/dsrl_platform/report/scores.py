"""The papers' numbers, computed from finished runs: plain DataFrames, no formatting.

Rows are grouped by algo × env × budget × method × sparsity level; the dense group of the same
algo × env × budget is every comparison's reference. A method listed twice in a spec carries a
variant label and is shown as "method:label" (as the launcher names trials); the reference is
the unlabelled dense method, and published numbers match unlabelled methods only.
The sparsity level is the run's initial overall sparsity rounded to `sparsity_decimals`, so
seeds of one configuration share a row even where λ-based masks differ in the last digits; the
width-matched dense baseline (dense_matched) sits at the level it matches (its sparsity tag).

A run's final return (its score) is the mean of its last evaluations; `Options.score` says how
many (SCORES).

A run whose networks have different sparsity options (actor 50%, critic 90%: "split") has an
overall sparsity that says little about it: Graesser's views by sparsity level (normalised
summary, IQM, probability of improvement) leave such runs to the actor/critic view.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal, get_args

import numpy as np
import pandas as pd

from dsrl_platform.methods import METHODS
from dsrl_platform.report import published, stats
from dsrl_platform.report.data import ExperimentData, params_column, sparsity_option_column

DENSE = "dense"
REF = ["algo", "env", "budget"]  # what a dense reference is shared by
GROUP = [*REF, "method", "level"]  # one table row
AGG = ["algo", "budget", "method", "level"]  # Graesser's aggregates over environments
STD_DDOF = 0  # "mean ± std over seeds": population std, numpy's default
MATCHED_DENSE = "Dense (matched)"  # Graesser et al.'s name for the width-matched dense baseline

Score = Literal["last_final_evals", "last_10_percent"]
SCORES: dict[str, str] = {  # rule -> what it means, for the tables' notes
    "last_final_evals": "mean of the last final_evals evaluations of each run (Sokar et al. 2022: 10)",
    "last_10_percent": "mean of the last 10% of each run's N evaluations, int(0.1·N) and at least one "
                       "(Graesser et al. 2022)",
}
assert set(get_args(Score)) == set(SCORES)


def score_window(score: Score, evaluations: int, final_evals: int) -> int:
    """How many of a run's last evaluations its score averages."""
    return max(1, evaluations // 10) if score == "last_10_percent" else final_evals


def method_label(method: str, variant: str) -> str:
    return f"{method}:{variant}" if variant else method


def is_matched_dense(label: str) -> bool:
    """The label names the width-matched dense baseline (dense_matched, any variant)."""
    method = label.partition(":")[0]
    return method in METHODS and METHODS[method].matches_sparsity


def method_display(label: str) -> str:
    """A method label as tables and figures show it: dense_matched under Graesser's name."""
    method, colon, variant = label.partition(":")
    return (MATCHED_DENSE if is_matched_dense(method) else method) + colon + variant


@dataclass(frozen=True)
class Options:
    score: Score = "last_final_evals"
    sparsity_decimals: int = 2
    bootstrap_reps: int = stats.DEFAULT_REPS
    bootstrap_seed: int = 0
    confidence: float = stats.DEFAULT_CONFIDENCE


class Analysis:
    """Lazily computed views of one experiment's finished runs."""

    def __init__(self, data: ExperimentData, options: Options = Options()):
        self.data, self.options = data, options

    # --- per run --------------------------------------------------------------------------
    @cached_property
    def runs(self) -> pd.DataFrame:
        """Finished runs with level, final_return (the score: the mean of the last score_evals
        evaluations, by `Options.score`) and lca (sum of all evaluation returns / budget; Sokar
        et al. 2022)."""
        runs = self.data.finished_runs().copy()
        runs["method"] = [method_label(m, v) for m, v in zip(runs["method"], runs["variant"])]
        runs = runs.sort_values(["algo", "env", "budget", "method", "seed"], ignore_index=True)
        runs["seed"] = runs["seed"].astype(int)
        runs["budget"] = runs["budget"].astype(int)
        runs["level"] = runs["sparsity"].round(self.options.sparsity_decimals)
        evals = self.data.evals.sort_values(["run_id", "step"])
        per_run = {rid: g["return"].to_numpy() for rid, g in evals.groupby("run_id")}
        empty = np.array([])
        runs["evaluations"] = [per_run.get(r, empty).size for r in runs["run_id"]]
        runs["score_evals"] = [score_window(self.options.score, n, k)
                               for n, k in zip(runs["evaluations"], runs["final_evals"])]
        runs["final_return"] = [
            per_run[r][-k:].mean() if r in per_run else np.nan
            for r, k in zip(runs["run_id"], runs["score_evals"])]
        runs["lca"] = [per_run[r].sum() / b if r in per_run else np.nan
                       for r, b in zip(runs["run_id"], runs["budget"])]
        runs["initial_return"] = [per_run[r][0] if r in per_run else np.nan for r in runs["run_id"]]
        options = runs[[sparsity_option_column(n) for n in self.data.networks]]
        runs["split"] = options.round(self.options.sparsity_decimals).nunique(axis=1) > 1
        return runs

    @cached_property
    def curves(self) -> pd.DataFrame:
        """Evaluation returns of finished runs with their group keys and cumulative FLOPs."""
        keys = self.runs[["run_id", *GROUP, "seed"]]
        curves = self.data.evals.merge(keys, on="run_id").sort_values(["run_id", "step"])
        curves["flops"] = np.nan
        for rid, idx in curves.groupby("run_id").groups.items():
            f = self.data.flops[self.data.flops["run_id"] == rid].sort_values("step")
            if len(f):  # FLOPs are logged every log_every steps: read them off at eval steps
                steps = np.concatenate([[0], f["step"].to_numpy()])
                values = np.concatenate([[0.0], f["flops"].to_numpy()])
                curves.loc[idx, "flops"] = np.interp(curves.loc[idx, "step"], steps, values)
        return curves.reset_index(drop=True)

    def mean_curves(self) -> pd.DataFrame:
        """Per group and step (steps every seed reached): mean, ci (t half-width), seeds, flops."""
        rows = []
        for key, g in self.curves.groupby(GROUP, sort=True):
            wide = g.pivot_table(index="step", columns="run_id", values="return").dropna()
            flops = g.pivot_table(index="step", columns="run_id", values="flops").reindex(wide.index)
            for step, values in zip(wide.index, wide.to_numpy()):
                rows.append((*key, step, values.mean(), stats.mean_ci_halfwidth(values, self.options.confidence),
                             values.size, flops.loc[step].mean()))
        return pd.DataFrame(rows, columns=[*GROUP, "step", "mean", "ci", "seeds", "flops"])

    # --- Sokar's tables -------------------------------------------------------------------
    @cached_property
    def summary(self) -> pd.DataFrame:
        """One row per group: return and LCA (mean, std over seeds), costs absolute (params
        also per network: params_<network>) and relative to dense, steps for the mean curve to
        reach dense's final return."""
        g = self.runs.groupby(GROUP, sort=True)
        per_network = {params_column(n): (params_column(n), "mean") for n in self.data.networks}
        out = g.agg(seeds=("seed", "size"), sparsity=("sparsity", "mean"),
                    return_mean=("final_return", "mean"),
                    return_std=("final_return", lambda s: s.std(ddof=STD_DDOF)),
                    lca_mean=("lca", "mean"), lca_std=("lca", lambda s: s.std(ddof=STD_DDOF)),
                    eval_every=("eval_every", "max"),
                    params=("params_total", "mean"), **per_network,
                    params_with_biases=("params_total_with_biases", "mean"), flops=("train_flops", "mean"),
                    flops_dense_own=("train_flops_dense", "mean"),
                    update_ms=("update_ms", "mean"), update_wall_s=("update_wall_s", "mean")).reset_index()
        dense = out[out["method"] == DENSE].set_index(REF)
        ref = out.set_index(REF).index
        out["dense_return"] = dense["return_mean"].reindex(ref).to_numpy()
        out["params_rel"] = out["params"] / dense["params"].reindex(ref).to_numpy()
        dense_flops = dense["flops"].reindex(ref).to_numpy()
        # Without a dense run, the run's own count of what dense would have spent stands in.
        out["flops_rel"] = out["flops"] / np.where(np.isnan(dense_flops), out["flops_dense_own"], dense_flops)
        out["update_ms_rel"] = out["update_ms"] / dense["update_ms"].reindex(ref).to_numpy()
        out["steps_to_dense"] = self._steps_to_dense(out)
        out["steps_to_dense_frac"] = out["steps_to_dense"] / out["budget"]
        pub = [published.sokar_published(a, m, e, b) for a, m, e, b in
               zip(out["algo"], out["method"], out["env"], out["budget"])]
        out["published_return_mean"] = [p.return_mean if p else np.nan for p in pub]
        out["published_return_std"] = [p.return_std if p else np.nan for p in pub]
        out["published_lca"] = [p.lca if p and every == published.PUBLISHED_EVAL_EVERY else np.nan
                                 for p, every in zip(pub, out["eval_every"])]
        out["published_source"] = [p.source if p else "" for p in pub]
        return out.drop(columns="flops_dense_own")

    def _steps_to_dense(self, summary: pd.DataFrame) -> list[float]:
        """First evaluation step where the mean-over-seeds curve reaches dense's mean final
        return; NaN if never (and for dense itself)."""
        curves = self.mean_curves().groupby(GROUP)
        out = []
        for row in summary.itertuples():
            key = tuple(getattr(row, k) for k in GROUP)
            if row.method == DENSE or np.isnan(row.dense_return) or key not in curves.groups:
                out.append(np.nan)
                continue
            curve = curves.get_group(key)
            reached = curve.loc[curve["mean"] >= row.dense_return, "step"]
            out.append(float(reached.iloc[0]) if len(reached) else np.nan)
        return out

    # --- Graesser's view ------------------------------------------------------------------
    @cached_property
    def normalised(self) -> pd.DataFrame:
        """Per run: score = final_return / dense mean final return (same algo × env × budget).

        Where the dense mean is not positive (e.g. Pendulum) a ratio is meaningless; there the
        score is (R - R0) / (dense - R0), R0 = mean return at step 0 (the untrained policy).
        Runs without a dense reference are left out (column basis says which rule applied).
        """
        runs = self.runs
        dense = runs[runs["method"] == DENSE].groupby(REF)["final_return"].mean()
        start = runs.groupby(REF)["initial_return"].mean()
        idx = runs.set_index(REF).index
        d, r0 = dense.reindex(idx).to_numpy(), start.reindex(idx).to_numpy()
        ratio = d > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(ratio, runs["final_return"] / d, (runs["final_return"] - r0) / (d - r0))
        out = runs[["run_id", *GROUP, "seed", "sparsity", "preset", "split", "final_return"]].copy()
        out["dense_return"], out["score"] = d, score
        out["basis"] = np.where(ratio, "ratio", "from step-0 return")
        return out[np.isfinite(out["score"])].reset_index(drop=True)

    @property
    def by_level(self) -> pd.DataFrame:
        """Normalised scores of the runs with one sparsity for all networks (not split)."""
        return self.normalised[~self.normalised["split"]]

    def normalised_summary(self) -> pd.DataFrame:
        n = self.by_level
        return n.groupby(GROUP, sort=True).agg(
            seeds=("seed", "size"), score_mean=("score", "mean"),
            score_std=("score", lambda s: s.std(ddof=STD_DDOF)), basis=("basis", "first")).reset_index()

    @cached_property
    def iqm(self) -> pd.DataFrame:
        """IQM of normalised scores over runs (not split) of all environments, stratified-
        bootstrap CI."""
        o, rows = self.options, []
        for key, g in self.by_level.groupby(AGG, sort=True):
            by_env = {env: e["score"].to_numpy() for env, e in g.groupby("env")}
            est = stats.iqm_ci(by_env, reps=o.bootstrap_reps, seed=o.bootstrap_seed, confidence=o.confidence)
            algo, budget, method, level = key
            pub = published.graesser_iqm(algo, method, level, list(by_env), budget, o.score, set(g["preset"]))
            rows.append((*key, len(g), len(by_env), est.value, est.low, est.high,
                         np.nan if pub is None else pub))
        return pd.DataFrame(rows, columns=[*AGG, "runs", "envs", "iqm", "ci_low", "ci_high",
                                           "published_iqm"])

    @cached_property
    def improvement(self) -> pd.DataFrame:
        """P(method > dense) on final returns, per environment then averaged, bootstrap CI
        (runs that are not split)."""
        o, runs, rows = self.options, self.runs[~self.runs["split"]], []
        dense = runs[runs["method"] == DENSE]
        for key, g in runs[runs["method"] != DENSE].groupby(AGG, sort=True):
            algo, budget = key[0], key[1]
            ref = dense[(dense["algo"] == algo) & (dense["budget"] == budget)]
            x = {env: e["final_return"].to_numpy() for env, e in g.groupby("env")}
            y = {env: e["final_return"].to_numpy() for env, e in ref.groupby("env")}
            if not set(x) & set(y):
                continue
            est = stats.probability_of_improvement(x, y, reps=o.bootstrap_reps,
                                                   seed=o.bootstrap_seed, confidence=o.confidence)
            rows.append((*key, len(set(x) & set(y)), est.value, est.low, est.high))
        return pd.DataFrame(rows, columns=[*AGG, "envs", "p_improvement", "ci_low", "ci_high"])

    # --- Graesser's actor/critic study ------------------------------------------------------
    def split_networks(self, algo: str) -> tuple[str, str] | None:
        """The two networks of `algo` with their own sparsity option (the actor first: x axis)."""
        runs = self.runs[self.runs["algo"] == algo]
        nets = [n for n in self.data.networks if runs[sparsity_option_column(n)].notna().any()]
        return (nets[0], nets[1]) if len(nets) >= 2 else None

    @cached_property
    def actor_critic(self) -> pd.DataFrame:
        """IQM of normalised scores per cell of (actor sparsity, critic or value sparsity), for
        each algo × budget × method with split runs (Graesser et al.:
        "the critic needs most of the parameters"); stratified-bootstrap CI per cell.

        Cells are the resolved options `<network>_sparsity` rounded to `sparsity_decimals`.
        """
        o, rows = self.options, []
        for algo in sorted(self.runs["algo"].unique()):
            pair = self.split_networks(algo)
            if pair is None:
                continue
            x, y = (sparsity_option_column(n) for n in pair)
            n = self.normalised.merge(self.runs[["run_id", x, y]], on="run_id")
            n = n[n["algo"] == algo].dropna(subset=[x, y]).round({x: o.sparsity_decimals, y: o.sparsity_decimals})
            for (budget, method), g in n.groupby(["budget", "method"], sort=True):
                if not g["split"].any():  # one sparsity for both networks: the level views say it all
                    continue
                for (xs, ys), cell in g.groupby([x, y], sort=True):
                    by_env = {env: e["score"].to_numpy() for env, e in cell.groupby("env")}
                    est = stats.iqm_ci(by_env, reps=o.bootstrap_reps, seed=o.bootstrap_seed,
                                       confidence=o.confidence)
                    rows.append((algo, budget, method, *pair, xs, ys, len(cell), len(by_env),
                                 est.value, est.low, est.high))
        return pd.DataFrame(rows, columns=["algo", "budget", "method", "x_network", "y_network", "x_sparsity",
                                           "y_sparsity", "runs", "envs", "iqm", "ci_low", "ci_high"])
