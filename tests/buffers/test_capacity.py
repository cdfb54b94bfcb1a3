"""RLx2's dynamic-capacity replay on synthetic data: when it drops, what, and what stays."""

from __future__ import annotations

import numpy as np
import torch

from dsrl_platform.buffers.capacity import DynamicCapacity
from dsrl_platform.buffers.replay import ReplayBuffer

CPU = torch.device("cpu")


def filled(n: int, capacity: int) -> ReplayBuffer:
    """Transition t stores obs [t] and behaviour action [t / 1000] (a policy drifting with time)."""
    buffer = ReplayBuffer((1,), capacity, action_dim=1, behaviour_dim=1)
    for t in range(n):
        buffer.add(np.array([t], np.float32), np.array([0.0], np.float32), 0.0, np.array([t + 1], np.float32),
                   False, False, behaviour=np.array([t / 1000], np.float32))
    return buffer


def current_policy(obs: np.ndarray, behaviour: np.ndarray) -> float:
    """The policy now acts 0.9 everywhere: d = ½·mean (0.9 − a_b)²."""
    return float(np.mean((0.9 - behaviour) ** 2) / 2)


def test_far_policy_drops_the_oldest_tenth_and_keeps_the_rest():
    buffer = filled(500, 1000)
    policy = DynamicCapacity(check_every=100, samples=64, threshold=0.2, min_size=100)
    assert [policy.due(s) for s in (0, 99, 100, 500)] == [False, False, True, True]
    assert policy.check(buffer, current_policy) == 50
    # the oldest 64 have behaviour 0 … 0.063: d = ½·mean (0.9 − t/1000)² ≈ 0.378
    assert policy.last_distance == current_policy(None, (np.arange(64) / 1000).astype(np.float32))
    assert buffer.size == 450 and buffer.oldest(1).tolist() == [50]
    seen = buffer.sample(10_000, np.random.default_rng(0), CPU).obs[:, 0]
    assert seen.min() == 50 and seen.max() == 499  # the dropped transitions are never drawn
    # the distance is measured on the oldest data, now t = 50 …: still far, so it drops again
    assert policy.check(buffer, current_policy) == 45 and buffer.oldest(1).tolist() == [95]
    assert policy.dropped == 95


def test_near_policy_or_a_small_buffer_keeps_everything():
    buffer = filled(500, 1000)
    near = DynamicCapacity(check_every=100, samples=64, threshold=0.5, min_size=100)
    assert near.check(buffer, current_policy) == 0 and buffer.size == 500
    small = DynamicCapacity(check_every=100, samples=64, threshold=0.2, min_size=500)
    assert small.check(buffer, current_policy) == 0 and buffer.size == 500  # size must exceed the minimum
    assert small.last_distance > 0.2


def test_a_shrunk_ring_refills_its_dropped_slots_and_checkpoints_its_live_region():
    buffer = filled(100, 100)  # full: slots hold t = 0 … 99
    buffer.drop_oldest(30)  # live: t = 30 … 99
    more = ReplayBuffer((1,), 100, action_dim=1, behaviour_dim=1)
    for t in range(100, 120):  # written into slots 0 … 19, where t = 0 … 19 were
        buffer.add(np.array([t], np.float32), np.array([0.0], np.float32), 0.0, np.array([t + 1], np.float32),
                   False, False, behaviour=np.array([0.0], np.float32))
    assert buffer.size == 90 and buffer.obs[buffer.oldest(1), 0].tolist() == [30]
    seen = buffer.sample(20_000, np.random.default_rng(1), CPU).obs[:, 0]
    assert set(seen.tolist()) == set(range(30, 120))
    more.load_state_dict(buffer.state_dict())
    for name in ("size", "pos", "filled", "start"):
        assert getattr(more, name) == getattr(buffer, name)
    again = more.sample(64, np.random.default_rng(2), CPU)
    assert torch.equal(again.obs, buffer.sample(64, np.random.default_rng(2), CPU).obs)


def test_sampling_without_drops_is_what_it_was():
    """The slot of a draw is the draw itself unless the front was dropped (same seeds, same batches)."""
    buffer = filled(300, 200)  # wrapped and full
    draws = np.random.default_rng(5).integers(0, 200, size=32)
    assert buffer.sample(32, np.random.default_rng(5), CPU).obs[:, 0].tolist() == buffer.obs[draws, 0].tolist()
    young = filled(50, 200)
    draws = np.random.default_rng(5).integers(0, 50, size=32)
    assert young.sample(32, np.random.default_rng(5), CPU).obs[:, 0].tolist() == draws.tolist()
