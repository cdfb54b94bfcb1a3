"""`dsrl-platform run`: one agent, the papers' protocol, a results directory.

The results directory holds config.json (the resolved options), evaluations.csv (the
evaluation and FLOPs curve), layers.json (per-layer sparsity), summary.json and checkpoint/
(the latest evaluation point; `--resume` continues from it).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

from dsrl_platform import config
from dsrl_platform.config import RunConfig, parse_assignments
from dsrl_platform.progress import duration

CHECKPOINT_DIR = "checkpoint"


def config_from_args(args: argparse.Namespace) -> RunConfig:
    options = {name: getattr(args, name) for name in ("algo", "method", "env", "seed", "steps")
               if getattr(args, name) is not None}
    for name, value in parse_assignments(args.assignments).items():
        if name in options and options[name] != value:
            raise ValueError(f"--set {name}: also given as --{name}")
        options[name] = value
    cfg = config.build(**options)
    for line in validate_run(cfg):
        print(f"dsrl-platform run: warning: {line}", file=sys.stderr)
    return cfg


def validate_run(cfg: RunConfig) -> list[str]:
    """Everything a run would refuse, before anything is written: options and their defaults,
    the environment, the layer densities, the device. Returns the warnings."""
    from dsrl_platform.agents.registry import check_run

    return check_run(cfg.resolve()) + cfg.warnings()


def default_out(cfg: RunConfig) -> Path:
    return Path("results") / f"{cfg.algo}-{cfg.method}-{cfg.env.replace('/', '_')}-s{cfg.seed}"


def run_command(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    out = Path(args.out) if args.out else default_out(cfg)
    checkpoint = out / CHECKPOINT_DIR
    if not args.resume and (out / "summary.json").exists():
        raise ValueError(f"--out: {out} already holds a finished run (choose another --out)")
    if args.resume and not (checkpoint / "state.pt").exists():
        raise ValueError(f"--resume: no checkpoint in {checkpoint}")

    from dsrl_platform.train.runner import Runner, save_atomically, write_json

    trainer = Runner(cfg)
    if args.resume:
        trainer.load(checkpoint)  # plain data only; a foreign or different-config checkpoint is refused
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", trainer.config.model_dump(mode="json"))
    cfg = trainer.config
    print(f"run: {cfg.algo}/{cfg.method} on {cfg.env}, seed {cfg.seed}, {cfg.steps} steps, "
          f"sparsity {trainer.sparsity:.3f} → {out}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    for evaluation in trainer.evaluations():
        save_atomically(trainer, checkpoint)
        _write_curve(out, trainer)
        eta = _eta(trainer, evaluation.step, cfg.steps)
        print(f"  step {evaluation.step:>8}/{cfg.steps} ({100 * evaluation.step / cfg.steps:5.1f}%)  "
              f"return {evaluation.return_mean:9.2f} ± {evaluation.return_std:7.2f}{eta}",
              file=sys.stderr, flush=True)

    summary = {**trainer.summary(), **trainer.measured()}
    summary["wall_s"] = round(time.perf_counter() - start, 2)
    write_json(out / "layers.json", trainer.layer_sparsity())
    write_json(out / "summary.json", summary)
    print(f"run: final return {summary['final_return']:.2f}, LCA {summary['lca']:.4f}, "
          f"results in {out}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return 0


def _eta(trainer, step: int, budget: int) -> str:
    """From the speed of the update phase: random warm-up steps cost no gradient update and
    would make the first estimates several times too short."""
    if step >= budget:
        return ""
    if trainer.update_clock is None:
        return ", ETA after the warm-up"
    t0, s0 = trainer.update_clock
    done = step - s0
    return "" if done <= 0 else f", ETA {duration((time.perf_counter() - t0) / done * (budget - step))}"


def _write_curve(out: Path, trainer) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["step", "return_mean", "return_std", "train_flops", "train_flops_dense"])
    for e in trainer.evals:
        writer.writerow([e.step, e.return_mean, e.return_std, e.train_flops, e.train_flops_dense])
    tmp = out / "evaluations.csv.tmp"
    tmp.write_text(buffer.getvalue())
    tmp.replace(out / "evaluations.csv")
