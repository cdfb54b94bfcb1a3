"""Training cost of a run, counted per network from what each network actually did.

Sokar et al. / RigL (Evci et al. 2020), sparse/flops.py: a gradient step of a network costs 3 ×
its forward FLOPs on its batch, a sparse layer in proportion to its nonzeros. Each network
counts its own gradient steps (TD3's actor trains every policy_delay-th step, PPO's networks
many times per rollout), so the totals need no per-algorithm formula. A topology update of a
method that reads the dense gradient (RigL) adds that step's extra backward cost, (f_D − f_S)·batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsrl_platform.sparse.flops import rigl_update_extra_flops
from dsrl_platform.sparse.network import SparseNetwork


class Accounting:
    def __init__(self, networks: Mapping[str, SparseNetwork], dense_gradient: bool):
        self.networks, self.dense_gradient = networks, dense_gradient
        self.flops = {name: 0.0 for name in networks}  # cumulative, per network
        self._seen = {name: (net.grad_steps, net.topology_updates) for name, net in networks.items()}
        self._rate = {name: net.train_flops_per_step() for name, net in networks.items()}

    def update(self) -> None:
        """Charge what each network did since the last call (call after every agent update).

        Gradient steps cost the nonzeros they ran with: the rate from before any topology update
        of this call (an update step's gradient is taken before its masks change)."""
        for name, net in self.networks.items():
            steps, updates = net.grad_steps, net.topology_updates
            steps_before, updates_before = self._seen[name]
            if steps == steps_before and updates == updates_before:
                continue
            self.flops[name] += (steps - steps_before) * self._rate[name]
            if updates != updates_before:  # nnz may have changed (pruning), and RigL's dense gradient
                if self.dense_gradient:
                    self.flops[name] += (updates - updates_before) * rigl_update_extra_flops(
                        net.forward_flops(), net.forward_flops(dense=True), net.batch_size)
                self._rate[name] = net.train_flops_per_step()
            self._seen[name] = (steps, updates)

    @property
    def train_flops(self) -> float:
        return sum(self.flops.values())

    def dense_flops(self) -> float:
        """What the dense networks would have spent on the same gradient steps."""
        return sum(net.grad_steps * net.train_flops_per_step(dense=True) for net in self.networks.values())

    def flops_per_step(self, dense: bool = False) -> float:
        """Training FLOPs per environment step at the current sparsity (or dense)."""
        return sum((self._rate[name] if not dense else net.train_flops_per_step(dense=True)) * net.update_rate
                   for name, net in self.networks.items())

    def state_dict(self) -> dict[str, Any]:
        return {"flops": dict(self.flops), "seen": {k: list(v) for k, v in self._seen.items()},
                "rate": dict(self._rate)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flops = {k: float(v) for k, v in state["flops"].items()}
        self._seen = {k: (int(v[0]), int(v[1])) for k, v in state["seen"].items()}
        self._rate = {k: float(v) for k, v in state["rate"].items()}
