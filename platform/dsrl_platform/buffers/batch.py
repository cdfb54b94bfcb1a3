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
    """(obs, action, reward, next_obs, not_done, window): TD target = reward + γ·not_done·V(next_obs).

    One-step: the transition as stored, `window` None. n-step (buffers/nstep.py): reward is the
    discounted sum Σ_{k<m} γ^k r_{t+k}, next_obs is s_{t+m}, not_done is γ^(m−1)·(1 − terminated),
    and `window` the inner states (SAC's entropy terms)."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor  # (batch, 1)
    next_obs: torch.Tensor
    not_done: torch.Tensor  # (batch, 1)
    window: NStepWindow | None = None
