"""Synthetic experiments written into a real SQLite MLflow store, with curves known in closed form.

Experiment "synth" (td3, budget 100 steps, evaluations every 10 steps at 0..100, final_evals 3):
  returns R(t) per env and method, seed s in {0, 1, 2}:
    HalfCheetah-v4: dense t + 10s        ds 2t + 10s          static 0.5t + 10s
    Pendulum-v1:    dense -1000 + 8t + 10s   ds -1000 + 9t + 10s   static -1000 + 4t + 10s
  FLOPs per step: dense 100, ds 40, static 50 (cumulative metric every 10 steps); dense-equivalent
  100. Final nonzero params: dense 1000, ds 500, static 500. Sparsity tags: dense 0.0,
  ds 0.5123 / 0.5087 / 0.5100 (one level, 0.51), static 0.5.
  The ds HalfCheetah seed-0 run was "resumed": steps 50 and 100 (and its last FLOPs point) were
  first logged with garbage values, then re-logged later with the true ones.
  A labelled variant "ds:e200" (HalfCheetah-v4 only): R = 1.5t + 10s, sparsity 0.51, 500 params.
  Three unfinished runs with absurd returns: FAILED (no status tag), RUNNING (no status tag),
  FAILED with the finished tag. Two launch (parent) runs; the newer one gets the artifacts.
Experiment "only-failed": one FAILED trial and nothing else.
Experiment "sokar-1m" (td3 HalfCheetah-v4, 1e6 steps, evaluations every 5,000, final_evals 10):
  dense R(t) = 10000·t/1e6 + 100s, ds R(t) = 11000·t/1e6 + 100s, seeds 0 and 1; no launch run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from dsrl_platform import names

SYNTH, SOKAR_1M, ONLY_FAILED = "synth", "sokar-1m", "only-failed"
ENV_A, ENV_B = "HalfCheetah-v4", "Pendulum-v1"
BUDGET, EVERY, FINAL = 100, 10, 3
STEPS = list(range(0, BUDGET + 1, EVERY))
SEEDS = (0, 1, 2)

CURVES = {  # (env, method) -> R(t, s)
    (ENV_A, "dense"): lambda t, s: t + 10 * s,
    (ENV_A, "ds"): lambda t, s: 2 * t + 10 * s,
    (ENV_A, "static"): lambda t, s: 0.5 * t + 10 * s,
    (ENV_B, "dense"): lambda t, s: -1000 + 8 * t + 10 * s,
    (ENV_B, "ds"): lambda t, s: -1000 + 9 * t + 10 * s,
    (ENV_B, "static"): lambda t, s: -1000 + 4 * t + 10 * s,
}
FLOPS_PER_STEP = {"dense": 100.0, "ds": 40.0, "static": 50.0}
PARAMS = {"dense": 1000.0, "ds": 500.0, "static": 500.0}
SPARSITY = {"dense": ["0.0"] * 3, "ds": ["0.5123", "0.5087", "0.5100"], "static": ["0.5"] * 3}
T0 = 1_700_000_000_000  # ms


@dataclass
class Store:
    uri: str
    client: MlflowClient
    synth_id: str
    sokar_id: str
    newer_parent: str
    older_parent: str


def write_trial(client, exp_id, *, algo, method, env, seed, sparsity, budget, eval_every,
                final_evals, curve, flops_per_step, params, parent=None, status="FINISHED",
                finished_tag=True, last_step=None, garbage_steps=(), name=None, variant=None):
    tags = {names.TAG_ROLE: "trial", names.TAG_ALGO: algo, names.TAG_METHOD: method,
            names.TAG_ENV: env, names.TAG_SEED: str(seed), names.TAG_SPARSITY: sparsity,
            names.TAG_RUN_KEY: f"{algo}-{method}-{env}-{seed}", names.TAG_BUDGET: str(budget)}
    if parent:
        tags[names.TAG_PARENT] = parent
    if variant:
        tags[names.TAG_VARIANT] = variant
    label = f"{method}:{variant}" if variant else method
    run = client.create_run(exp_id, run_name=name or f"{algo}-{label}-{env}-s{seed}", tags=tags,
                            start_time=T0)
    rid = run.info.run_id
    steps = [t for t in range(0, budget + 1, eval_every) if last_step is None or t <= last_step]
    metrics = []
    for t in steps:
        ts = T0 + t
        if t in garbage_steps:  # the crashed attempt's values, overwritten after the resume
            metrics += [Metric(names.EVAL_RETURN, 99999.0, ts, t),
                        Metric(names.TRAIN_FLOPS, 1e12, ts, t)]
            ts += 10 * budget
        metrics += [Metric(names.EVAL_RETURN, float(curve(t, seed)), ts, t),
                    Metric(names.EVAL_RETURN_STD, 1.0, ts, t),
                    Metric(names.TRAIN_FLOPS, flops_per_step * t, ts, t),
                    Metric(names.TRAIN_FLOPS_DENSE, 100.0 * t, ts, t),
                    Metric(names.PARAMS_TOTAL, params, ts, t),
                    Metric(names.SPARSITY_TOTAL, float(sparsity), ts, t)]
    if finished_tag:
        final = [curve(t, seed) for t in steps][-final_evals:]
        metrics.append(Metric(names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN,
                              sum(final) / len(final), T0 + 10 * budget + 1, 0))
    params_ = [Param("algo", algo), Param("method", method), Param("env", env),
               Param("seed", str(seed)), Param("steps", str(budget)),
               Param("eval_every", str(eval_every)), Param("final_evals", str(final_evals))]
    for i in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000], params=params_ if i == 0 else [])
    if finished_tag:
        client.log_batch(rid, tags=[RunTag(names.TAG_STATUS, "finished")])
    if status != "RUNNING":
        client.set_terminated(rid, status=status)
    return rid


def write_store(root) -> Store:
    """Both synthetic experiments in a new SQLite store under `root`."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    synth = client.create_experiment(SYNTH, artifact_location=(root / "artifacts").as_uri())
    sokar = client.create_experiment(SOKAR_1M, artifact_location=(root / "artifacts").as_uri())
    older = client.create_run(synth, run_name="launch-1", tags={names.TAG_ROLE: "launch"},
                              start_time=T0 - 2000).info.run_id
    newer = client.create_run(synth, run_name="launch-2", tags={names.TAG_ROLE: "launch"},
                              start_time=T0 - 1000).info.run_id
    common = dict(algo="td3", budget=BUDGET, eval_every=EVERY, final_evals=FINAL, parent=newer)
    for (env, method), seed in itertools.product(CURVES, SEEDS):
        resumed = env == ENV_A and method == "ds" and seed == 0
        write_trial(client, synth, method=method, env=env, seed=seed, sparsity=SPARSITY[method][seed],
                    curve=CURVES[env, method], flops_per_step=FLOPS_PER_STEP[method],
                    params=PARAMS[method], garbage_steps=(50, 100) if resumed else (), **common)
    for seed in SEEDS:
        write_trial(client, synth, method="ds", variant="e200", env=ENV_A, seed=seed, sparsity="0.51",
                    curve=lambda t, s: 1.5 * t + 10 * s, flops_per_step=40.0, params=500.0, **common)
    absurd = lambda t, s: 1e6  # noqa: E731  would dominate every mean if mixed in
    unfinished = dict(env=ENV_A, sparsity="0.51", curve=absurd, flops_per_step=1.0, params=1.0, **common)
    write_trial(client, synth, method="ds", seed=3, status="FAILED", finished_tag=False,
                last_step=40, name="crashed", **unfinished)
    write_trial(client, synth, method="dense", seed=3, status="RUNNING", finished_tag=False,
                last_step=60, name="still-running", **unfinished)
    write_trial(client, synth, method="static", seed=3, status="FAILED", finished_tag=True,
                name="failed-after-summary", **unfinished)
    one_m = dict(algo="td3", env=ENV_A, budget=1_000_000, eval_every=5_000, final_evals=10,
                 flops_per_step=1.0, params=1.0)
    for seed in (0, 1):
        write_trial(client, sokar, method="dense", seed=seed, sparsity="0.0",
                    curve=lambda t, s: 10000 * t / 1e6 + 100 * s, **one_m)
        write_trial(client, sokar, method="ds", seed=seed, sparsity="0.51",
                    curve=lambda t, s: 11000 * t / 1e6 + 100 * s, **one_m)
    failed = client.create_experiment(ONLY_FAILED, artifact_location=(root / "artifacts").as_uri())
    write_trial(client, failed, method="ds", seed=0, status="FAILED", finished_tag=False,
                last_step=20, **{**unfinished, "parent": None})
    return Store(uri, client, synth, sokar, newer, older)


def row(frame, **keys):
    """The single row of `frame` matching every key=value."""
    mask = True
    for k, v in keys.items():
        mask = mask & (frame[k] == v)
    rows = frame[mask]
    assert len(rows) == 1, f"{len(rows)} rows match {keys}"
    return rows.iloc[0]
