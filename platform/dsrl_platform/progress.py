"""Progress of an experiment in a few lines: counts, best returns so far, time left.

Pure formatting over `TrialState`s, shared by the launcher (fed by Ray Tune results) and
`dsrl-platform status` (fed by the tracking store), so both show the same thing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Literal

Status = Literal["done", "running", "pending", "failed"]
STATUSES: tuple[Status, ...] = ("done", "running", "pending", "failed")
STALE_S = 1800  # a running trial silent this long is probably gone (driver killed)


@dataclass
class TrialState:
    name: str  # e.g. td3-ds-HalfCheetah-v4-s0
    group: str  # what seeds are pooled over, e.g. td3/ds
    env: str
    status: Status
    step: int  # environment steps done
    budget: int
    eval_return: float | None = None  # latest evaluation return
    steps_per_s: float | None = None  # current speed (running trials)
    silent_s: float | None = None  # seconds since its last evaluation was logged


def counts(states: list[TrialState]) -> dict[Status, int]:
    c = Counter(s.status for s in states)
    return {k: c.get(k, 0) for k in STATUSES}


def remaining_steps(states: list[TrialState]) -> int:
    return sum(max(s.budget - s.step, 0) for s in states if s.status != "done")


def throughput(states: list[TrialState]) -> float | None:
    """Steps/s of all running trials together; those without a speed yet count as the average."""
    running = [s for s in states if s.status == "running"]
    known = [s.steps_per_s for s in running if s.steps_per_s]
    return sum(known) / len(known) * len(running) if known else None


def eta_s(states: list[TrialState], steps_per_s: float | None) -> float | None:
    """Time left at the current aggregate speed (all running trials together)."""
    left = remaining_steps(states)
    if left == 0:
        return 0.0
    if not steps_per_s or steps_per_s <= 0:
        return None
    return left / steps_per_s


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def headline(states: list[TrialState], steps_per_s: float | None, elapsed_s: float | None = None) -> str:
    """'12/150 done · 2 running · 135 pending · 1 failed · 3.1% of steps · ETA 4h10m'"""
    c = counts(states)
    total_budget = sum(s.budget for s in states) or 1
    done_frac = 1 - remaining_steps(states) / total_budget
    parts = [f"{c['done']}/{len(states)} done", f"{c['running']} running", f"{c['pending']} pending",
             f"{c['failed']} failed", f"{100 * done_frac:.1f}% of steps"]
    if steps_per_s:
        parts.append(f"{steps_per_s:,.0f} steps/s")
    parts.append(f"ETA {duration(eta_s(states, steps_per_s))}")
    prefix = f"[{duration(elapsed_s)}] " if elapsed_s is not None else ""
    return prefix + " · ".join(parts)


def best_returns(states: list[TrialState]) -> dict[str, list[tuple[str, float]]]:
    """Per environment: each group's best latest evaluation return, best first."""
    best: dict[str, dict[str, float]] = defaultdict(dict)
    for s in states:
        if s.eval_return is not None:
            g = best[s.env]
            g[s.group] = max(g.get(s.group, float("-inf")), s.eval_return)
    return {env: sorted(groups.items(), key=lambda kv: -kv[1]) for env, groups in sorted(best.items())}


def best_lines(states: list[TrialState]) -> list[str]:
    return [f"  best return {env}: " + " · ".join(f"{g} {v:,.1f}" for g, v in groups)
            for env, groups in best_returns(states).items()]


def report(states: list[TrialState], steps_per_s: float | None, elapsed_s: float | None = None) -> list[str]:
    return [headline(states, steps_per_s, elapsed_s), *best_lines(states)]


def trial_table(states: list[TrialState]) -> list[str]:
    """One line per trial that is not pending (status, step/budget, latest return)."""
    lines = []
    for s in states:
        if s.status == "pending" and s.step == 0:
            continue
        ret = "-" if s.eval_return is None else f"{s.eval_return:,.1f}"
        extra = ""
        if s.status == "running" and s.silent_s is not None:
            extra = f"  (last eval {duration(s.silent_s)} ago{', stalled?' if s.silent_s > STALE_S else ''})"
        lines.append(f"  {s.status:8s} {s.name:40s} {s.step:>9,}/{s.budget:<9,} return {ret}{extra}")
    return lines
