"""n-step returns from the replay ring, checked by hand on tiny episodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsrl_platform.buffers.replay import ReplayBuffer

CPU = torch.device("cpu")
GAMMA = 0.5


def episodes(buffer: ReplayBuffer, spec: list[tuple[float, bool, bool]]) -> None:
    """Transition t: obs [t], next_obs [t + 1], reward r_t, (terminated, truncated) as listed."""
    for t, (reward, terminated, truncated) in enumerate(spec):
        buffer.add(np.array([t], np.float32), np.array([0.0], np.float32), reward,
                   np.array([t + 1], np.float32), terminated, truncated)


# episode A: t = 0..3, cut by a time limit at t = 3; episode B: t = 4..5, terminated at t = 5;
# episode C: t = 6..7, still running (t = 7 is the newest transition)
SPEC = [(1.0, False, False), (2.0, False, False), (4.0, False, False), (8.0, False, True),
        (16.0, False, False), (32.0, True, False), (64.0, False, False), (128.0, False, False)]
# first slot -> (Σ γ^k r, bootstrap obs, bootstrap weight γ^(m−1)·not_done) for n = 3, γ = 1/2
EXPECTED = {
    0: (1 + 2 / 2 + 4 / 4, 3, 1 / 4),  # three steps inside episode A
    1: (2 + 4 / 2 + 8 / 4, 4, 1 / 4),  # ends exactly at the time limit: bootstraps from the real last obs
    2: (4 + 8 / 2, 4, 1 / 2),  # cut by the time limit after 2 steps: still bootstraps
    3: (8, 4, 1.0),  # the truncated step itself: one step, bootstrap from its next_obs
    4: (16 + 32 / 2, 6, 0.0),  # episode B terminates at t = 5: no bootstrap
    5: (32, 6, 0.0),
    6: (64 + 128 / 2, 8, 1 / 2),  # the newest transition ends the window
    7: (128, 8, 1.0),
}


def batch_at(buffer: ReplayBuffer, slots: list[int], n: int = 3, window: bool = False):
    """sample_n_step with draws forced to `slots` (a generator whose integers are the slots)."""
    class Fixed:
        def integers(self, low, high, size):
            return np.array(slots)
    return buffer.sample_n_step(len(slots), Fixed(), CPU, n, GAMMA, window=window)


def test_n_step_returns_stop_at_time_limits_terminations_and_the_newest_transition():
    buffer = ReplayBuffer((1,), 16, action_dim=1)
    episodes(buffer, SPEC)
    slots = list(EXPECTED)
    batch = batch_at(buffer, slots)
    assert batch.obs[:, 0].tolist() == slots
    assert batch.reward[:, 0].tolist() == [EXPECTED[s][0] for s in slots]
    assert batch.next_obs[:, 0].tolist() == [EXPECTED[s][1] for s in slots]
    assert batch.not_done[:, 0].tolist() == [EXPECTED[s][2] for s in slots]
    # the target r + γ·not_done·V(next) is then the n-step target: for slot 0, 1 + 1 + 1 + γ³·V(s_3)
    v = 10.0
    assert float(batch.reward[0] + GAMMA * batch.not_done[0] * v) == 3 + GAMMA ** 3 * v


def test_one_step_windows_are_the_stored_transitions():
    buffer = ReplayBuffer((1,), 16, action_dim=1)
    episodes(buffer, SPEC)
    slots = list(EXPECTED)
    one = batch_at(buffer, slots, n=1)
    assert one.reward[:, 0].tolist() == [r for r, _, _ in SPEC]
    assert one.next_obs[:, 0].tolist() == [s + 1 for s in slots]
    assert one.not_done[:, 0].tolist() == [0.0 if term else 1.0 for _, term, _ in SPEC]


def test_the_window_lists_its_inner_states_for_the_soft_return():
    buffer = ReplayBuffer((1,), 16, action_dim=1)
    episodes(buffer, SPEC)
    batch = batch_at(buffer, [0, 2, 3, 6], window=True)
    w = batch.window
    assert w.inner_obs.shape == (4, 2, 1)
    # slot 0: s_1, s_2 both inside; slot 2: s_3 inside (the window holds t = 2, 3), slot 3: none;
    # slot 6: s_7 inside (t = 6, 7)
    assert w.inner_obs[0, :, 0].tolist() == [1, 2] and w.inner_discount[0].tolist() == [0.5, 0.25]
    assert w.inner_obs[1, 0, 0] == 3 and w.inner_discount[1].tolist() == [0.5, 0.0]
    assert w.inner_discount[2].tolist() == [0.0, 0.0]
    assert w.inner_obs[3, 0, 0] == 7 and w.inner_discount[3].tolist() == [0.5, 0.0]
    assert torch.isfinite(w.inner_obs).all()  # slots outside a window are never garbage


def test_windows_follow_the_ring_around_its_end_and_draw_what_sample_draws():
    buffer = ReplayBuffer((1,), 4, action_dim=1)
    episodes(buffer, SPEC[:6])  # slots hold t = 4, 5, 2, 3 (t = 0, 1 overwritten), newest t = 5
    batch = batch_at(buffer, [3, 2])  # t = 3 (truncated) and t = 2 → 3 (then the time limit)
    assert batch.obs[:, 0].tolist() == [3, 2]
    assert batch.reward[:, 0].tolist() == [8.0, 4 + 8 / 2] and batch.next_obs[:, 0].tolist() == [4, 4]
    episodes(buffer, [(1.0, False, False)] * 0)
    a = buffer.sample(64, np.random.default_rng(3), CPU)
    b = buffer.sample_n_step(64, np.random.default_rng(3), CPU, 3, GAMMA)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.action, b.action)


@pytest.mark.parametrize("n", [2, 5])
def test_every_window_matches_a_direct_sum(n):
    """Random episodes: each drawn window equals the return summed step by step."""
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer((1,), 50, action_dim=1)
    spec = [(float(rng.normal()), bool(rng.random() < 0.1), bool(rng.random() < 0.1)) for _ in range(80)]
    episodes(buffer, spec)  # the ring holds t = 30..79
    batch = buffer.sample_n_step(200, np.random.default_rng(1), CPU, n, 0.9)
    for t, reward, nxt, weight in zip(batch.obs[:, 0].tolist(), batch.reward[:, 0].tolist(),
                                      batch.next_obs[:, 0].tolist(), batch.not_done[:, 0].tolist()):
        t = int(t)
        total, k = 0.0, 0
        while True:
            r, term, trunc = spec[t + k]
            total += 0.9 ** k * r
            k += 1
            if term or trunc or k == n or t + k == 80:
                break
        assert reward == pytest.approx(total, rel=1e-6)
        assert nxt == t + k and weight == pytest.approx(0.0 if term else 0.9 ** (k - 1))
