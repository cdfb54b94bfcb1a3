"""One training run with the papers' protocol: interact, update, evaluate, account, checkpoint.

Layers (Dopamine-style): `evaluations()` runs the budget as a sequence of evaluation periods;
a period is `eval_every` environment steps; a step acts (random during warm-up), stores the
transition and, after warm-up, makes one gradient update.

Checkpoint contract: a checkpoint taken right after the evaluation at step S holds everything
the remaining run depends on (networks, optimizers, masks, replay buffer, counters, every RNG,
and the training episode in progress); `load` + `evaluations()` continues with step S+1 and
gives exactly the numbers an uninterrupted run gives. The evaluation at S is not re-yielded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from dsrl_platform import names
from dsrl_platform.agents import ALGORITHMS
from dsrl_platform.config import RunConfig
from dsrl_platform.envs import EpisodeReplay, make_env
from dsrl_platform.replay import ReplayBuffer

STATE_FILE, REPLAY_FILE = "state.pt", "replay.npz"


class MetricSink(Protocol):
    def log(self, metrics: Mapping[str, float], step: int) -> None: ...
    def flush(self) -> None: ...


class MemorySink:
    """Keeps every metric point in memory (tests, single runs)."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict[str, float]]] = []

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.points.append((step, dict(metrics)))

    def flush(self) -> None:
        pass

    def series(self, name: str) -> list[tuple[int, float]]:
        return [(s, m[name]) for s, m in self.points if name in m]


@dataclass
class Evaluation:
    step: int  # environment steps done
    return_mean: float
    return_std: float
    train_flops: float = 0.0  # cumulative at this point
    train_flops_dense: float = 0.0


class Trainer:
    def __init__(self, config: RunConfig, sink: MetricSink | None = None):
        self.config = cfg = config.resolve()
        torch.set_num_threads(cfg.threads)
        self.sink = sink or MemorySink()
        self.env, self.eval_env = make_env(cfg.env), make_env(cfg.env)
        space = self.env.action_space
        obs_dim, act_dim = self.env.observation_space.shape[0], space.shape[0]
        self.agent = ALGORITHMS[cfg.algo](obs_dim, act_dim, space.low, space.high, cfg)
        self.replay = ReplayBuffer(obs_dim, act_dim, min(cfg.buffer_size, cfg.steps))
        self.rng = np.random.default_rng(cfg.seed)  # warm-up actions, minibatch indices
        self.episode = EpisodeReplay()
        self.obs = self.episode.reset(self.env, seed=cfg.seed)
        self.episode_return = 0.0
        self.step = 0
        self.evals: list[Evaluation] = []
        self.train_flops = 0.0
        self.dense_flops_per_step = self.agent.train_flops_per_grad_step(dense=True)
        self._flops_per_step = self.agent.train_flops_per_grad_step()
        self._updates_seen = self._topology_updates()
        self._clock: tuple[float, int] | None = None

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
        self.sink.log({names.SUMMARY_PREFIX + k: v for k, v in self.summary().items()
                       if isinstance(v, (int, float))}, self.step)
        self.sink.flush()

    def _env_step(self) -> None:
        cfg, agent = self.config, self.agent
        if self.step < cfg.warmup_steps:
            space = self.env.action_space
            action = self.rng.uniform(space.low, space.high).astype(np.float32)
        else:
            action = agent.act(self.obs, explore=True)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        self.episode.record(action)
        self.replay.add(self.obs, action, reward, next_obs, terminated)
        self.episode_return += float(reward)
        self.step += 1
        self.obs = next_obs
        if terminated or truncated:
            self.sink.log({names.TRAIN_EPISODE_RETURN: self.episode_return}, self.step)
            self.obs, self.episode_return = self.episode.reset(self.env), 0.0
        if self.step > cfg.warmup_steps:  # one gradient update per step after warm-up
            agent.update(self.replay.sample(cfg.batch_size, self.rng, agent.device))
            self._account_flops()

    def _account_flops(self) -> None:
        self.train_flops += self._flops_per_step
        updates = self._topology_updates()
        if updates != self._updates_seen:  # a topology update: its cost, and nnz may have changed
            agent = self.agent
            for net, (before, after) in zip((agent.actor_sparsity, agent.critic_sparsity),
                                            zip(self._updates_seen, updates)):
                self.train_flops += (after - before) * agent.topology_update_flops(net)
            self._updates_seen = updates
            self._flops_per_step = agent.train_flops_per_grad_step()

    def _topology_updates(self) -> tuple[int, int]:
        return (self.agent.actor_sparsity.training.updates_done, self.agent.critic_sparsity.training.updates_done)

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
                                self.train_flops, self.dense_flops_per_step * self.grad_steps)
        self.evals.append(evaluation)
        self.sink.log(self._metrics(evaluation), self.step)
        return evaluation

    def _metrics(self, evaluation: Evaluation) -> dict[str, float]:
        metrics = {names.EVAL_RETURN: evaluation.return_mean, names.EVAL_RETURN_STD: evaluation.return_std,
                   names.TRAIN_FLOPS: evaluation.train_flops, names.TRAIN_FLOPS_DENSE: evaluation.train_flops_dense,
                   names.FLOPS_PER_STEP: self._flops_per_step}
        counts = self.param_counts()
        metrics.update({names.PARAMS_ACTOR: counts["actor"], names.PARAMS_CRITIC: counts["critic"],
                        names.PARAMS_TOTAL: counts["total"], names.PARAMS_TOTAL_WITH_BIASES: counts["total_with_biases"],
                        names.SPARSITY_ACTOR: counts["actor_sparsity"], names.SPARSITY_CRITIC: counts["critic_sparsity"],
                        names.SPARSITY_TOTAL: counts["sparsity"]})
        metrics.update({names.layer_sparsity_metric(k): v for k, v in self.layer_sparsity().items()})
        if self.config.method in ("ds", "set", "rigl"):
            a, c = self.agent.actor_sparsity.training, self.agent.critic_sparsity.training
            metrics[names.TOPOLOGY_CHURN] = a.last_churn + c.last_churn
        if self._clock is not None and self.step > self._clock[1]:
            t0, s0 = self._clock
            metrics[names.STEPS_PER_S] = (self.step - s0) / (time.perf_counter() - t0)
            self._clock = (time.perf_counter(), self.step)
        return metrics

    # --- accounting ----------------------------------------------------------------------
    @property
    def grad_steps(self) -> int:
        return max(self.step - self.config.warmup_steps, 0)

    def param_counts(self) -> dict[str, float]:
        """Nonzero weights, the papers' convention: no biases, actor + both critics, no targets."""
        counts, full = self.agent.param_counts(), self.agent.param_counts(dense=True)
        n_actor, n_critic = counts["actor"].weights, counts["critic"].weights
        full_actor, full_critic = full["actor"].weights, full["critic"].weights
        return {"actor": n_actor, "critic": n_critic, "total": n_actor + n_critic,
                "total_with_biases": counts["actor"].with_biases + counts["critic"].with_biases,
                "actor_sparsity": 1 - n_actor / full_actor, "critic_sparsity": 1 - n_critic / full_critic,
                "sparsity": 1 - (n_actor + n_critic) / (full_actor + full_critic)}

    def layer_sparsity(self) -> dict[str, float]:
        out = {}
        for net in (self.agent.actor_sparsity, self.agent.critic_sparsity):
            nnz = net.nnz()
            out.update({w.layer.name: 1 - nnz[w.layer.name] / w.layer.weight.numel() for w in net.layers})
        return out

    @property
    def sparsity(self) -> float:
        """The overall sparsity the method works at: now, or for pruning the final target."""
        if self.config.method != "prune":
            return self.param_counts()["sparsity"]
        actor, critic = self.agent.actor_sparsity, self.agent.critic_sparsity
        total = sum(w.layer.weight.numel() for net in (actor, critic) for w in net.layers)
        pruned = sum(s * layer.weight.numel()
                     for net in (actor, critic)
                     for s, layer in zip(net.training.updater.final_sparsities, net.topology.layers))
        return pruned / total


    def summary(self) -> dict[str, float | int | str]:
        cfg = self.config
        returns = [e.return_mean for e in self.evals]
        counts = self.param_counts()
        dense_total = self.dense_flops_per_step * self.grad_steps
        return {
            "algo": cfg.algo, "method": cfg.method, "env": cfg.env, "seed": cfg.seed, "steps": self.step,
            names.SUMMARY_FINAL_RETURN: float(np.mean(returns[-cfg.final_evals:])) if returns else float("nan"),
            # Sokar's learning-curve area: all evaluation returns summed, over the budget.
            names.SUMMARY_LCA: float(np.sum(returns) / cfg.steps),
            "params_actor": counts["actor"], "params_critic": counts["critic"], "params_total": counts["total"],
            "params_total_with_biases": counts["total_with_biases"],
            "sparsity": self.sparsity, "actor_sparsity": counts["actor_sparsity"],
            "critic_sparsity": counts["critic_sparsity"],
            "train_flops": self.train_flops, "train_flops_dense": dense_total,
            "train_flops_relative": self.train_flops / dense_total if dense_total else 1.0,
            "flops_per_step": self._flops_per_step,
            "flops_per_action": self.agent.forward_flops(self.agent.actor_sparsity),
        }

    # --- checkpoints ---------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "config": self.config.model_dump(mode="json"), "agent": self.agent.state_dict(),
            "rng": self.rng.bit_generator.state, "episode": self.episode.state_dict(),
            "episode_return": self.episode_return, "step": self.step,
            "evals": [dataclasses.astuple(e) for e in self.evals],
            "train_flops": self.train_flops, "flops_per_step": self._flops_per_step,
            "updates_seen": self._updates_seen,
        }
        torch.save(state, directory / STATE_FILE)
        self.replay.save(directory / REPLAY_FILE)

    def load(self, directory: str | Path) -> None:
        directory = Path(directory)
        state = torch.load(directory / STATE_FILE, weights_only=False)
        if state["config"] != self.config.model_dump(mode="json"):
            raise ValueError(f"resume: the checkpoint in {directory} was made with a different configuration")
        self.agent.load_state_dict(state["agent"])
        self.rng.bit_generator.state = state["rng"]
        self.obs = self.episode.restore(self.env, state["episode"])
        self.episode_return, self.step = state["episode_return"], state["step"]
        self.evals = [Evaluation(*e) for e in state["evals"]]
        self.train_flops, self._flops_per_step = state["train_flops"], state["flops_per_step"]
        self._updates_seen = tuple(state["updates_seen"])
        self.replay.load(directory / REPLAY_FILE)


def save_atomically(trainer: Trainer, directory: Path) -> None:
    """Write a checkpoint next to `directory`, then swap it in: a crash leaves the old one."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ckpt-", dir=directory.parent))
    trainer.save(tmp)
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, payload: object) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)
