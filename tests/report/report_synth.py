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

Experiment "graesser" (budget 200, evaluations every 10 at 0..200: N = 21, so Graesser's last 10%
is the last 2 (t = 190, 200), Sokar's final_evals 3 the last 3; one launch run):
  sac, preset graesser, HalfCheetah-v4 (f = 1) and Hopper-v4 (f = 3), seeds 0, 1, 2 with offsets
  o = 0, 15, 45: R(t) = f·(c·t + o). Score (last 10%) = f·(195c + o); dense (c = 1) mean 215f,
  so every normalised score is (195c + o)/215, the same in both environments.
    (method, actor sparsity, critic sparsity): c; sparsity tag
    dense (null, null): 1; 0.0                 dense_matched (0.5, 0.5): 0.9; 0.5
    dense_matched (0.9, 0.9): 0.6; 0.9         rigl (0.5, 0.5): 1.1; 0.5      rigl (0.9, 0.9): 0.8; 0.9
    rigl (0.5, 0.9): 0.7; 0.8123               rigl (0.9, 0.5): 1.05; 0.5877
  params/actor, params/critic: SAC_PARAMS below.
  G_OTHERS, seeds 0, 1 (o = 0, 15), f = 1, dense and rigl at 0.9 (tags 0.0 / 0.9): ppo (networks
  actor, value; options actor_sparsity, value_sparsity: null / 0.9) and dqn (network q, no
  per-network option); weights per network × (1 − sparsity).
Experiment "graesser-1m" (sac HalfCheetah-v4, 1e6 steps, evaluations every 100,000: N = 11, last 1;
  preset graesser): dense R = 0.001t + 10s, dense_matched 0.9: 0.0008t + 10s, rigl 0.9:
  0.0011t + 10s, seeds 0 and 1.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from dsrl_platform import names

SYNTH, SOKAR_1M, ONLY_FAILED, GRAESSER, GRAESSER_1M = "synth", "sokar-1m", "only-failed", "graesser", "graesser-1m"
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
UPDATE_MS = {"dense": 10.0, "ds": 6.0, "static": 4.0}  # measured wall-clock per update (summary)
SPARSITY = {"dense": ["0.0"] * 3, "ds": ["0.5123", "0.5087", "0.5100"], "static": ["0.5"] * 3}
T0 = 1_700_000_000_000  # ms
BIASES = 100  # params/total_with_biases = params/total + BIASES in every run

G_ENVS = {"HalfCheetah-v4": 1, "Hopper-v4": 3}  # env -> factor f
G_OFFSETS = (0, 15, 45)  # seed -> o
G_BUDGET, G_FINAL = 200, 3
G_SAC = [  # method, actor sparsity, critic sparsity, c, sparsity tag
    ("dense", None, None, 1.0, "0.0"), ("dense_matched", 0.5, 0.5, 0.9, "0.5"),
    ("dense_matched", 0.9, 0.9, 0.6, "0.9"), ("rigl", 0.5, 0.5, 1.1, "0.5"), ("rigl", 0.9, 0.9, 0.8, "0.9"),
    ("rigl", 0.5, 0.9, 0.7, "0.8123"), ("rigl", 0.9, 0.5, 1.05, "0.5877"),
]

G_OTHERS = {  # algo -> env, dense weights per network, per-network options, c per method (rigl: 0.9)
    "ppo": (ENV_A, {"actor": 300, "value": 300}, ("actor_sparsity", "value_sparsity"), {"dense": 1.0, "rigl": 0.5}),
    "dqn": ("CartPole-v1", {"q": 2000}, (), {"dense": 1.0, "rigl": 2.0}),
}


def sac_params(actor: float | None, critic: float | None) -> dict[str, float]:
    """Nonzero weights per network: 1000 actor and 4000 critic weights when dense; the matched
    dense network has as many as the sparse one."""
    return {"actor": round(1000 * (1 - (actor or 0))), "critic": round(4000 * (1 - (critic or 0)))}


def g_score(c: float, seed: int) -> float:
    """The normalised score of a graesser-experiment run (last 10%, by dense's mean 215f)."""
    return (195 * c + G_OFFSETS[seed]) / 215


@dataclass
class Store:
    uri: str
    client: MlflowClient
    synth_id: str
    sokar_id: str
    newer_parent: str
    older_parent: str
    graesser_parent: str


def write_trial(client, exp_id, *, algo, method, env, seed, sparsity, budget, eval_every,
                final_evals, curve, flops_per_step, params, update_ms=None, parent=None, status="FINISHED",
                finished_tag=True, last_step=None, garbage_steps=(), name=None, variant=None,
                networks=None, options=None):
    """One trial run. `params`: params/total (+ BIASES: with biases); `networks`: params/<network> (none if None);
    `options`: more run params, JSON-encoded as the tracking client logs them."""
    tags = {names.TAG_ROLE: "trial", names.TAG_ALGO: algo, names.TAG_METHOD: method,
            names.TAG_ENV: env, names.TAG_SEED: str(seed), names.TAG_SPARSITY: sparsity,
            names.TAG_RUN_KEY: f"{algo}-{method}-{env}-{seed}", names.TAG_BUDGET: str(budget)}
    if parent:
        tags[names.TAG_PARENT] = parent
    if variant:
        tags[names.TAG_VARIANT] = variant
    if finished_tag:  # the reader does not care when it was set: one write fewer
        tags[names.TAG_STATUS] = names.STATUS_FINISHED
    label = f"{method}:{variant}" if variant else method
    run = client.create_run(exp_id, run_name=name or f"{algo}-{label}-{env}-s{seed}", tags=tags,
                            start_time=T0)
    rid = run.info.run_id
    steps = [t for t in range(0, budget + 1, eval_every) if last_step is None or t <= last_step]
    metrics = []
    for t in steps:  # the histories the report reads
        ts = T0 + t
        if t in garbage_steps:  # the crashed attempt's values, overwritten after the resume
            metrics += [Metric(names.EVAL_RETURN, 99999.0, ts, t),
                        Metric(names.TRAIN_FLOPS, 1e12, ts, t)]
            ts += 10 * budget
        metrics += [Metric(names.EVAL_RETURN, float(curve(t, seed)), ts, t),
                    Metric(names.TRAIN_FLOPS, flops_per_step * t, ts, t)]
    last, ts = steps[-1], T0 + 20 * budget  # metrics read at their latest value: logged once
    metrics += [Metric(names.TRAIN_FLOPS_DENSE, 100.0 * last, ts, last), Metric(names.PARAMS_TOTAL, params, ts, last),
                Metric(names.PARAMS_TOTAL_WITH_BIASES, params + BIASES, ts, last),
                *(Metric(names.params_metric(n), v, ts, last) for n, v in (networks or {}).items()),
                Metric(names.SPARSITY_TOTAL, float(sparsity), ts, last)]
    if finished_tag:
        final = [curve(t, seed) for t in steps][-final_evals:]
        metrics.append(Metric(names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN,
                              sum(final) / len(final), T0 + 10 * budget + 1, 0))
        if update_ms is not None:  # as the runner logs what it measured
            metrics += [Metric(names.SUMMARY_PREFIX + names.SUMMARY_UPDATE_MS, update_ms, T0 + 10 * budget + 1, 0),
                        Metric(names.SUMMARY_PREFIX + names.SUMMARY_UPDATE_WALL_S, update_ms * last / 1000,
                               T0 + 10 * budget + 1, 0)]
    params_ = [Param("algo", algo), Param("method", method), Param("env", env),
               Param("seed", str(seed)), Param("steps", str(budget)),
               Param("eval_every", str(eval_every)), Param("final_evals", str(final_evals)),
               *(Param(k, v if isinstance(v, str) else json.dumps(v)) for k, v in (options or {}).items())]
    for i in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000], params=params_ if i == 0 else [])
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
                    params=PARAMS[method], update_ms=UPDATE_MS[method], garbage_steps=(50, 100) if resumed else (), **common)
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
    return Store(uri, client, synth, sokar, newer, older, _write_graesser(client, root))


def _linear(f: float, c: float, o: float):
    return lambda t, s: f * (c * t + o)


def _write_graesser(client, root) -> str:
    """Both Graesser experiments; returns the id of the graesser experiment's launch run."""
    exp = client.create_experiment(GRAESSER, artifact_location=(root / "artifacts").as_uri())
    parent = client.create_run(exp, run_name="launch", tags={names.TAG_ROLE: "launch"}).info.run_id
    common = dict(budget=G_BUDGET, eval_every=10, final_evals=G_FINAL, flops_per_step=10.0, parent=parent)
    for (method, actor, critic, c, tag), (env, f), seed in itertools.product(G_SAC, G_ENVS.items(), range(3)):
        nets = sac_params(actor, critic)
        write_trial(client, exp, algo="sac", method=method, env=env, seed=seed, sparsity=tag,
                    curve=_linear(f, c, G_OFFSETS[seed]), params=sum(nets.values()), networks=nets,
                    options={"preset": "graesser", "actor_sparsity": actor, "critic_sparsity": critic},
                    name=f"sac-{method}-{actor}-{critic}-{env}-s{seed}", **common)
    for algo, (env, weights, options, c_of) in G_OTHERS.items():
        for (method, level), seed in itertools.product([("dense", None), ("rigl", 0.9)], range(2)):
            nets = {n: round(w * (1 - (level or 0))) for n, w in weights.items()}
            write_trial(client, exp, algo=algo, method=method, env=env, seed=seed, sparsity=str(level or 0.0),
                        curve=_linear(1, c_of[method], G_OFFSETS[seed]), params=sum(nets.values()),
                        networks=nets, options={o: level for o in options}, **common)
    one_m = client.create_experiment(GRAESSER_1M, artifact_location=(root / "artifacts").as_uri())
    for (method, slope, tag, level), seed in itertools.product(
            [("dense", 0.001, "0.0", None), ("dense_matched", 0.0008, "0.9", 0.9), ("rigl", 0.0011, "0.9", 0.9)],
            range(2)):
        nets = sac_params(level, level)
        write_trial(client, one_m, algo="sac", method=method, env=ENV_A, seed=seed, sparsity=tag,
                    budget=1_000_000, eval_every=100_000, final_evals=10, flops_per_step=1.0,
                    curve=lambda t, s, k=slope: k * t + 10 * s, params=sum(nets.values()), networks=nets,
                    options={"preset": "graesser", "actor_sparsity": level, "critic_sparsity": level})
    return parent


def row(frame, **keys):
    """The single row of `frame` matching every key=value."""
    mask = True
    for k, v in keys.items():
        mask = mask & (frame[k] == v)
    rows = frame[mask]
    assert len(rows) == 1, f"{len(rows)} rows match {keys}"
    return rows.iloc[0]
