"""Training runs with the papers' protocol: step the environment, evaluate, account, checkpoint.

Layers (Dopamine-style): `evaluations()` runs the budget as a sequence of evaluation periods;
a period is `eval_every` environment steps; a step asks the agent for an action, hands it the
transition, and runs the updates the agent says are due (agents/protocol.py). The runner knows
no algorithm: what to store, when to train and how to explore is the agent's.

A runner may train a group: the seeds of one configuration in lockstep, one environment each,
one agent with stacked networks (agents/stacked.py). Each member keeps what a single run has —
its environments, evaluations, costs and metric sink — and logs the same metrics; a member
whose parameters stop being finite is marked failed (with its reason) and stops logging while
the others train on. A group of one is exactly a single run.

Checkpoint contract: a checkpoint taken right after the evaluation at step S holds everything
the remaining run depends on (the agent's state with its buffers and RNGs, each member's
training episode in progress, counters, costs); `load` + `evaluations()` continues with step
S+1 and gives exactly the numbers an uninterrupted run gives. The evaluation at S is not re-yielded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsrl_platform import names
from dsrl_platform.agents.protocol import Spaces, Transition
from dsrl_platform.agents.registry import ALGORITHMS
from dsrl_platform.config import RunConfig
from dsrl_platform.envs import EpisodeReplay, make_env, reseeds_each_episode
from dsrl_platform.methods import METHODS
from dsrl_platform.neurons import group_neuron_stats, neuron_stats
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


@dataclass
class MemberRun:
    """What one run of a group keeps for itself."""

    config: Any
    sink: MetricSink
    env: Any
    eval_env: Any
    episode: EpisodeReplay
    networks: dict
    costs: Accounting
    obs: Any = None
    episode_return: float = 0.0
    evals: list[Evaluation] = field(default_factory=list)
    failed: str | None = None  # why it stopped (its parameters are not finite), or None


class Runner:
    def __init__(self, config: RunConfig | list[RunConfig], sink: MetricSink | list[MetricSink] | None = None):
        configs = [c.resolve() for c in (config if isinstance(config, list) else [config])]
        sinks = sink if isinstance(sink, list) else [sink]
        if len(sinks) != len(configs):
            sinks = [None] * len(configs)
        self.config = cfg = configs[0]
        if any(c.model_dump(exclude={"seed"}) != cfg.model_dump(exclude={"seed"}) for c in configs):
            raise ValueError("group: members must share every option but the seed")
        torch.set_num_threads(cfg.threads)
        self.method = METHODS[cfg.method]
        algorithm = ALGORITHMS[cfg.algo]
        envs = [(make_env(c.env), make_env(c.env)) for c in configs]
        spaces = Spaces.of(envs[0][0])
        algorithm.check_spaces(spaces, cfg.env)
        self.grouped = len(configs) > 1
        self.agent = algorithm.agent(configs if self.grouped else cfg, spaces)
        self.members: list[MemberRun] = []
        for c, s, (env, eval_env), nets in zip(configs, sinks, envs, self.agent.member_networks):
            episode = EpisodeReplay(reseed=reseeds_each_episode(c.env))
            m = MemberRun(c, s or MemorySink(), env, eval_env, episode, nets, Accounting(nets, self.method.dense_gradient))
            m.obs = episode.reset(env, seed=c.seed)
            self.members.append(m)
        self.step = 0
        self._clock: tuple[float, int] | None = None  # steps/s between evaluations
        self.update_clock: tuple[float, int] | None = None  # when this process first updated
        self.update_time = UpdateClock()

    # --- a single run's view (member 0) ------------------------------------------------------
    @property
    def sink(self) -> MetricSink:
        return self.members[0].sink

    @property
    def evals(self) -> list[Evaluation]:
        return self.members[0].evals

    @property
    def costs(self) -> Accounting:
        return self.members[0].costs

    @property
    def networks(self) -> dict:
        return self.members[0].networks

    @property
    def env(self):
        return self.members[0].env

    # --- the run -------------------------------------------------------------------------
    def evaluations(self) -> Iterator[Evaluation]:
        """A single run's evaluations (a group: member 0's; see `group_evaluations`)."""
        for evaluations in self.group_evaluations():
            yield evaluations[0]

    def group_evaluations(self) -> Iterator[list[Evaluation | None]]:
        """At every evaluation point, each member's evaluation (None for a failed member)."""
        cfg = self.config
        if not self.evals and not self.members[0].failed:
            yield self._evaluate()
        self._clock = (time.perf_counter(), self.step)
        while self.step < cfg.steps:
            self._env_step()
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                yield self._evaluate()
        for g, m in enumerate(self.members):
            if m.failed is None:
                summary = {**self.summary(g), **self.measured(g)}
                m.sink.log({names.SUMMARY_PREFIX + k: v for k, v in summary.items() if isinstance(v, (int, float))},
                           self.step)
            m.sink.flush()

    def _env_step(self) -> None:
        agent, members = self.agent, self.members
        actions = agent.act([m.obs for m in members] if self.grouped else members[0].obs, explore=True)
        transitions = []
        for m, action in zip(members, actions if self.grouped else [actions]):
            next_obs, reward, terminated, truncated, _ = m.env.step(action)
            m.episode.record(action)
            transitions.append(Transition(m.obs, action, float(reward), next_obs, terminated, truncated))
        agent.observe(transitions if self.grouped else transitions[0])
        self.step += 1
        for m, t in zip(members, transitions):
            m.episode_return += t.reward
            m.obs = t.next_obs
            if t.terminated or t.truncated:
                if m.failed is None:
                    m.sink.log({names.TRAIN_EPISODE_RETURN: m.episode_return}, self.step)
                m.obs, m.episode_return = m.episode.reset(m.env), 0.0
        due = agent.updates_due(self.step)
        if due:
            start = time.perf_counter()
            for _ in range(due):
                agent.update()
            self.update_time.add(time.perf_counter() - start, due)
            for m in members:
                m.costs.update()
            if self.update_clock is None:
                self.update_clock = (time.perf_counter(), self.step)

    def _evaluate(self) -> list[Evaluation | None]:
        """Each member's evaluation episodes, stepped together (the agent acts for all at once)."""
        self._check_finite()
        cfg, members = self.config, self.members
        obs = [m.eval_env.reset(seed=m.config.seed + cfg.eval_seed_offset)[0] for m in members]
        returns: list[list[float]] = [[] for _ in members]
        totals = [0.0] * len(members)
        active = [m.failed is None for m in members]
        while any(active):
            actions = self.agent.act(obs if self.grouped else obs[0], explore=False)
            for g, (m, action) in enumerate(zip(members, actions if self.grouped else [actions])):
                if not active[g]:
                    continue
                obs[g], reward, terminated, truncated, _ = m.eval_env.step(action)
                totals[g] += float(reward)
                if terminated or truncated:
                    returns[g].append(totals[g])
                    totals[g] = 0.0
                    obs[g], _ = m.eval_env.reset()
                    active[g] = len(returns[g]) < cfg.eval_episodes
        out: list[Evaluation | None] = []
        neurons = self.neuron_metrics()
        for g, m in enumerate(members):
            if m.failed is not None:
                out.append(None)
                continue
            evaluation = Evaluation(self.step, float(np.mean(returns[g])), float(np.std(returns[g])),
                                    m.costs.train_flops, m.costs.dense_flops())
            m.evals.append(evaluation)
            m.sink.log(self._metrics(g, evaluation, neurons[g]), self.step)
            out.append(evaluation)
        self._clock = (time.perf_counter(), self.step)
        return out

    def _check_finite(self) -> None:
        """A member whose parameters are no longer finite has diverged: it is marked failed."""
        for m in self.members:
            if m.failed is None:
                bad = [net.name for net in m.networks.values()
                       if not all(bool(torch.isfinite(w.layer.weight).all()) for w in net.layers)]
                if bad:
                    m.failed = f"diverged: non-finite weights in {', '.join(bad)} by step {self.step}"

    def _metrics(self, g: int, evaluation: Evaluation, neurons: dict[str, float]) -> dict[str, float]:
        m = self.members[g]
        metrics = {names.EVAL_RETURN: evaluation.return_mean, names.EVAL_RETURN_STD: evaluation.return_std,
                   names.TRAIN_FLOPS: evaluation.train_flops, names.TRAIN_FLOPS_DENSE: evaluation.train_flops_dense,
                   names.FLOPS_PER_STEP: m.costs.flops_per_step()}
        metrics.update({names.train_flops_metric(net): v for net, v in m.costs.flops.items()})
        counts = self.param_counts(g)
        for net in m.networks:
            metrics[names.params_metric(net)] = counts[net]
            metrics[names.sparsity_metric(net)] = counts[f"{net}_sparsity"]
        metrics.update({names.PARAMS_TOTAL: counts["total"], names.PARAMS_TOTAL_WITH_BIASES: counts["total_with_biases"],
                        names.SPARSITY_TOTAL: counts["sparsity"]})
        metrics.update({names.layer_sparsity_metric(k): v for k, v in self.layer_sparsity(g).items()})
        if self.method.dynamic:
            metrics[names.TOPOLOGY_CHURN] = sum(net.training.last_churn for net in m.networks.values())
        metrics.update(neurons)
        metrics.update(self.agent.evaluation_metrics())
        update_ms = self.update_time.ms_since_mark(peek=g + 1 < len(self.members))
        if update_ms is not None:  # a group's update trains every member: each its share
            metrics[names.UPDATE_MS] = update_ms / len(self.members)
        if any(getattr(net, "kernels", None) is not None for net in m.networks.values()):
            paths = self.kernel_paths()
            metrics[names.SPARSE_KERNEL_LAYERS] = self.sparse_kernel_layers()
            metrics.update({names.kernel_sparse_metric(k): float(v != "dense") for k, v in paths.items()})
        if self._clock is not None and self.step > self._clock[1]:
            t0, s0 = self._clock
            metrics[names.STEPS_PER_S] = (self.step - s0) / (time.perf_counter() - t0)
        return metrics

    # --- accounting ----------------------------------------------------------------------
    def param_counts(self, g: int = 0) -> dict[str, float]:
        """Nonzero weights, the papers' convention: no biases, every trained network (TD3: actor
        + both critics), no targets; per network, in total, and the sparsities."""
        networks = self.members[g].networks
        counts, full = ({n: net.param_counts(dense=d) for n, net in networks.items()} for d in (False, True))
        out: dict[str, float] = {}
        for n in networks:
            out[n] = counts[n].weights
            out[f"{n}_sparsity"] = 1 - counts[n].weights / full[n].weights
        kept, total = sum(c.weights for c in counts.values()), sum(c.weights for c in full.values())
        out.update({"total": kept, "total_with_biases": sum(c.with_biases for c in counts.values()),
                    "sparsity": 1 - kept / total})
        return out

    def neuron_metrics(self) -> list[dict[str, float]]:
        """Per member: dormant fractions per network and hidden layer, and the srank of each
        network's penultimate features, on the agent's latest training batch (none before the
        first; a group: one stacked pass, each member's share of it)."""
        out: list[dict[str, float]] = [{} for _ in self.members]
        if not self.config.dormant_metrics:
            return out
        for name, inputs in self.agent.probe_inputs().items():
            module = self.agent.networks[name].module
            per_member = (group_neuron_stats(module, inputs, self.config.dormant_threshold, len(self.members))
                          if self.grouped else [neuron_stats(module, inputs, self.config.dormant_threshold)])
            for metrics, stats in zip(out, per_member):
                metrics[names.dormant_metric(name)] = stats.fraction
                metrics.update({names.dormant_metric(layer): v for layer, v in stats.layers.items()})
                if stats.feature_rank is not None:
                    metrics[names.feature_rank_metric(name)] = stats.feature_rank
        return out

    def layer_sparsity(self, g: int = 0) -> dict[str, float]:
        return {k: v for net in self.members[g].networks.values() for k, v in net.layer_sparsity().items()}

    def member_sparsity(self, g: int = 0) -> float:
        """The overall sparsity the method works at: now, for a pruning method its target, for a
        width-matched dense network the sparsity it matches."""
        if self.method.matches_sparsity:
            return float(self.config.sparsity)
        if not self.method.starts_dense:
            return self.param_counts(g)["sparsity"]
        networks = self.members[g].networks.values()
        total = sum(w.layer.weight.numel() for net in networks for w in net.layers)
        pruned = sum(s * layer.weight.numel() for net in networks
                     for s, layer in zip(net.training.updater.final_sparsities, net.topology.layers))
        return pruned / total

    @property
    def sparsity(self) -> float:
        return self.member_sparsity(0)

    def summary(self, g: int = 0) -> dict[str, float | int | str]:
        m = self.members[g]
        cfg = m.config
        returns = [e.return_mean for e in m.evals]
        counts = self.param_counts(g)
        dense_total = m.costs.dense_flops()
        train_flops = m.costs.train_flops
        summary: dict[str, float | int | str] = {
            "algo": cfg.algo, "method": cfg.method, "env": cfg.env, "seed": cfg.seed, "steps": self.step,
            names.SUMMARY_FINAL_RETURN: float(np.mean(returns[-cfg.final_evals:])) if returns else float("nan"),
            # Sokar's learning-curve area: all evaluation returns summed, over the budget.
            names.SUMMARY_LCA: float(np.sum(returns) / cfg.steps),
        }
        summary.update({f"params_{n}": counts[n] for n in m.networks})
        summary.update({"params_total": counts["total"], "params_total_with_biases": counts["total_with_biases"],
                        "sparsity": self.member_sparsity(g)})
        summary.update({f"{n}_sparsity": counts[f"{n}_sparsity"] for n in m.networks})
        summary.update({
            "train_flops": train_flops, "train_flops_dense": dense_total,
            "train_flops_relative": train_flops / dense_total if dense_total else 1.0,
            "flops_per_step": m.costs.flops_per_step(),
            "flops_per_action": m.networks[self.agent.acting_network].forward_flops(),
        })
        return summary

    def kernel_paths(self) -> dict[str, str]:
        """Each masked weight's compute path (sparse_kernels): dense, native or torch."""
        return {k: v for net in self.networks.values() for k, v in net.kernel_paths().items()}

    def sparse_kernel_layers(self) -> int:
        return sum(path != "dense" for path in self.kernel_paths().values())

    def measured(self, g: int = 0) -> dict[str, float | int | str]:
        """What this process measured rather than computed (so not reproducible, and kept out
        of `summary()`): update wall-clock (a group member: its share of the group's), and which
        layers the kernels ran sparse."""
        share = len(self.members)
        out: dict[str, float | int | str] = {names.SUMMARY_UPDATE_WALL_S: self.update_time.total_s / share}
        if self.update_time.mean_ms() is not None:
            out[names.SUMMARY_UPDATE_MS] = self.update_time.mean_ms() / share
        kernels = [net.kernels for net in self.members[g].networks.values() if getattr(net, "kernels", None) is not None]
        if kernels:
            paths = self.kernel_paths()
            out.update({names.SUMMARY_KERNEL_PATHS: ",".join(f"{k}={v}" for k, v in paths.items()),
                        names.SUMMARY_SPARSE_KERNEL_LAYERS: self.sparse_kernel_layers(),
                        names.SUMMARY_KERNEL_REBUILD_S: sum(k.rebuild_seconds for k in kernels),
                        names.SUMMARY_KERNEL_CALIBRATION_S: sum(k.calibration_seconds for k in kernels)})
        return out

    # --- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        members = [{"config": m.config.model_dump(mode="json"), "episode": m.episode.state_dict(),
                    "episode_return": m.episode_return, "evals": [list(dataclasses.astuple(e)) for e in m.evals],
                    "costs": m.costs.state_dict(), "failed": m.failed} for m in self.members]
        state = {"agent": self.agent.state_dict(), "step": self.step, "update_time": self.update_time.state_dict()}
        if not self.grouped:  # a single run's checkpoint layout
            single = members[0]
            single.pop("failed")
            return {**single, **state}
        return {**state, "members": members}

    def save(self, directory: str | Path) -> None:
        checkpoint.save(self.state_dict(), directory)

    def load(self, directory: str | Path) -> None:
        state = checkpoint.load(directory)  # plain data only: nothing in the file runs
        saved = state.get("members", [state])
        if [s.get("config") for s in saved] != [m.config.model_dump(mode="json") for m in self.members]:
            raise ValueError(f"resume: the checkpoint in {directory} was made with a different configuration")
        self.agent.load_state_dict(state["agent"])
        self.step = int(state["step"])
        for m, s in zip(self.members, saved):
            m.obs = m.episode.restore(m.env, s["episode"])
            m.episode_return = float(s["episode_return"])
            m.evals = [Evaluation(*e) for e in s["evals"]]
            m.costs.load_state_dict(s["costs"])
            m.failed = s.get("failed")
        if "update_time" in state:  # checkpoints from before the clock have none
            self.update_time.load_state_dict(state["update_time"])


def save_atomically(runner: Runner, directory: Path) -> None:
    checkpoint.save_atomically(runner.state_dict(), directory)


def write_json(path: Path, payload: object) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)

