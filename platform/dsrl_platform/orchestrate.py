"""Ray Tune glue: one Tune trial per grid point, checkpoints, retries, resumable launches.

`launch` is `dsrl-platform launch`: it opens the experiment and the launch's parent run in the
tracking store, leaves out the trials whose runs already finished there, and runs the rest as
Ray Tune trials (a local Ray, or the cluster at `--address`). `run_trial` is the trainable:
config in, restore from Tune's latest checkpoint, train, report each evaluation together with
a checkpoint. Fault tolerance, from the inside out:

- a failed or killed trial is retried by Tune (FailureConfig.max_failures) from its latest
  checkpoint, and continues its MLflow run (found by run key) without re-logging a point;
- an interrupted launch (Ctrl-C, a killed driver) is resumed by running the same command: the
  Tune experiment directory is named after the grid, so `Tuner.restore` picks it up, and
  trials whose runs are finished in MLflow are skipped even if Tune's own state is lost.

This is the only module that imports Ray.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune

from dsrl_platform import config, names, progress
from dsrl_platform.config import Resolved
from dsrl_platform.paths import check_can_be_directory
from dsrl_platform.spec import ExperimentSpec, Trial, grid_record, group_name, group_trials, launch_key
from dsrl_platform.tracking import FAILED, FINISHED, KILLED, MlflowSink, Tracker, with_retries
from dsrl_platform.train.sinks import MemorySink
from dsrl_platform.tracking.liveness import Heartbeat

PID_DIR = "workers"  # <experiment dir>/workers/<trial>.pid: the process training each trial
FINISHED_MARKER = "trial_finished"  # the last checkpoint of a finished trial: no state, a marker
# Environment the trial workers get: one BLAS/OpenMP thread unless a trial asks for more
# (torch's own threads are set from the run config), and the launcher's tracking settings.
_FORWARDED_ENV = ("DSRL_TRACKING_RETRY_S", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT",
                  "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")

Out = Callable[[str], None]


@dataclass
class LaunchOptions:
    """How to run a spec; `None` resource fields take the spec's values."""

    tracking_uri: str
    storage: str = "ray_results"  # Tune's storage: a local directory (made absolute) or a URI
    address: str | None = None  # an existing Ray cluster; None starts a local one
    num_cpus: int | None = None  # size of the local Ray (None: every core)
    max_concurrent: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    max_failures: int | None = None
    progress_every_s: float = 30.0
    group: str | int | None = None  # overrides the spec's resources.group


@dataclass
class LaunchResult:
    status: str  # "finished" | "failed" | "interrupted"
    finished: int
    total: int
    parent_run_id: str
    experiment_dir: str | None
    failed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {"finished": 0, "failed": 1, "interrupted": 130}[self.status]


# --- the trainable ------------------------------------------------------------------------------
def run_trial(tune_config: dict[str, Any]) -> None:
    """One Tune trial: a group of grid points (the seeds of one configuration; often one),
    trained together, each member with its own MLflow run. Resumable: Tune calls this again
    after a failure, with the checkpoint."""
    t = tune_config["trial"]
    members = t["members"]
    cfgs = [config.resolved(m["run"]) for m in members]  # resolved, as the launcher checked them
    _set_threads(cfgs[0].threads)
    _write_pid(t)
    cpu_start, wall_start, tracking_s = time.process_time(), time.monotonic(), 0.0
    tracker = Tracker(t["tracking_uri"])
    checkpoint = _resumable(tune.get_checkpoint())

    def tracked(action: Callable[[], Any], what: str) -> Any:
        """A tracking call with retries, timed: the launch reports tracking's share of trial time."""
        nonlocal tracking_s
        start = time.monotonic()
        try:
            return with_retries(action, what)
        finally:
            tracking_s += time.monotonic() - start

    runs = [tracked(lambda m=m: tracker.open_trial(
        t["experiment_id"], t["parent_run_id"], m["run_key"], m["name"], m["tags"], m["params"],
        fresh=checkpoint is None), f"trial {m['name']}: opening its run") for m in members]
    if all(finished for _, finished in runs):  # done before (an earlier launch, or just before a crash)
        tune.report({"step": cfgs[0].steps, "budget": cfgs[0].steps, "skipped": True})
        return
    # a member finished in MLflow (a crash between two members' bookkeeping) trains on, unlogged
    sinks = [MlflowSink(tracker, run_id, hold=True) if not finished else MemorySink() for run_id, finished in runs]
    live = [(m, run_id) for m, (run_id, finished) in zip(members, runs) if not finished]
    try:
        from dsrl_platform.train.runner import Runner  # in the worker: torch, gymnasium, the agents

        runner = Runner(cfgs if len(cfgs) > 1 else cfgs[0], sinks if len(sinks) > 1 else sinks[0])
        resumed = {}
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                runner.load(directory)
            resumed = {names.TAG_RESUMED_FROM: str(runner.step)}
        for g, (m, (run_id, finished)) in enumerate(zip(members, runs)):
            if not finished:
                tags = {names.TAG_SPARSITY: f"{float(runner.member_sparsity(g)):.6g}", **resumed}
                tracked(lambda: tracker.set_tags(run_id, tags), f"trial {m['name']}: tagging its run")
        keys = [m["run_key"] for m in members]
        last, failures = _train(runner, sinks, runs, keys, tracker, cfgs[0], t["checkpoint_every"])
        for sink in sinks:
            sink.close()
        for g, (m, (run_id, finished)) in enumerate(zip(members, runs)):
            if not finished and m["run_key"] not in failures:
                tracked(lambda: tracker.finish_trial(run_id), f"trial {m['name']}: marking it finished")
    except BaseException as err:
        # Tune stops a trial (Ctrl-C on the launch) by raising SystemExit in its report(): the
        # runs are resumable, not failed. Deliver what checkpoints cover; a retry redoes the rest.
        status = KILLED if isinstance(err, SystemExit) else FAILED
        for sink, (_, run_id) in zip([s for s, (_, f) in zip(sinks, runs) if not f], live):
            _best_effort(sink.flush, lambda run_id=run_id: tracker.end_trial(run_id, status))
        raise
    last.update({"failed_members": failures, "cpu_s": time.process_time() - cpu_start,
                 "wall_s": time.monotonic() - wall_start,
                 "tracking_s": tracking_s + sum(getattr(sink, "busy_s", 0.0) for sink in sinks)})
    # The runs are complete in MLflow: swap the last full checkpoint (replay buffers and all, GBs
    # for Humanoid) for a marker; Tune keeps one checkpoint per trial and drops the big one.
    with tempfile.TemporaryDirectory(prefix="dsrl-done-") as directory:
        (Path(directory) / FINISHED_MARKER).write_text(" ".join(run_id for run_id, _ in runs))
        tune.report(last, checkpoint=tune.Checkpoint.from_directory(directory))


def _resumable(checkpoint: tune.Checkpoint | None) -> tune.Checkpoint | None:
    """Tune's latest checkpoint, unless it is the marker of a finished trial (nothing to load)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return None if (Path(directory) / FINISHED_MARKER).exists() else checkpoint


def _train(runner: Any, sinks: list, runs: list[tuple[str, bool]], keys: list[str], tracker: Tracker,
           cfg: Resolved, checkpoint_every: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Report every evaluation to Tune; checkpoint every n-th and the last, then release metrics.
    A member that diverged is marked failed in MLflow with its reason; the others train on.
    Returns (the last result, {run key: failure} of diverged members)."""
    result: dict[str, Any] = {"step": runner.step, "budget": cfg.steps}
    failures: dict[str, str] = {}
    for i, point in enumerate(runner.group_evaluations(), start=1):
        for m, (run_id, finished), key, sink in zip(runner.members, runs, keys, sinks):
            if m.failed and key not in failures and not finished:
                failures[key] = m.failed
                _best_effort(sink.close, lambda run_id=run_id, m=m: tracker.fail_trial(run_id, m.failed))
        alive = [e for e in point if e is not None]
        step = alive[0].step if alive else runner.step
        result = {"step": step, "budget": cfg.steps,
                  "eval_return": float(sum(e.return_mean for e in alive) / len(alive)) if alive else float("nan"),
                  "eval_return_std": float(sum(e.return_std for e in alive) / len(alive)) if alive else float("nan")}
        if i % checkpoint_every and step < cfg.steps:
            tune.report(result)
            continue
        with tempfile.TemporaryDirectory(prefix="dsrl-ckpt-") as directory:
            runner.save(directory)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))
        for sink in sinks:
            sink.release()  # these points are covered by the checkpoint: a retry will not redo them
    return result, failures


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _write_pid(t: dict[str, Any]) -> None:
    """Which process trains this trial (operators, and the tests that kill one)."""
    pid_dir = t.get("pid_dir")
    if pid_dir:
        Path(pid_dir).mkdir(parents=True, exist_ok=True)
        (Path(pid_dir) / f"{t['name']}.pid").write_text(str(os.getpid()))


def _best_effort(*actions: Callable[[], Any]) -> None:
    for action in actions:
        try:
            action()
        except Exception:  # the original error matters more
            pass


# --- launching ----------------------------------------------------------------------------------
def launch(spec: ExperimentSpec, trials: list[Trial], spec_path: Path, opts: LaunchOptions,
           out: Out = print) -> LaunchResult:
    """Run the trials not finished yet; resumes this grid's interrupted Tune experiment if any."""
    key = launch_key(spec, trials)
    plan = _Plan.make(spec, key, opts)
    _preflight(plan, opts)  # what can be checked, before anything is written or started
    tracker = Tracker.connect(opts.tracking_uri)
    exp_id = tracker.experiment_id(spec.name)
    parent_id, created = tracker.open_launch(exp_id, key, f"launch-{key[:8]}", len(trials), spec_path,
                                             grid_record(trials))
    done = tracker.finished_keys(exp_id)
    todo = [t for t in trials if t.run_key not in done]
    out(f"{spec.name}: {len(trials)} trials, {len(trials) - len(todo)} finished before, {len(todo)} to run "
        f"(tracking {opts.tracking_uri}, {'new' if created else 'continued'} launch run {parent_id})")
    if not todo:
        tracker.end_launch(parent_id, FINISHED)
        return LaunchResult("finished", len(trials), len(trials), parent_id, None)
    try:
        with Heartbeat(tracker, parent_id):
            errors, interrupted = _run_tune(plan, todo, trials, done, tracker, exp_id, parent_id, opts, out)
    except KeyboardInterrupt:  # before Tune was running
        _best_effort(lambda: tracker.end_launch(parent_id, KILLED))
        raise
    except Exception:  # e.g. Ray would not start
        _best_effort(lambda: tracker.end_launch(parent_id, FAILED))
        raise
    return _conclude(trials, errors, interrupted, tracker, exp_id, parent_id, plan, out)


def _preflight(plan: _Plan, opts: LaunchOptions) -> None:
    """Refuse what would fail later, after the store was written and Ray started: a trial that
    does not fit the local machine, storage that cannot be a directory, a cluster not listening."""
    if opts.address is None:  # a trial bigger than the local Ray would wait forever
        cpus = opts.num_cpus or os.cpu_count() or 1
        if plan.cpus > cpus:
            _too_big("CPU", plan.cpus, cpus)
        gpus = _local_gpus()
        if gpus is not None and plan.gpus > gpus:
            _too_big("GPU", plan.gpus, gpus)
    else:
        _check_cluster(opts.address)
    if "://" not in plan.storage:
        check_can_be_directory(Path(plan.storage), f"--storage {opts.storage}")


def _local_gpus() -> int | None:
    """GPUs a local Ray would detect (its own NVIDIA probe, CUDA_VISIBLE_DEVICES honoured);
    None if Ray's probe is not available (the check after ray.init still holds)."""
    try:
        from ray._private.accelerators import get_accelerator_manager_for_resource

        manager = get_accelerator_manager_for_resource("GPU")
        count = manager.get_current_node_num_accelerators()
        visible = manager.get_current_process_visible_accelerator_ids()
    except Exception:  # an internal API of Ray: never a reason to refuse a launch
        return None
    return count if visible is None else min(count, len(visible))


def _check_cluster(address: str) -> None:
    """The Ray cluster at `address` must accept a TCP connection (ray.init retries for minutes)."""
    target = address.removeprefix("ray://")
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto")
        except ConnectionError:
            raise ValueError("--address auto: no running Ray cluster found on this machine (start one with "
                             "`ray start --head`, or omit --address for a local Ray)") from None
        except Exception:  # an internal API of Ray: leave the address to ray.init
            return
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=3):
            pass
    except OSError as err:
        raise ValueError(f"--address {address}: no Ray cluster listens at {host}:{port} "
                         f"({err.strerror or err or 'timed out'}); start its head node, or omit --address for a "
                         f"local Ray") from None


@dataclass
class _Plan:
    """Resources and places of one launch (spec values, overridden by the command line)."""

    cpus: float
    gpus: float
    max_concurrent: int | None
    max_failures: int
    checkpoint_every: int
    storage: str
    exp_dir: str
    group_size: int | None = 1  # members per Tune trial (None: every seed of a configuration)

    @classmethod
    def make(cls, spec: ExperimentSpec, key: str, opts: LaunchOptions) -> _Plan:
        res = spec.resources
        pick = lambda flag, value: value if flag is None else flag  # noqa: E731
        storage = _storage_path(opts.storage)
        gpus = pick(opts.gpus_per_trial, res.gpus_per_trial)
        group = res.group_size(gpus) if opts.group is None else res.model_copy(update={"group": opts.group}).group_size(gpus)
        return cls(pick(opts.cpus_per_trial, res.cpus_per_trial), gpus,
                   pick(opts.max_concurrent, res.max_concurrent), pick(opts.max_failures, res.max_failures),
                   res.checkpoint_every, storage,
                   _experiment_dir(storage, spec.name, key if group == 1 else f"{key} group {group}", opts.tracking_uri),
                   group)


def _run_tune(plan: _Plan, todo: list[Trial], trials: list[Trial], done: set[str], tracker: Tracker,
              exp_id: str, parent_id: str, opts: LaunchOptions, out: Out) -> tuple[dict[str, Any], bool]:
    """Fit the Tune experiment; (errors by run key, interrupted)."""
    _quiet_ray()
    _init_ray(opts, plan)
    local_dir = plan.exp_dir if "://" not in plan.exp_dir else None
    groups = group_trials(todo, plan.group_size)
    entries = [_entry(g, tracker.uri, exp_id, parent_id, plan.checkpoint_every, local_dir) for g in groups]
    callback = ProgressCallback([_state(t, "done" if t.run_key in done else "pending") for t in trials],
                                opts.progress_every_s)
    started = time.monotonic()
    try:
        tuner = _restore(plan, todo, out) or _new_tuner(entries, plan, callback)
        results = tuner.fit()
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside Tune's own handler
        return {}, True
    errors: dict[str, Any] = {}
    cpu_s = trial_s = tracking_s = 0.0
    for r in results:
        if not r.config:
            continue
        members = r.config["trial"]["members"]
        if r.error:
            errors.update({m["run_key"]: r.error for m in members})
        metrics = r.metrics or {}
        errors.update(metrics.get("failed_members") or {})  # diverged members of groups that finished
        cpu_s += float(metrics.get("cpu_s") or 0.0)
        trial_s += float(metrics.get("wall_s") or 0.0)
        tracking_s += float(metrics.get("tracking_s") or 0.0)
    _report_efficiency(cpu_s, time.monotonic() - started, trial_s, tracking_s, out)
    return errors, False


def _report_efficiency(cpu_s: float, wall_s: float, trial_s: float, tracking_s: float, out: Out) -> None:
    """The grid's CPU efficiency (trials' CPU time over the cores' time; local Ray: all its
    CPUs) and tracking's share of the trials' wall time (buffering and delivering metrics,
    opening and closing runs)."""
    if cpu_s <= 0 or wall_s <= 0 or not ray.is_initialized():
        return
    cores = ray.cluster_resources().get("CPU", 0) or 1
    share = f"; tracking took {100 * tracking_s / trial_s:.1f}% of trial time" if trial_s > 0 else ""
    out(f"CPU efficiency {cpu_s / (cores * wall_s):.2f}: trials used {cpu_s:,.0f} CPU-s of "
        f"{cores:g} cores × {wall_s:,.0f} s (the last attempt of each trial){share}")


def _conclude(trials: list[Trial], errors: dict[str, Any], interrupted: bool, tracker: Tracker, exp_id: str,
              parent_id: str, plan: _Plan, out: Out) -> LaunchResult:
    """The tracking store decides what finished; runs left open by dead workers are closed."""
    finished = tracker.finished_keys(exp_id)
    missing = [t for t in trials if t.run_key not in finished]
    failed = [t for t in missing if t.run_key in errors]
    interrupted = interrupted or len(missing) > len(failed)
    runs = tracker.trial_runs(exp_id)
    for t in missing:  # FAILED after its retries; KILLED (resumable) when interrupted
        if t.run_key in runs:
            run_id = runs[t.run_key].info.run_id
            _best_effort(lambda run_id=run_id, t=t: tracker.end_trial(run_id, FAILED if t.run_key in errors else KILLED))
    status = "interrupted" if interrupted else "failed" if failed else "finished"
    tracker.end_launch(parent_id, {"finished": FINISHED, "failed": FAILED, "interrupted": KILLED}[status])
    for t in failed:
        out(f"failed: {t.name}: {_first_line(errors[t.run_key])}")
    if interrupted:
        out(f"interrupted with {len(missing)} trials unfinished; run the same command again to resume them")
    elif failed:
        out(f"{len(failed)} trials failed after {plan.max_failures} retries; run the same command again to retry "
            f"them from their checkpoints (Tune logs: {plan.exp_dir})")
    return LaunchResult(status, len(trials) - len(missing), len(trials), parent_id, plan.exp_dir,
                        [t.name for t in failed])


def _entry(members: list[Trial], uri: str, exp_id: str, parent_id: str, checkpoint_every: int,
           exp_dir: str | None) -> dict:
    """What a Tune trial carries: everything the trainable needs for its group, as plain data."""
    t, name = members[0], group_name(members)
    return {"name": name, "group": f"{t.config.algo}/{t.method_name}", "env": t.config.env,
            "budget": t.config.steps, "warmup_steps": t.resolved.first_update_step(), "run_key": t.run_key,
            "members": [{"name": m.name, "run_key": m.run_key, "run": m.resolved.model_dump(mode="json"),
                         "tags": {**m.tags(), names.TAG_GROUP: name}, "params": m.resolved.model_dump(mode="json")}
                        for m in members],
            "tracking_uri": uri, "experiment_id": exp_id, "parent_run_id": parent_id,
            "checkpoint_every": checkpoint_every, "pid_dir": str(Path(exp_dir) / PID_DIR) if exp_dir else None}


def _storage_path(storage: str) -> str:
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _experiment_dir(storage: str, name: str, key: str, uri: str) -> str:
    """Named after the grid and the store: the same command finds the same Tune experiment."""
    digest = hashlib.sha256(f"{key} {uri}".encode()).hexdigest()[:8]
    return f"{storage.rstrip('/')}/{_slug(name)}-{digest}"


def _quiet_ray() -> None:
    """Our own progress lines replace Tune's tables; a checkpoint per evaluation is intended."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no tables at all
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # "Failed to fetch metrics for N trials": trials that had not reported yet; not a problem.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def _init_ray(opts: LaunchOptions, plan: _Plan) -> None:
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.update({k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ})
    local = opts.address is None
    kwargs: dict[str, Any] = {"num_cpus": opts.num_cpus, "include_dashboard": False} if local else {}
    if not ray.is_initialized():
        try:
            ray.init(address=opts.address, logging_level=logging.WARNING, log_to_driver=False,
                     runtime_env={"env_vars": env}, **kwargs)
        except ConnectionError as err:
            raise ValueError(f"--address {opts.address}: no Ray cluster answered ({err})") from None
    if local:  # a trial bigger than this machine would wait forever; a cluster may scale up
        have = ray.cluster_resources()
        for kind, need in (("CPU", plan.cpus), ("GPU", plan.gpus)):
            if need > have.get(kind, 0):
                _too_big(kind, need, have.get(kind, 0))


def _too_big(kind: str, need: float, have: float) -> None:
    raise ValueError(f"resources.{kind.lower()}s_per_trial: a trial needs {need:g} {kind}s but the local Ray has "
                     f"{have:g} (lower it, or join a cluster with --address)")


def _trainable(cpus: float, gpus: float):
    return tune.with_resources(run_trial, {"cpu": cpus, "gpu": gpus})


def _trial_name(trial) -> str:
    return trial.config["trial"]["name"]


def _trial_dirname(trial) -> str:
    t = trial.config["trial"]
    return f"{t['name']}-{t['run_key'][:8]}"


def _new_tuner(entries: list[dict], plan: _Plan, callback: ProgressCallback) -> tune.Tuner:
    return tune.Tuner(
        _trainable(plan.cpus, plan.gpus),
        param_space={"trial": tune.grid_search(entries)},
        tune_config=tune.TuneConfig(max_concurrent_trials=plan.max_concurrent, trial_name_creator=_trial_name,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=plan.exp_dir.rstrip("/").rsplit("/", 1)[1], storage_path=plan.storage,
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # replay buffers are large
            callbacks=[callback], verbose=0),
    )


def _restore(plan: _Plan, todo: list[Trial], out: Out) -> tune.Tuner | None:
    """This grid's interrupted Tune experiment, if there is one and it can still run `todo`."""
    exp_dir = plan.exp_dir
    if not tune.Tuner.can_restore(exp_dir):
        return None
    tuner = tune.Tuner.restore(exp_dir, trainable=_trainable(plan.cpus, plan.gpus), resume_unfinished=True,
                               resume_errored=True)
    # Tune does not rerun trials it saw finish; if the tracking store lacks their finished run
    # (deleted by hand), start a fresh Tune experiment instead: MLflow decides what is done.
    ended = {m["run_key"] for r in tuner.get_results() if r.config and not r.error and (r.metrics or {}).get("done")
             for m in r.config["trial"].get("members", [])}
    stale = [t for t in todo if t.run_key in ended]
    if stale:
        if "://" in exp_dir:
            raise ValueError(f"--storage: {exp_dir} lists {len(stale)} trials as done that the tracking store "
                             f"does not have; remove it to rerun them")
        old = f"{exp_dir}.stale-{int(time.time())}"
        shutil.move(exp_dir, old)
        out(f"Tune state in {exp_dir} lists {len(stale)} trials as done that the tracking store does not "
            f"have; moved it to {old} and starting afresh")
        return None
    out(f"resuming the Tune experiment in {exp_dir}")
    return tuner


def _first_line(err: BaseException | None) -> str:
    text = str(err or "").strip().splitlines()
    return text[-1] if text else type(err).__name__


def _state(t: Trial, status: progress.Status, step: int = 0) -> progress.TrialState:
    c = t.config
    return progress.TrialState(t.name, f"{c.algo}/{t.method_name}", c.env, status,
                               c.steps if status == "done" else step, c.steps)


# --- progress while it runs ---------------------------------------------------------------------
_TUNE_STATUS: dict[str, progress.Status] = {
    "TERMINATED": "done", "RUNNING": "running", "PENDING": "pending", "PAUSED": "pending", "ERROR": "failed"}


class ProgressCallback(tune.Callback):
    """Prints the experiment's progress every `every_s` seconds and when a trial ends.

    Tune creates its trials lazily (with max_concurrent, a few at a time), so the callback
    starts from the whole grid: trials finished before this launch as done, the rest pending.
    It is pickled with the Tune experiment (Tuner.restore brings it back), so it holds only
    plain data.
    """

    def __init__(self, planned: list[progress.TrialState], every_s: float):
        self.planned, self.every_s = planned, every_s
        self.setup()

    def setup(self, **info: Any) -> None:
        self._start = self._last = time.monotonic()
        self._seen: dict[str, tuple[float, int]] = {}  # trial id -> (time, step) of its last result
        self._speed: dict[str, float] = {}  # trial id -> steps/s between its last two results

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any) -> None:
        now, step = time.monotonic(), int(result.get("step", 0))
        last = self._seen.get(trial.trial_id)  # none for the first result after a (re)start
        # Random warm-up steps cost no gradient update: their speed says nothing about the rest.
        if last is not None and last[1] >= trial.config["trial"].get("warmup_steps", 0):
            self._speed[trial.trial_id] = (step - last[1]) / max(now - last[0], 1e-9)
        self._seen[trial.trial_id] = (now, step)

    def _states(self, trials: list[Any]) -> list[progress.TrialState]:
        states = {s.name: s for s in getattr(self, "planned", [])}  # (pickled by an older version)
        for trial in trials:
            t, r = trial.config["trial"], trial.last_result or {}
            status = _TUNE_STATUS.get(trial.status, "pending")
            # Ended by an interruption, not finished; a trial restored from an earlier launch's Tune
            # state can lack Tune's `done` although it reached its budget.
            if status == "done" and not r.get("done") and int(r.get("step", 0)) < t["budget"]:
                status = "pending"
            step = t["budget"] if status == "done" else int(r.get("step", 0))
            speed = self._speed.get(trial.trial_id) if status == "running" else None
            failed = r.get("failed_members") or {}
            for m in t.get("members", [t]):  # every member of a group moves with it
                if m["name"] in states and states[m["name"]].status == "done":
                    continue  # finished before this launch, as the store says (restored Tune state may disagree)
                member_status = "failed" if m.get("run_key") in failed else status
                states[m["name"]] = progress.TrialState(
                    m["name"], t["group"], t["env"], member_status, step, t["budget"], r.get("eval_return"), speed)
        return list(states.values())

    def _average_rate(self, states: list[progress.TrialState]) -> float | None:
        """Steps/s of the whole launch since the first progress line: the ETA's fallback while
        every running trial has only just started (no speed of its own yet)."""
        done, now = sum(min(s.step, s.budget) for s in states), time.monotonic()
        baseline = getattr(self, "_baseline", None)  # (absent in a callback pickled by an older version)
        if baseline is None:
            self._baseline = (now, done)
            return None
        return (done - baseline[1]) / (now - baseline[0]) if done > baseline[1] else None

    def _print(self, trials: list[Any]) -> None:
        states = self._states(trials)
        average = self._average_rate(states)  # always: its baseline is the first progress line
        rate = progress.throughput(states) or average
        for line in progress.report(states, rate, time.monotonic() - self._start):
            print(line, flush=True)
        self._last = time.monotonic()

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if time.monotonic() - self._last >= self.every_s:
            self._print(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        r = trial.last_result or {}
        what = "was already finished" if r.get("skipped") else f"finished, return {r.get('eval_return', float('nan')):,.1f}"
        print(f"trial {_trial_name(trial)} {what}", flush=True)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        print(f"trial {_trial_name(trial)} failed ({trial.num_failures} failures); logs in {trial.path}",
              flush=True)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        print(f"trial {_trial_name(trial)} failed; retrying from its last checkpoint", flush=True)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._print(trials)
