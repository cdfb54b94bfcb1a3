"""A replay minibatch as the agents' `learn` receives it."""

from __future__ import annotations

from typing import NamedTuple

import torch


class NStepWindow(NamedTuple):
    """The inner states of a batch's n-step windows (buffers/nstep.py): s_{t+j} for j = 1 … n−1
    as (batch, n−1, …), and γ^j where s_{t+j} lies inside the window (j < m), else 0."""

    inner_obs: torch.Tensor
    inner_discount: torch.Tensor


class Batch(NamedTuple):
    """(obs, action, reward, next_obs, not_done): the TD target is reward + γ·not_done·V(next_obs).

    One-step: the transitions as stored. n-step (buffers/nstep.py): reward is the discounted sum
    Σ_{k<m} γ^k r_{t+k}, next_obs is s_{t+m} and not_done is γ^(m−1)·(1 − terminated), so the
    same formula gives the n-step target; `window`, where asked for, lists the inner states
    (SAC's entropy terms)."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor  # (batch, 1)
    next_obs: torch.Tensor
    not_done: torch.Tensor  # (batch, 1)

    window = None  # NStepWindow | None (set on a WindowedBatch)


class WindowedBatch(Batch):
    """An n-step Batch with its windows' inner states (still five fields when unpacked)."""

    def __new__(cls, *fields: torch.Tensor, window: NStepWindow):
        batch = super().__new__(cls, *fields)
        batch.window = window
        return batch
