"""MLflow → pandas: the trial runs of one experiment and their metric histories.

Reads through the tracking client (`dsrl_platform.tracking`, the layout the launcher writes:
one child run per trial tagged `dsrl.role=trial`, metrics stepped in environment steps). It
also logs the finished report as artifacts of the experiment's parent run.

Per-network columns follow what the runs logged (`params/<network>`, and the resolved option
`<network>_sparsity` logged as a run param): actor/critic for TD3 and SAC, actor/value for
PPO, q for DQN. `ExperimentData.networks` lists them.

Runs that did not finish (the tracking client's `unfinished_reason`), or that lack the tags
naming the trial, are kept in `runs` with `finished=False` and a `reason`, so the report can
list them; the statistics use `finished_runs()` only. A trial resumed after a crash may have
logged a step twice: the value logged last wins.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from dsrl_platform import names
from dsrl_platform.config import RunConfig
from dsrl_platform.methods import METHODS
from dsrl_platform.tracking import Tracker, unfinished_reason

REPORT_RUN_NAME = "report"

# Final values read from each run's latest metrics: column -> MLflow metric key.
FINAL_METRICS: dict[str, str] = {
    "params_total": names.PARAMS_TOTAL,
    "params_total_with_biases": names.PARAMS_TOTAL_WITH_BIASES,
    "train_flops": names.TRAIN_FLOPS,
    "train_flops_dense": names.TRAIN_FLOPS_DENSE,
    "sparsity_total": names.SPARSITY_TOTAL,
    "summary_final_return": names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN,
    "summary_lca": names.SUMMARY_PREFIX + names.SUMMARY_LCA,
    # measured on the trial's machine, not computed: NaN for runs that predate them
    "update_ms": names.SUMMARY_PREFIX + names.SUMMARY_UPDATE_MS,
    "update_wall_s": names.SUMMARY_PREFIX + names.SUMMARY_UPDATE_WALL_S,
}
# Full histories the report needs: column name of the value -> MLflow metric key.
HISTORIES: dict[str, str] = {"return": names.EVAL_RETURN, "flops": names.TRAIN_FLOPS}

# Identity of a trial: column -> (tag, RunConfig param used when the tag is missing).
IDENTITY: dict[str, tuple[str, str]] = {
    "algo": (names.TAG_ALGO, "algo"),
    "method": (names.TAG_METHOD, "method"),
    "env": (names.TAG_ENV, "env"),
    "seed": (names.TAG_SEED, "seed"),
    "budget": (names.TAG_BUDGET, "steps"),
}
_DEFAULT_FINAL_EVALS = RunConfig.model_fields["final_evals"].default
_DEFAULT_EVAL_EVERY = RunConfig.model_fields["eval_every"].default
_HISTORY_WORKERS = 4  # a tracking server answers each history call in ~50 ms
# params/<key> metrics that are sums over networks, not networks
_PARAM_TOTALS = {m.removeprefix(names.PARAMS_PREFIX) for m in (names.PARAMS_TOTAL, names.PARAMS_TOTAL_WITH_BIASES)}


def params_column(network: str) -> str:
    """Column of a network's final nonzero weights (metric params/<network>)."""
    return f"params_{network}"


def sparsity_option_column(network: str) -> str:
    """Column of a network's resolved sparsity option (run param <network>_sparsity)."""
    return f"{network}_sparsity"


@dataclass
class ExperimentData:
    """Everything the report reads, as plain DataFrames.

    runs:  one row per trial run (finished or not): run_id, run_name, algo, method, variant
           (the spec's label for a method listed twice, else ""), preset (the `preset` param
           of TD3/SAC, else ""), env, seed, budget, sparsity,
           eval_every, final_evals, mlflow_status, dsrl_status, finished, reason, start_time,
           last_step, the FINAL_METRICS columns, and per network of `networks`:
           params_<network> (final nonzero weights) and <network>_sparsity (the resolved option;
           0 for a method without masks, NaN where the algorithm has no such option).
    evals: run_id, step, return — evaluation returns, one row per step (last logged wins).
    flops: run_id, step, flops — cumulative training FLOPs, one row per step.
    """

    experiment: str
    experiment_id: str
    tracking_uri: str
    runs: pd.DataFrame
    evals: pd.DataFrame
    flops: pd.DataFrame
    networks: list[str]  # the networks runs logged params/<network> for, the actor first

    def finished_runs(self) -> pd.DataFrame:
        return self.runs.loc[self.runs["finished"]].reset_index(drop=True)

    def unfinished_runs(self) -> pd.DataFrame:
        return self.runs.loc[~self.runs["finished"]].reset_index(drop=True)


# --- reading ----------------------------------------------------------------------------------
def load_experiment(experiment: str, tracking_uri: str) -> ExperimentData:
    """All trial runs of `experiment` with their histories. Unknown experiment: ValueError."""
    tracker = Tracker.connect(tracking_uri, must_exist=True)
    exp_id = tracker.existing_experiment_id(experiment)
    trials = tracker.all_trial_runs(exp_id)
    with ThreadPoolExecutor(_HISTORY_WORKERS) as pool:
        histories = list(pool.map(lambda run: _histories(tracker, run.info.run_id), trials))
    evals = _concat([h["return"] for h in histories], ["run_id", "step", "return"])
    flops = _concat([h["flops"] for h in histories], ["run_id", "step", "flops"])
    networks = _networks(trials)
    columns = [*_RUN_COLUMNS, *(c for n in networks for c in (params_column(n), sparsity_option_column(n)))]
    runs = pd.DataFrame([_run_row(run, networks) for run in trials], columns=columns)
    runs = runs.astype({**_RUN_TYPES, **{c: "float64" for c in columns[len(_RUN_COLUMNS):]}})
    last = evals.groupby("run_id")["step"].max()
    runs["last_step"] = runs["run_id"].map(last).astype("Int64")
    return ExperimentData(experiment, exp_id, tracking_uri,
                          runs.sort_values(["algo", "env", "method", "seed"],
                                           kind="stable", ignore_index=True), evals, flops, networks)


def _networks(trials) -> list[str]:
    """Networks with a params/<network> metric in any run: the actor (the policy, the x axis
    of the actor/critic heat map) first, then by name."""
    found = {key.removeprefix(names.PARAMS_PREFIX) for run in trials for key in run.data.metrics
             if key.startswith(names.PARAMS_PREFIX)} - _PARAM_TOTALS
    return sorted(found, key=lambda n: (n != "actor", n))


def _histories(tracker: Tracker, run_id: str) -> dict[str, pd.DataFrame]:
    out = {}
    for column, key in HISTORIES.items():
        frame = pd.DataFrame(tracker.metric_history(run_id, key), columns=["step", "timestamp", column])
        out[column] = dedupe_steps(frame).assign(run_id=run_id)[["run_id", "step", column]]
    return out


def dedupe_steps(history: pd.DataFrame) -> pd.DataFrame:
    """One row per step: the value logged last (latest timestamp; ties keep logging order)."""
    ordered = history.sort_values(["step", "timestamp"], kind="stable")
    return ordered.drop_duplicates("step", keep="last").reset_index(drop=True)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c != "run_id" else "object")
                             for c in columns})
    return pd.concat(frames, ignore_index=True)


_RUN_COLUMNS = ["run_id", "run_name", *IDENTITY, "variant", "preset", "sparsity", "eval_every", "final_evals",
                "mlflow_status", "dsrl_status", "finished", "reason", "start_time",
                *FINAL_METRICS]

# Explicit types, so that an experiment with no runs still yields well-typed empty columns.
_RUN_TYPES = {"seed": "Int64", "budget": "Int64", "eval_every": "Int64", "final_evals": "Int64",
              "sparsity": "float64", "finished": "bool",
              **{column: "float64" for column in FINAL_METRICS}}


def _run_row(run, networks: list[str]) -> dict:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    row: dict = {"run_id": run.info.run_id, "run_name": run.info.run_name}
    missing = []
    for column, (tag, param) in IDENTITY.items():
        row[column] = tags.get(tag, params.get(param))
        if row[column] is None:
            missing.append(tag)
    row["variant"] = tags.get(names.TAG_VARIANT, "")
    row["preset"] = params.get("preset", "")  # whose training setup (TD3/SAC), as logged
    row["seed"] = _number(row["seed"], int)
    row["budget"] = _number(row["budget"], int)
    # a method on no sparsity axis (dense) is at sparsity 0, whatever its tags and params say
    at_zero = row["method"] in METHODS and not METHODS[row["method"]].crosses_sparsity_axis
    row["sparsity"] = _number(tags.get(names.TAG_SPARSITY), float)
    if np.isnan(row["sparsity"]) and at_zero:
        row["sparsity"] = 0.0
    row["eval_every"] = _number(params.get("eval_every", _DEFAULT_EVAL_EVERY), int)
    row["final_evals"] = _number(params.get("final_evals", _DEFAULT_FINAL_EVALS), int)
    row["mlflow_status"] = run.info.status
    row["dsrl_status"] = tags.get(names.TAG_STATUS, "")
    missing_text = f"missing tags {', '.join(missing)}" if missing else ""
    row["reason"] = "; ".join(filter(None, [unfinished_reason(run), missing_text]))
    row["finished"] = row["reason"] == ""
    row["start_time"] = pd.to_datetime(run.info.start_time, unit="ms", utc=True)
    for column, key in FINAL_METRICS.items():
        row[column] = metrics.get(key, np.nan)
    for network in networks:
        row[params_column(network)] = metrics.get(names.params_metric(network), np.nan)
        option = sparsity_option_column(network)  # absent where the algorithm has no such option
        value = _number(params.get(option), float)  # JSON: "0.9", or "null" for dense
        row[option] = 0.0 if np.isnan(value) and at_zero and option in params else value
    return row


def _number(value, kind):
    try:
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        return pd.NA if kind is int else np.nan


# --- writing ----------------------------------------------------------------------------------
def log_report_artifacts(experiment: str, tracking_uri: str, local_dir: Path,
                         artifact_path: str) -> str:
    """Log `local_dir` under `artifact_path` of the newest launch run (created if none).

    Returns the parent run's id.
    """
    tracker = Tracker.connect(tracking_uri, must_exist=True)
    run_id = tracker.launch_for_report(tracker.existing_experiment_id(experiment), REPORT_RUN_NAME)
    tracker.log_artifacts(run_id, local_dir, artifact_path)
    return run_id
