"""The report's tables: a registry name -> builder, each returning raw numbers and a display.

`Table.data` keeps full precision (written as CSV); `Table.display` holds formatted strings
(Markdown, LaTeX, HTML). Dashboards name the tables they show (dashboards/*.yaml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dsrl_platform.progress import duration
from dsrl_platform.report import published
from dsrl_platform.report.data import params_column, sparsity_option_column
from dsrl_platform.report.scores import (MATCHED_DENSE, SCORES, STD_DDOF, Analysis, is_matched_dense, method_display,
                                         method_label)

DASH = "—"
PUBLISHED_MARK = "(published)"


@dataclass
class Table:
    name: str
    title: str
    data: pd.DataFrame
    display: pd.DataFrame
    notes: list[str] = field(default_factory=list)


# --- formatting -----------------------------------------------------------------------------
def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and np.isnan(x))


def fmt(x, decimals: int = 2) -> str:
    return DASH if _missing(x) else f"{x:,.{decimals}f}"


def fmt_pm(mean, std, decimals: int = 2) -> str:
    return DASH if _missing(mean) else f"{mean:,.{decimals}f} ± {std:,.{decimals}f}"


def fmt_int(x) -> str:
    return DASH if _missing(x) else f"{round(x):,}"


def fmt_sci(x) -> str:
    return DASH if _missing(x) else f"{x:.2e}".replace("e+", "e")


def fmt_rel(x) -> str:
    return DASH if _missing(x) else f"{x:.2f}×"


def fmt_pct(x, decimals: int = 1) -> str:
    return DASH if _missing(x) else f"{100 * x:.{decimals}f}%"


def fmt_ci(low, high, decimals: int = 2) -> str:
    return DASH if _missing(low) else f"[{low:.{decimals}f}, {high:.{decimals}f}]"


def _key_columns(frame: pd.DataFrame, env: bool = True, level: bool = True) -> dict[str, list[str]]:
    cols = {"algo": list(frame["algo"])}
    if env:
        cols["env"] = list(frame["env"])
    cols["steps"] = [fmt_int(b) for b in frame["budget"]]
    cols["method"] = [method_display(m) for m in frame["method"]]
    if not level:
        return cols
    if "sparsity" in frame:  # mean over the seeds' exact initial sparsity
        cols["sparsity"] = [fmt_pct(s) for s in frame["sparsity"]]
    else:  # the rounded level that groups runs across environments
        cols["sparsity"] = [DASH if _missing(s) else f"{100 * s:g}%" for s in frame["level"]]
    return cols


def _display(frame: pd.DataFrame, columns: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(columns, index=range(len(frame)))


def _score_note(a: Analysis) -> str:
    """Which evaluations a run's score averages, with the counts that occurred."""
    r = a.runs
    used = ", ".join(f"{k} of {n}" for k, n in sorted(set(zip(r["score_evals"], r["evaluations"]))))
    return f"Score of a run ({a.options.score}): {SCORES[a.options.score]}" + (f"; here {used}." if used else ".")


def _split_note(a: Analysis) -> list[str]:
    n = int(a.runs["split"].sum())
    return [f"Left out: {n} runs whose networks have different sparsities (actor vs critic or value); "
            "see the actor vs critic sparsity table."] if n else []


def _matched_note(a: Analysis) -> list[str]:
    if not any(map(is_matched_dense, a.runs["method"])):
        return []
    return [f"{MATCHED_DENSE}: dense_matched, a dense network with hidden widths solved so that its "
            "parameter count matches the sparse network at its sparsity level (Graesser et al. 2022), "
            "shown at that level."]


# --- Sokar et al. 2022 ------------------------------------------------------------------------
def returns_table(a: Analysis) -> Table:
    s = a.summary
    cols = _key_columns(s)
    cols["seeds"] = [str(n) for n in s["seeds"]]
    cols["return"] = [fmt_pm(m, d) for m, d in zip(s["return_mean"], s["return_std"])]
    cols["LCA"] = [fmt_pm(m, d, 4) for m, d in zip(s["lca_mean"], s["lca_std"])]
    notes = [_score_note(a),
             f"Return: the runs' scores, mean ± std over seeds (ddof={STD_DDOF}). LCA: sum of all "
             f"evaluation returns / steps (Sokar et al. 2022)."]
    shown = s["published_return_mean"].notna()
    if shown.any():
        cols[f"return {PUBLISHED_MARK}"] = [fmt_pm(m, d) for m, d in
                                            zip(s["published_return_mean"], s["published_return_std"])]
        cols[f"LCA {PUBLISHED_MARK}"] = [fmt(x, 4) for x in s["published_lca"]]
        notes.append(published.version_footnote(published.SOKAR, list(s.loc[shown, "env"])))
        if s.loc[shown, "published_lca"].isna().any():
            notes.append(f"Published LCA shown only where evaluations were every "
                         f"{published.PUBLISHED_EVAL_EVERY:,} steps, as in the paper.")
        notes.extend(sorted({f"Published {a}/{m}: {src}" for a, m, src in
                             zip(s["algo"], s["method"], s["published_source"]) if src}))
    data = s[["algo", "env", "budget", "method", "level", "sparsity", "seeds", "return_mean",
              "return_std", "lca_mean", "lca_std", "published_return_mean",
              "published_return_std", "published_lca"]]
    return Table("returns", "Return and learning-curve area", data, _display(s, cols), notes)


def costs_table(a: Analysis) -> Table:
    s = a.summary
    cols = _key_columns(s)
    # one column per network any row has (actor/critic, actor/value, q): a dash where it has not
    networks = [n for n in a.data.networks if s[params_column(n)].notna().any()]
    for n in networks:
        cols[f"params {n}"] = [fmt_int(x) for x in s[params_column(n)]]
    cols["params"] = [fmt_int(x) for x in s["params"]]
    cols["params vs dense"] = [fmt_rel(x) for x in s["params_rel"]]
    cols["params with biases"] = [fmt_int(x) for x in s["params_with_biases"]]
    cols["train FLOPs"] = [fmt_sci(x) for x in s["flops"]]
    cols["FLOPs vs dense"] = [fmt_rel(x) for x in s["flops_rel"]]
    cols["ms / update"] = [fmt(x) for x in s["update_ms"]]
    cols["update time"] = [DASH if _missing(x) else duration(x) for x in s["update_wall_s"]]
    cols["time vs dense"] = [fmt_rel(x) for x in s["update_ms_rel"]]
    notes = ["params: nonzero weights at the end of training (no biases, targets excluded), per "
             "network and of every trained network together; FLOPs: cumulative training FLOPs; "
             "both relative to dense of the same algo × env × steps (FLOPs without a dense run: "
             "relative to the run's own count of what dense would have spent). params with biases: "
             "Graesser et al.'s count (nonzero weights and every bias), the one dense_matched matches.",
             "ms / update, update time: measured wall-clock of one agent update and of all of a run's "
             "updates (a grouped run: its share of the group's), mean over seeds, on the machines the "
             "trials ran on; masks over dense matrices (sparse_kernels: dense) cost what dense costs, "
             "sparse kernels turn the FLOP savings into time.",
             *_matched_note(a)]
    data = s[["algo", "env", "budget", "method", "level", "sparsity", *map(params_column, networks),
              "params", "params_rel", "params_with_biases", "flops", "flops_rel", "update_ms",
              "update_wall_s", "update_ms_rel"]]
    return Table("costs", "Parameters and training FLOPs", data, _display(s, cols), notes)


def steps_to_dense_table(a: Analysis) -> Table:
    s = a.summary[a.summary["method"] != "dense"].reset_index(drop=True)
    cols = _key_columns(s)
    cols["dense final return"] = [fmt(x) for x in s["dense_return"]]
    cols["steps to dense"] = [
        fmt_int(x) if not _missing(x) else ("not reached" if not _missing(d) else DASH)
        for x, d in zip(s["steps_to_dense"], s["dense_return"])]
    cols["fraction of budget"] = [fmt_pct(x) for x in s["steps_to_dense_frac"]]
    notes = ["First evaluation step at which the method's mean-over-seeds curve reaches the dense "
             "method's mean final return (Sokar et al. 2022: DS-TD3 after 40-50% of the steps)."]
    data = s[["algo", "env", "budget", "method", "level", "sparsity", "dense_return",
              "steps_to_dense", "steps_to_dense_frac"]]
    return Table("steps_to_dense", "Steps to reach dense performance", data, _display(s, cols), notes)


def runs_table(a: Analysis) -> Table:
    r = a.runs
    cols = {"run": list(r["run_name"]), "algo": list(r["algo"]), "env": list(r["env"]),
            "method": [method_display(m) for m in r["method"]], "seed": [str(x) for x in r["seed"]],
            "sparsity": [fmt_pct(x) for x in r["sparsity"]],
            "evaluations": [str(x) for x in r["evaluations"]],
            "scored": [str(x) for x in r["score_evals"]],
            "final return": [fmt(x) for x in r["final_return"]],
            "LCA": [fmt(x, 4) for x in r["lca"]],
            "logged final return": [fmt(x) for x in r["summary_final_return"]],
            "params": [fmt_int(x) for x in r["params_total"]],
            "train FLOPs": [fmt_sci(x) for x in r["train_flops"]]}
    options = [sparsity_option_column(n) for n in a.data.networks]  # as resolved and logged
    data = r[["run_id", "run_name", "algo", "env", "budget", "method", "seed", "sparsity", *options,
              "evaluations", "score_evals", "final_return", "lca", "summary_final_return", "summary_lca",
              "params_total", "train_flops"]]
    return Table("runs", "Finished runs", data, _display(r, cols),
                 [_score_note(a), "final return (the mean of the last 'scored' evaluations) and LCA "
                  "recomputed from the evaluation history; 'logged' is the trial's own summary metric "
                  "(the last final_evals evaluations), for cross-checking."])


# --- Graesser et al. 2022 ---------------------------------------------------------------------
def _needs_dense(a: Analysis, frame: pd.DataFrame) -> list[str]:
    if frame.empty and not a.runs.empty:
        return ["Needs finished dense runs of the same algo × env × steps as the reference."]
    return []


def normalised_table(a: Analysis) -> Table:
    s = a.normalised_summary()
    cols = _key_columns(s)
    cols["seeds"] = [str(n) for n in s["seeds"]]
    cols["normalised return"] = [fmt_pm(m, d, 3) for m, d in zip(s["score_mean"], s["score_std"])]
    cols["basis"] = list(s["basis"])
    notes = [_score_note(a),
             "Score divided by the dense method's mean score of the same algo × env × steps "
             "(Graesser et al. 2022). Where dense's mean is not positive: (R − R0)/(dense − R0), "
             "R0 = mean return at step 0.", *_matched_note(a), *_split_note(a)]
    return Table("normalised", "Returns normalised by dense", s, _display(s, cols),
                 notes + _needs_dense(a, s))


def iqm_table(a: Analysis) -> Table:
    s = a.iqm
    conf = f"{100 * a.options.confidence:g}%"
    cols = _key_columns(s, env=False)
    cols["runs"] = [str(n) for n in s["runs"]]
    cols["envs"] = [str(n) for n in s["envs"]]
    cols["IQM"] = [fmt(x, 3) for x in s["iqm"]]
    cols[f"{conf} CI"] = [fmt_ci(lo, hi, 3) for lo, hi in zip(s["ci_low"], s["ci_high"])]
    notes = [f"Interquartile mean of dense-normalised scores over all runs of all "
             f"environments; {conf} percentile CI from {a.options.bootstrap_reps} stratified "
             f"bootstrap replicates (runs resampled within each environment; seed "
             f"{a.options.bootstrap_seed}), as rliable (Agarwal et al. 2021).", _score_note(a),
             *_matched_note(a), *_split_note(a)]
    if s["published_iqm"].notna().any():
        cols[f"IQM {PUBLISHED_MARK}"] = [fmt(x, 2) for x in s["published_iqm"]]
        notes.append(f"Published IQM: {published.GRAESSER}, SAC in their setup at 90% sparsity (and "
                     "dense), read off a figure (approximate); shown where budget (1e6 steps), tasks, "
                     "setup (preset: graesser) and score (last 10%) match. Their dense is 1.12, not "
                     "1: their normaliser is not the dense mean used here.")
        notes.append(published.version_footnote(published.GRAESSER, list(a.runs["env"])))
    return Table("iqm", "IQM of normalised returns", s, _display(s, cols), notes + _needs_dense(a, s))


def improvement_table(a: Analysis) -> Table:
    s = a.improvement
    conf = f"{100 * a.options.confidence:g}%"
    cols = _key_columns(s, env=False)
    cols["envs"] = [str(n) for n in s["envs"]]
    cols["P(method > dense)"] = [fmt(x, 3) for x in s["p_improvement"]]
    cols[f"{conf} CI"] = [fmt_ci(lo, hi, 3) for lo, hi in zip(s["ci_low"], s["ci_high"])]
    notes = ["P(X > Y) + ½·P(X = Y) over all pairs of a method's and dense's runs in one "
             "environment, averaged over environments; stratified-bootstrap CI.", *_split_note(a)]
    return Table("improvement", "Probability of improvement over dense", s, _display(s, cols),
                 notes + _needs_dense(a, s))


def actor_critic_table(a: Analysis) -> Table:
    s = a.actor_critic
    conf = f"{100 * a.options.confidence:g}%"
    cols = _key_columns(s, env=False, level=False)
    cols["networks"] = [f"{x} × {y}" for x, y in zip(s["x_network"], s["y_network"])]
    cols["actor sparsity"] = [f"{100 * x:g}%" for x in s["x_sparsity"]]
    cols["critic / value sparsity"] = [f"{100 * y:g}%" for y in s["y_sparsity"]]
    cols["runs"] = [str(n) for n in s["runs"]]
    cols["envs"] = [str(n) for n in s["envs"]]
    cols["IQM"] = [fmt(x, 3) for x in s["iqm"]]
    cols[f"{conf} CI"] = [fmt_ci(lo, hi, 3) for lo, hi in zip(s["ci_low"], s["ci_high"])]
    notes = ["Graesser et al. 2022, 'the critic needs most of the parameters': runs whose actor and "
             "critic (PPO: value) sparsity options differ somewhere in the grid; per cell the IQM of "
             "dense-normalised scores over runs and environments, stratified-bootstrap CI.", _score_note(a)]
    if s.empty and not a.runs.empty:
        notes.append("No method here sets the actor's and the critic's sparsity apart (grid.options: "
                     "actor_sparsity × critic_sparsity; experiments/graesser2022_actor_critic.yaml).")
    return Table("actor_critic", "Actor vs critic sparsity", s, _display(s, cols), notes)


# --- data quality -----------------------------------------------------------------------------
def unfinished_table(a: Analysis) -> Table:
    u = a.data.unfinished_runs()
    cols = {"run": list(u["run_name"]), "run id": list(u["run_id"]), "algo": list(u["algo"]),
            "env": list(u["env"]),
            "method": [method_label(m, v) for m, v in zip(u["method"], u["variant"])],
            "seed": [DASH if _missing(x) else str(x) for x in u["seed"]],
            "MLflow status": list(u["mlflow_status"]),
            "last eval step": [fmt_int(x) for x in u["last_step"]], "reason": list(u["reason"])}
    data = u[["run_id", "run_name", "algo", "env", "method", "variant", "seed", "mlflow_status",
              "dsrl_status", "last_step", "reason"]]
    return Table("unfinished", "Unfinished runs (excluded from all statistics)", data,
                 _display(u, cols), [])


TABLES: dict[str, Callable[[Analysis], Table]] = {
    "returns": returns_table,
    "costs": costs_table,
    "steps_to_dense": steps_to_dense_table,
    "runs": runs_table,
    "normalised": normalised_table,
    "iqm": iqm_table,
    "improvement": improvement_table,
    "actor_critic": actor_critic_table,
    "unfinished": unfinished_table,
}
ALWAYS = ("unfinished",)  # shown on every dashboard: nothing is silently dropped
