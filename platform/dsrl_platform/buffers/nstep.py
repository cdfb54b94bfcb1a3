"""n-step windows over a replay ring: which transitions an n-step return from slot t sums.

A window from transition t takes the next transitions t, t+1, …, t+n−1 of the same episode and
stops early at the episode's end, terminated or cut by a time limit (RLx2's code calls the
latter a reset), or at the newest transition stored. With m ≤ n transitions in it,

    G_t = Σ_{k<m} γ^k r_{t+k} + γ^m · (1 − terminated_{t+m−1}) · V(s_{t+m}),

so a time-limit cut still bootstraps from the real last observation, and a termination does
not. SAC's soft return (Tan et al. 2023's code) adds −α·γ^j·log π(a_j | s_{t+j}) for the inner
states s_{t+1} … s_{t+m−1}, with a_j drawn from the current policy: buffers/batch.py's
`NStepWindow` carries them.
"""

from __future__ import annotations

import numpy as np


def n_step_window(first: np.ndarray, n: int, episode_end: np.ndarray, newest: int,
                  capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """(slots, inside): inside[b, k] whether transition k of window b is summed (k < m_b), and
    slots[b, k] its slot, (first[b] + k) mod capacity where inside, first[b] elsewhere (a slot
    outside the window may hold nothing yet: what is gathered there must be finite to be weighted
    by 0). `episode_end[s]`: the episode ended at slot s; `newest`: slot of the newest
    transition (windows never pass it)."""
    slots = (first[:, None] + np.arange(n)) % capacity
    available = (newest - first) % capacity  # transitions after `first` that are stored
    inside = np.ones((len(first), n), bool)
    for k in range(1, n):
        inside[:, k] = inside[:, k - 1] & ~episode_end[slots[:, k - 1]] & (k <= available)
    return np.where(inside, slots, first[:, None]), inside
