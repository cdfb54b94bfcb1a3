"""`dsrl-platform status`: an experiment's latest launch and its trials, read from the store.

Trials are named as the launcher names them (the grid artifact and the runs carry the name), so
`status --trials` and the launch's own progress lines show the same trial the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from dsrl_platform import names
from dsrl_platform.progress import TrialState
from dsrl_platform.tracking.client import FAILED, RUNNING, Tracker, is_finished
from dsrl_platform.tracking.liveness import driver_gone


def experiment_progress(uri: str, experiment: str) -> tuple[list[TrialState], str | None]:
    """The trials of `experiment`'s latest launch as `TrialState`s, and a note on the launch.

    Trials of the grid without a run yet are pending; so are the running trials of a launch
    whose driver is gone (they resume when the launch is run again).
    """
    tracker = Tracker.connect(uri, must_exist=True)
    exp_id = tracker.existing_experiment_id(experiment)
    launch = tracker.latest_launch(exp_id)
    grid = tracker.launch_grid(launch.info.run_id) if launch else []
    runs = tracker.trial_runs(exp_id)
    gone = driver_gone(launch) if launch is not None else None
    now_ms = int(time.time() * 1000)
    states = [_state(tracker, row, runs.get(row["run_key"]), now_ms, stopped=gone is not None)
              for row in grid or [_row_from_run(r) for r in runs.values()]]
    note = None
    if launch is not None:
        status = f"interrupted: {gone}; run the launch again to resume" if gone else launch.info.status.lower()
        note = f"launch {launch.info.run_name} ({status})"
    return states, note


def _row_from_run(run: Any) -> dict[str, Any]:
    t = run.data.tags
    return {"run_key": t.get(names.TAG_RUN_KEY), "name": run.info.run_name, "algo": t.get(names.TAG_ALGO),
            "method": t.get(names.TAG_METHOD), "env": t.get(names.TAG_ENV), "seed": t.get(names.TAG_SEED),
            "steps": int(t.get(names.TAG_BUDGET, 0))}


def _name(row: Mapping[str, Any], run: Any) -> str:
    """The launcher's trial name: from the grid (launches since names were recorded there), else
    from the trial's run; a pending trial of an older grid by its number."""
    if row.get("name"):
        return row["name"]
    return run.info.run_name if run is not None else f"trial {row.get('trial', '?')}"


def _state(tracker: Tracker, row: Mapping[str, Any], run: Any, now_ms: int, *, stopped: bool) -> TrialState:
    name, group, env, budget = _name(row, run), f"{row['algo']}/{row['method']}", row["env"], int(row["steps"])
    if run is None:
        return TrialState(name, group, env, "pending", 0, budget)
    metrics = run.data.metrics
    ret = metrics.get(names.EVAL_RETURN)
    if is_finished(run):
        return TrialState(name, group, env, "done", budget, budget, ret)
    status = {RUNNING: "pending" if stopped else "running", FAILED: "failed"}.get(run.info.status, "pending")
    history = tracker.metric_history(run.info.run_id, names.EVAL_RETURN)
    step = max((s for s, _, _ in history), default=0)
    if status != "running":
        return TrialState(name, group, env, status, step, budget, ret)
    age = (now_ms - max(ts for _, ts, _ in history)) / 1000 if history else None
    return TrialState(name, group, env, status, step, budget, ret, metrics.get(names.STEPS_PER_S), age)
