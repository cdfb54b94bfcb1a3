"""One training run with the papers' protocol: step the environment, evaluate, account, checkpoint.

Layers (Dopamine-style): `evaluations()` runs the budget as a sequence of evaluation periods;
a period is `eval_every` environment steps; a step asks the agent for an action, hands it the
transition, and runs the updates the agent says are due (agents/protocol.py). The runner knows
no algorithm: what to store, when to train and how to explore is the agent's.

Checkpoint contract: a checkpoint taken right after the evaluation at step S holds everything
the remaining run depends on (the agent's state with its buffer and RNGs, the training episode
in progress, counters, costs); `load` + `evaluations()` continues with step S+1 and gives
exactly the numbers an uninterrupted run gives. The evaluation at S is not re-yielded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dsrl_platform import names
from dsrl_platform.agents.protocol import Spaces, Transition
from dsrl_platform.agents.registry import ALGORITHMS
from dsrl_platform.config import RunConfig
from dsrl_platform.envs import EpisodeReplay, make_env, reseeds_each_episode
from dsrl_platform.methods import METHODS
from dsrl_platform.train import checkpoint
from dsrl_platform.train.accounting import Accounting
from dsrl_platform.train.clock import UpdateClock
from dsrl_platform.train.sinks import MemorySink, MetricSink


@dataclass
class Evaluation:
    step: int  # environment steps done
    return_mean: float
    return_std: float
    train_flops: float = 0.0  # cumulative at this point
    train_flops_dense: float = 0.0


class Runner:
    def __init__(self, config: RunConfig, sink: MetricSink | None = None):
        self.config = cfg = config.resolve()
        torch.set_num_threads(cfg.threads)
        self.sink = sink or MemorySink()
        self.method = METHODS[cfg.method]
        algorithm = ALGORITHMS[cfg.algo]
        self.env, self.eval_env = make_env(cfg.env), make_env(cfg.env)
        spaces = Spaces.of(self.env)
        algorithm.check_spaces(spaces, cfg.env)
        self.agent = algorithm.agent(cfg, spaces)
        self.networks = self.agent.networks
        self.episode = EpisodeReplay(reseed=reseeds_each_episode(cfg.env))
        self.obs = self.episode.reset(self.env, seed=cfg.seed)
        self.episode_return = 0.0
        self.step = 0
        self.evals: list[Evaluation] = []
        self.costs = Accounting(self.networks, self.method.dense_gradient)
        self._clock: tuple[float, int] | None = None  # steps/s between evaluations
        self.update_clock: tuple[float, int] | None = None  # when this process first updated
        self.update_time = UpdateClock()

    # --- the run -------------------------------------------------------------------------
    def evaluations(self) -> Iterator[Evaluation]:
        cfg = self.config
        if not self.evals:
            yield self._evaluate()
        self._clock = (time.perf_counter(), self.step)
        while self.step < cfg.steps:
            self._env_step()
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                yield self._evaluate()
        self.sink.log({names.SUMMARY_PREFIX + k: v for k, v in {**self.summary(), **self.measured()}.items()
                       if isinstance(v, (int, float))}, self.step)
        self.sink.flush()

    def _env_step(self) -> None:
        agent = self.agent
        action = agent.act(self.obs, explore=True)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.episode.record(action)
        agent.observe(Transition(self.obs, action, float(reward), next_obs, terminated, truncated))
        self.episode_return += float(reward)
        self.step += 1
        self.obs = next_obs
        if terminated or truncated:
            self.sink.log({names.TRAIN_EPISODE_RETURN: self.episode_return}, self.step)
            self.obs, self.episode_return = self.episode.reset(self.env), 0.0
        due = agent.updates_due(self.step)
        if due:
            start = time.perf_counter()
            for _ in range(due):
                agent.update()
            self.update_time.add(time.perf_counter() - start, due)
            self.costs.update()
            if self.update_clock is None:
                self.update_clock = (time.perf_counter(), self.step)

    def _evaluate(self) -> Evaluation:
        cfg, env = self.config, self.eval_env
        returns = []
        # The same evaluation episodes every time: the eval env is re-seeded with seed + offset.
        obs, _ = env.reset(seed=cfg.seed + cfg.eval_seed_offset)
        for _ in range(cfg.eval_episodes):
            done, total = False, 0.0
            while not done:
                obs, reward, terminated, truncated, _ = env.step(self.agent.act(obs, explore=False))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            obs, _ = env.reset()
        evaluation = Evaluation(self.step, float(np.mean(returns)), float(np.std(returns)),
                                self.costs.train_flops, self.costs.dense_flops())
        self.evals.append(evaluation)
        self.sink.log(self._metrics(evaluation), self.step)
        return evaluation

    def _metrics(self, evaluation: Evaluation) -> dict[str, float]:
        metrics = {names.EVAL_RETURN: evaluation.return_mean, names.EVAL_RETURN_STD: evaluation.return_std,
                   names.TRAIN_FLOPS: evaluation.train_flops, names.TRAIN_FLOPS_DENSE: evaluation.train_flops_dense,
                   names.FLOPS_PER_STEP: self.costs.flops_per_step()}
        metrics.update({names.train_flops_metric(net): v for net, v in self.costs.flops.items()})
        counts = self.param_counts()
        for net in self.networks:
            metrics[names.params_metric(net)] = counts[net]
            metrics[names.sparsity_metric(net)] = counts[f"{net}_sparsity"]
        metrics.update({names.PARAMS_TOTAL: counts["total"], names.PARAMS_TOTAL_WITH_BIASES: counts["total_with_biases"],
                        names.SPARSITY_TOTAL: counts["sparsity"]})
        metrics.update({names.layer_sparsity_metric(k): v for k, v in self.layer_sparsity().items()})
        if self.method.dynamic:
            metrics[names.TOPOLOGY_CHURN] = sum(net.training.last_churn for net in self.networks.values())
        update_ms = self.update_time.ms_since_mark()
        if update_ms is not None:
            metrics[names.UPDATE_MS] = update_ms
        if any(net.kernels is not None for net in self.networks.values()):
            paths = self.kernel_paths()
            metrics[names.SPARSE_KERNEL_LAYERS] = self.sparse_kernel_layers()
            metrics.update({names.kernel_sparse_metric(k): float(v != "dense") for k, v in paths.items()})
        if self._clock is not None and self.step > self._clock[1]:
            t0, s0 = self._clock
            metrics[names.STEPS_PER_S] = (self.step - s0) / (time.perf_counter() - t0)
            self._clock = (time.perf_counter(), self.step)
        return metrics

    # --- accounting ----------------------------------------------------------------------
    def param_counts(self) -> dict[str, float]:
        """Nonzero weights, the papers' convention: no biases, every trained network (TD3: actor
        + both critics), no targets; per network, in total, and the sparsities."""
        counts, full = ({n: net.param_counts(dense=d) for n, net in self.networks.items()} for d in (False, True))
        out: dict[str, float] = {}
        for n in self.networks:
            out[n] = counts[n].weights
            out[f"{n}_sparsity"] = 1 - counts[n].weights / full[n].weights
        kept, total = sum(c.weights for c in counts.values()), sum(c.weights for c in full.values())
        out.update({"total": kept, "total_with_biases": sum(c.with_biases for c in counts.values()),
                    "sparsity": 1 - kept / total})
        return out

    def layer_sparsity(self) -> dict[str, float]:
        return {k: v for net in self.networks.values() for k, v in net.layer_sparsity().items()}

    @property
    def sparsity(self) -> float:
        """The overall sparsity the method works at: now, for a pruning method its target, for a
        width-matched dense network the sparsity it matches."""
        if self.method.matches_sparsity:
            return float(self.config.sparsity)
        if not self.method.starts_dense:
            return self.param_counts()["sparsity"]
        total = sum(w.layer.weight.numel() for net in self.networks.values() for w in net.layers)
        pruned = sum(s * layer.weight.numel()
                     for net in self.networks.values()
                     for s, layer in zip(net.training.updater.final_sparsities, net.topology.layers))
        return pruned / total

    def summary(self) -> dict[str, float | int | str]:
        cfg = self.config
        returns = [e.return_mean for e in self.evals]
        counts = self.param_counts()
        dense_total = self.costs.dense_flops()
        train_flops = self.costs.train_flops
        summary: dict[str, float | int | str] = {
            "algo": cfg.algo, "method": cfg.method, "env": cfg.env, "seed": cfg.seed, "steps": self.step,
            names.SUMMARY_FINAL_RETURN: float(np.mean(returns[-cfg.final_evals:])) if returns else float("nan"),
            # Sokar's learning-curve area: all evaluation returns summed, over the budget.
            names.SUMMARY_LCA: float(np.sum(returns) / cfg.steps),
        }
        summary.update({f"params_{n}": counts[n] for n in self.networks})
        summary.update({"params_total": counts["total"], "params_total_with_biases": counts["total_with_biases"],
                        "sparsity": self.sparsity})
        summary.update({f"{n}_sparsity": counts[f"{n}_sparsity"] for n in self.networks})
        summary.update({
            "train_flops": train_flops, "train_flops_dense": dense_total,
            "train_flops_relative": train_flops / dense_total if dense_total else 1.0,
            "flops_per_step": self.costs.flops_per_step(),
            "flops_per_action": self.networks[self.agent.acting_network].forward_flops(),
        })
        return summary

    def kernel_paths(self) -> dict[str, str]:
        """Each masked weight's compute path (sparse_kernels): dense, native or torch."""
        return {k: v for net in self.networks.values() for k, v in net.kernel_paths().items()}

    def sparse_kernel_layers(self) -> int:
        return sum(path != "dense" for path in self.kernel_paths().values())

    def measured(self) -> dict[str, float | int | str]:
        """What this process measured rather than computed (so not reproducible, and kept out
        of `summary()`): update wall-clock, and which layers the kernels ran sparse."""
        out: dict[str, float | int | str] = {names.SUMMARY_UPDATE_WALL_S: self.update_time.total_s}
        if self.update_time.mean_ms() is not None:
            out[names.SUMMARY_UPDATE_MS] = self.update_time.mean_ms()
        kernels = [net.kernels for net in self.networks.values() if net.kernels is not None]
        if kernels:
            paths = self.kernel_paths()
            out.update({names.SUMMARY_KERNEL_PATHS: ",".join(f"{k}={v}" for k, v in paths.items()),
                        names.SUMMARY_SPARSE_KERNEL_LAYERS: self.sparse_kernel_layers(),
                        names.SUMMARY_KERNEL_REBUILD_S: sum(k.rebuild_seconds for k in kernels),
                        names.SUMMARY_KERNEL_CALIBRATION_S: sum(k.calibration_seconds for k in kernels)})
        return out

    # --- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "config": self.config.model_dump(mode="json"), "agent": self.agent.state_dict(),
            "episode": self.episode.state_dict(), "episode_return": self.episode_return, "step": self.step,
            "evals": [list(dataclasses.astuple(e)) for e in self.evals], "costs": self.costs.state_dict(),
            "update_time": self.update_time.state_dict(),
        }

    def save(self, directory: str | Path) -> None:
        checkpoint.save(self.state_dict(), directory)

    def load(self, directory: str | Path) -> None:
        state = checkpoint.load(directory)  # plain data only: nothing in the file runs
        if state.get("config") != self.config.model_dump(mode="json"):
            raise ValueError(f"resume: the checkpoint in {directory} was made with a different configuration")
        self.agent.load_state_dict(state["agent"])
        self.obs = self.episode.restore(self.env, state["episode"])
        self.episode_return, self.step = float(state["episode_return"]), int(state["step"])
        self.evals = [Evaluation(*e) for e in state["evals"]]
        self.costs.load_state_dict(state["costs"])
        if "update_time" in state:  # checkpoints from before the clock have none
            self.update_time.load_state_dict(state["update_time"])


def save_atomically(runner: Runner, directory: Path) -> None:
    checkpoint.save_atomically(runner.state_dict(), directory)


def write_json(path: Path, payload: object) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)
