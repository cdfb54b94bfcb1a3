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

from dsrl_platform.config import RunConfig, parse_assignments
from dsrl_platform.envs import check_env_id
from dsrl_platform.progress import duration

CHECKPOINT_DIR = "checkpoint"


def config_from_args(args: argparse.Namespace) -> RunConfig:
    options = {name: getattr(args, name) for name in ("algo", "method", "env", "seed", "steps")
               if getattr(args, name) is not None}
    for name, value in parse_assignments(args.assignments).items():
        if name in options and options[name] != value:
            raise ValueError(f"--set {name}: also given as --{name}")
        options[name] = value
    config = RunConfig(**options)
    validate_run(config)
    return config


def validate_run(config: RunConfig) -> None:
    """Everything that can be checked before training: env id, defaults, layer densities."""
    from dsrl_platform.agents.sparsity import check_densities
    from dsrl_platform.envs import env_dims

    check_env_id(config.env)
    check_densities(config, *env_dims(config.env))


def default_out(config: RunConfig) -> Path:
    return Path("results") / f"{config.algo}-{config.method}-{config.env}-s{config.seed}"


def run_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    out = Path(args.out) if args.out else default_out(config)
    checkpoint = out / CHECKPOINT_DIR
    if not args.resume and (out / "summary.json").exists():
        raise ValueError(f"--out: {out} already holds a finished run (choose another --out)")

    from dsrl_platform.trainer import Trainer, save_atomically, write_json

    trainer = Trainer(config)
    if args.resume:
        if not (checkpoint / "state.pt").exists():
            raise ValueError(f"--resume: no checkpoint in {checkpoint}")
        trainer.load(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", trainer.config.model_dump(mode="json"))
    cfg = trainer.config
    print(f"run: {cfg.algo}/{cfg.method} on {cfg.env}, seed {cfg.seed}, {cfg.steps} steps, "
          f"sparsity {trainer.sparsity:.3f} → {out}", file=sys.stderr, flush=True)

    start, start_step = time.perf_counter(), trainer.step
    for evaluation in trainer.evaluations():
        save_atomically(trainer, checkpoint)
        _write_curve(out, trainer)
        done = evaluation.step - start_step
        elapsed = time.perf_counter() - start
        eta = "" if done <= 0 else f", ETA {duration(elapsed / done * (cfg.steps - evaluation.step))}"
        print(f"  step {evaluation.step:>8}/{cfg.steps} ({100 * evaluation.step / cfg.steps:5.1f}%)  "
              f"return {evaluation.return_mean:9.2f} ± {evaluation.return_std:7.2f}{eta}",
              file=sys.stderr, flush=True)

    summary = trainer.summary()
    summary["wall_s"] = round(time.perf_counter() - start, 2)
    write_json(out / "layers.json", trainer.layer_sparsity())
    write_json(out / "summary.json", summary)
    print(f"run: final return {summary['final_return']:.2f}, LCA {summary['lca']:.4f}, "
          f"results in {out}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return 0


def _write_curve(out: Path, trainer) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["step", "return_mean", "return_std", "train_flops", "train_flops_dense"])
    for e in trainer.evals:
        writer.writerow([e.step, e.return_mean, e.return_std, e.train_flops, e.train_flops_dense])
    tmp = out / "evaluations.csv.tmp"
    tmp.write_text(buffer.getvalue())
    tmp.replace(out / "evaluations.csv")
