"""Grouped-training throughput: steps/s per member at group sizes 1 and k, against the machine.

`dsrl-platform bench --groups 1,5` measures, in one run and one thread, for every algorithm ×
method: environment steps per second per member (acting, storing and one update per step, as
in training), the ratio to group size 1, the achieved GFLOP/s of the updates (Sokar's count:
3 × forward per gradient step) and its fraction of this machine's float32 matmul peak, which
the bench measures itself; beside them a plain single-file PyTorch TD3 loop (CleanRL-style,
batch 100, 256-256) as the outside reference. Configurations are measured in interleaved rounds
and the median round is kept: the machines are shared and noisy, ratios in one run are what
the numbers mean.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

WARMUP = 1000


def matmul_peak_gflops(n: int = 256, batch: int = 100, seconds: float = 0.5) -> float:
    """Float32 GFLOP/s of a (batch × n) @ (n × n) product, the shape of the agents' layers."""
    a, b = torch.randn(batch, n), torch.randn(n, n)
    flops = 2 * batch * n * n
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            for _ in range(50):
                torch.mm(a, b)
            count += 50
        best = max(best, count * flops / (time.perf_counter() - start) / 1e9)
    return best


class _PlainTD3:
    """A plain PyTorch TD3 step in the style of CleanRL's td3_continuous_action.py: separate
    nn.Sequential actor and critics, standard Adam, one environment step and one update."""

    def __init__(self, env_id: str, seed: int = 0):
        import gymnasium as gym

        from dsrl_platform.envs import make_env

        self.env = make_env(env_id)
        obs_dim, act_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        torch.manual_seed(seed)
        mlp = lambda i, o: nn.Sequential(nn.Linear(i, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, o))  # noqa: E731
        self.actor, self.q1, self.q2 = mlp(obs_dim, act_dim), mlp(obs_dim + act_dim, 1), mlp(obs_dim + act_dim, 1)
        self.targets = [mlp(obs_dim, act_dim), mlp(obs_dim + act_dim, 1), mlp(obs_dim + act_dim, 1)]
        for t, o in zip(self.targets, (self.actor, self.q1, self.q2)):
            t.load_state_dict(o.state_dict())
        self.q_opt = torch.optim.Adam(list(self.q1.parameters()) + list(self.q2.parameters()), lr=1e-3)
        self.a_opt = torch.optim.Adam(self.actor.parameters(), lr=1e-3)
        n = 100_000
        self.obs = np.zeros((n, obs_dim), np.float32)
        self.next_obs = np.zeros((n, obs_dim), np.float32)
        self.actions = np.zeros((n, act_dim), np.float32)
        self.rewards = np.zeros(n, np.float32)
        self.dones = np.zeros(n, np.float32)
        self.size, self.it, self.rng = 0, 0, np.random.default_rng(seed)
        self.o, _ = self.env.reset(seed=seed)
        self.gym = gym

    def step(self) -> None:
        with torch.no_grad():
            a = torch.tanh(self.actor(torch.as_tensor(self.o, dtype=torch.float32)))
            a = (a + 0.1 * torch.randn_like(a)).clamp(-1, 1).numpy()
        o2, r, term, trunc, _ = self.env.step(a)
        i = self.size % len(self.obs)
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.dones[i] = self.o, a, r, o2, term
        self.size += 1
        self.o = o2 if not (term or trunc) else self.env.reset()[0]
        if self.size < WARMUP:
            return
        idx = self.rng.integers(0, min(self.size, len(self.obs)), 100)
        o, a_, r_, o2_, d = (torch.as_tensor(x[idx]) for x in (self.obs, self.actions, self.rewards, self.next_obs, self.dones))
        with torch.no_grad():
            na = (torch.tanh(self.targets[0](o2_)) + (0.2 * torch.randn_like(a_)).clamp(-0.5, 0.5)).clamp(-1, 1)
            x2 = torch.cat([o2_, na], 1)
            y = r_ + 0.99 * (1 - d) * torch.min(self.targets[1](x2), self.targets[2](x2)).squeeze(1)
        x = torch.cat([o, a_], 1)
        loss = F.mse_loss(self.q1(x).squeeze(1), y) + F.mse_loss(self.q2(x).squeeze(1), y)
        self.q_opt.zero_grad()
        loss.backward()
        self.q_opt.step()
        self.it += 1
        if self.it % 2 == 0:
            actor_loss = -self.q1(torch.cat([o, torch.tanh(self.actor(o))], 1)).mean()
            self.a_opt.zero_grad()
            actor_loss.backward()
            self.a_opt.step()
            with torch.no_grad():
                for t, src in zip(self.targets, (self.actor, self.q1, self.q2)):
                    for tp, p in zip(t.parameters(), src.parameters()):
                        tp.lerp_(p, 0.005)


def _runner(algo: str, method: str, env: str | None, group: int, device: str):
    from dsrl_platform.bench import bench_config
    from dsrl_platform.train.runner import Runner

    cfgs = [bench_config(algo, method, env, device).model_copy(update={"seed": s}) for s in range(group)]
    runner = Runner(cfgs if group > 1 else cfgs[0])
    for _ in range(runner.config.first_update_step() + 20):  # the warm-up, then a few updates
        runner._env_step()
    return runner


def _timed(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def run(algos: list[str], methods: list[str], env: str | None, groups: list[int], steps: int, rounds: int = 3,
        device: str = "cpu", log: Callable[[str], None] = print) -> dict:
    """Steps/s per member of every algo × method × group size, the plain loop and the peak."""
    torch.set_num_threads(1)
    peak = matmul_peak_gflops()
    plain = _PlainTD3("HalfCheetah-v4")  # the outside reference: TD3 on HalfCheetah, as measured elsewhere
    for _ in range(WARMUP + 20):
        plain.step()
    runners = {(a, m, g): _runner(a, m, env, g, device) for a in algos for m in methods for g in groups}
    rates: dict = {k: [] for k in runners} | {"plain": []}
    for r in range(rounds):  # interleaved: every configuration sees the same machine in each round
        log(f"bench: round {r + 1}/{rounds}")
        rates["plain"].append(_timed(plain.step, steps))
        for key, runner in runners.items():
            rates[key].append(_timed(runner._env_step, steps) * key[2])  # member-steps/s
    plain_rate = statistics.median(rates["plain"])
    rows = []
    for (a, m, g), runner in runners.items():
        member_rate = statistics.median(rates[(a, m, g)]) / g
        single = statistics.median(rates[(a, m, groups[0])]) / groups[0]
        flops = runner.costs.flops_per_step()  # per member, per environment step, at its sparsity
        gflops = member_rate * g * flops / 1e9
        rows.append({"algo": a, "method": m, "group": g, "member_steps_per_s": round(member_rate, 1),
                     "ratio_to_group_1": round(member_rate / single, 3), "gflops": round(gflops, 2),
                     "peak_fraction": round(gflops / peak, 3),
                     "ratio_to_plain_loop": (round(member_rate / plain_rate, 3)
                                             if a == "td3" and runner.config.env == "HalfCheetah-v4" else None)})
    return {"matmul_peak_gflops": round(peak, 1), "plain_td3_steps_per_s": round(plain_rate, 1), "rows": rows}
