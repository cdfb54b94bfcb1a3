"""Issue 14's options in the runner: RLx2's three parts, dormant-neuron metrics and ReDo.

Each option changes what it should and nothing else (a switch that never fires gives the
numbers of the run without it), its metrics reach the sink, and a run with all of them on
resumes exactly. Tiny Pendulum/CartPole runs: about a second each.
"""

from __future__ import annotations

import pytest
import torch
from test_runner import tiny

from dsrl_platform import config, names
from dsrl_platform.buffers.batch import WindowedBatch
from dsrl_platform.train.runner import Runner
from dsrl_platform.train.sinks import MemorySink

# RLx2's parts switched on early and often enough to act within 900 steps
RLX2_NOW = dict(n_step_start=400, buffer_min_size=300, buffer_check_every=100, buffer_threshold=1e-4)


def curve(cfg) -> list[tuple[int, float, float]]:
    return [(e.step, e.return_mean, e.train_flops) for e in Runner(cfg).evaluations()]


# --- resolution ---------------------------------------------------------------------------
def test_rlx2_takes_their_settings_and_other_methods_none_of_them():
    td3 = config.build(algo="td3", method="rlx2", env="HalfCheetah-v4").resolve()
    assert (td3.topology_interval, td3.drop_fraction, td3.drop_schedule, td3.topology_end,
            td3.update_replaces_step, td3.sparse_targets) == (10_000, 0.5, "cosine", 1_000_000, True, "mask")
    assert (td3.distribution, td3.sparse_layers, td3.mask_init, td3.fixed_sparse_init) == ("erk", "all", "magnitude", False)
    assert (td3.n_step, td3.n_step_start, td3.dynamic_buffer) == (3, 25_000 + 300_000, True)
    assert (td3.buffer_min_size, td3.buffer_check_every, td3.buffer_threshold) == (100_000, 10_000, 0.2)
    sac = config.build(algo="sac", method="rlx2", env="Hopper-v4").resolve()
    assert sac.buffer_min_size == 200_000 and sac.n_step == 3
    for method in ("dense", "ds", "rigl", "static"):
        other = config.build(algo="td3", method=method, env="HalfCheetah-v4").resolve()
        assert (other.n_step, other.n_step_start, other.dynamic_buffer, other.buffer_min_size, other.redo,
                other.redo_every) == (1, None, False, None, False, None)
    assert config.build(algo="td3", method="rigl").resolve().mask_init == "random"
    # options of a switched-off part do not change the run's identity
    off = dict(algo="td3", method="rlx2", n_step=1, dynamic_buffer=False)
    assert config.build(**off).run_key() == config.build(**off, n_step_start=5, buffer_threshold=0.5).run_key()
    assert config.build(algo="dqn", redo_every=7).run_key() == config.build(algo="dqn").run_key()
    assert config.build(algo="dqn", redo=True).resolve().redo_every == 1000
    with pytest.raises(ValueError, match="n_step: not an option of dqn"):
        config.build(algo="dqn", n_step=3)


def test_rlx2_masks_keep_the_largest_initial_weights():
    """Same seed, same initial weights: the rlx2 masks are the top-k |w| of the dense init."""
    dense, rlx2 = Runner(tiny("td3", "dense")), Runner(tiny("td3", "rlx2"))
    for name, net in rlx2.networks.items():
        dense_layers = {w.layer.name: w.layer.weight for w in dense.networks[name].layers}
        for i, layer in enumerate(net.topology.layers):
            w0, mask = dense_layers[layer.name], net.topology.mask(i)
            k = int(mask.sum())
            assert 0 < k < mask.numel() or layer.name.endswith(".0")  # ERK: some layers stay dense
            if k < mask.numel():
                assert w0.abs()[mask > 0].min() >= w0.abs()[mask == 0].max()
            assert torch.equal(layer.weight, w0 * mask)


# --- RLx2's parts act --------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_n_step_targets_start_at_their_step(algo):
    runner = Runner(tiny(algo, "rlx2", **RLX2_NOW))
    agent = runner.agent
    while runner.step < 399:
        runner._env_step()
    assert agent.n_step_from == 100 and agent.grad_step == 99
    agent.grad_step += 1
    batch = agent.sample_batch()
    assert isinstance(batch, WindowedBatch) == (algo == "sac")  # SAC reads the inner states
    weights = {round(v, 4) for v in batch.not_done[:, 0].tolist()}  # γ^(m−1): m = 3 but near episode ends
    assert weights <= {1.0, 0.99, 0.9801} and float((batch.not_done < 0.99).float().mean()) > 0.5
    agent.grad_step -= 2
    assert float(agent.sample_batch().not_done.min()) == 1.0  # one step before: one-step targets


def test_dynamic_buffer_drops_old_data_and_keeps_behaviour_actions():
    sink = MemorySink()
    runner = Runner(tiny("td3", "rlx2", **RLX2_NOW), sink=sink)
    agent = runner.agent
    while runner.step < 300:  # warm-up: the behaviour action is the random action, in [-1, 1] units
        runner._env_step()
    replay = agent.replay
    assert torch.allclose(torch.as_tensor(replay.behaviour[:300]), torch.as_tensor(replay.actions[:300]) / 2)
    obs = runner.members[0].obs
    agent.act(obs, explore=True)
    with torch.no_grad():
        assert torch.allclose(torch.as_tensor(agent.behaviour),
                              torch.tanh(agent.actor(torch.as_tensor(obs).unsqueeze(0))).squeeze(0))
    list(runner.evaluations())
    sizes = [v for _, v in sink.series(names.REPLAY_SIZE)]
    assert agent.capacity.dropped > 0 and sizes[-1] < 900 and sizes[-1] >= 300
    assert sizes[-1] == 900 - agent.capacity.dropped and sink.series(names.REPLAY_POLICY_DISTANCE)


# --- each option changes nothing it should not -----------------------------------------------
OFF = dict(n_step=1, dynamic_buffer=False)
BUFFER = dict(dynamic_buffer=True, buffer_min_size=300, buffer_check_every=100)


@pytest.mark.parametrize("algo,method,plain,quiet,loud", [
    # n-step targets from past the budget / from step 400
    ("td3", "rlx2", OFF, dict(OFF, n_step=3, n_step_start=1000), dict(OFF, n_step=3, n_step_start=400)),
    # a dynamic buffer whose threshold is never passed / is always passed
    ("sac", "rlx2", OFF, dict(OFF, **BUFFER, buffer_threshold=1e9), dict(OFF, **BUFFER, buffer_threshold=1e-4)),
    # ReDo due after the budget / every 50 (8) gradient steps
    ("dqn", "set", {}, dict(redo=True, redo_every=10_000), dict(redo=True, redo_every=50, dormant_threshold=0.1)),
    ("ppo", "static", {}, dict(redo=True, redo_every=10_000), dict(redo=True, redo_every=8, dormant_threshold=0.1)),
])
def test_a_switch_that_never_acts_gives_the_numbers_of_the_run_without_it(algo, method, plain, quiet, loud):
    reference = curve(tiny(algo, method, **plain))
    assert curve(tiny(algo, method, **quiet)) == reference
    assert curve(tiny(algo, method, **loud)) != reference


def test_dormant_metrics_are_logged_from_the_first_update_on_and_change_nothing():
    sink = MemorySink()
    with_metrics = Runner(tiny("td3", "rigl"), sink=sink)
    evals = [(e.step, e.return_mean, e.train_flops) for e in with_metrics.evaluations()]
    assert evals == curve(tiny("td3", "rigl", dormant_metrics=False))
    for key in ("actor", "critic", "actor.1", "critic.q2.0"):
        assert [s for s, _ in sink.series(names.dormant_metric(key))] == [600, 900]  # none before the first update (301)
    assert all(0 <= v <= 1 for _, v in sink.series(names.dormant_metric("critic")))
    ranks = [v for _, v in sink.series(names.feature_rank_metric("actor"))]
    assert ranks and all(1 <= v <= 32 for v in ranks)
    off = MemorySink()
    list(Runner(tiny("td3", "rigl", dormant_metrics=False), sink=off).evaluations())
    assert not any(k.startswith((names.DORMANT_PREFIX, names.FEATURE_RANK_PREFIX)) for _, m in off.points for k in m)


def test_redo_recycles_and_reports_it_on_every_algorithm():
    for algo, method in (("td3", "ds"), ("sac", "prune"), ("dqn", "rigl"), ("ppo", "dense")):
        sink = MemorySink()
        every = 8 if algo == "ppo" else 50
        runner = Runner(tiny(algo, method, redo=True, redo_every=every, dormant_threshold=0.2), sink=sink)
        list(runner.evaluations())
        recycled = [v for _, v in sink.series(names.REDO_RECYCLED)]
        assert recycled == sorted(recycled) and recycled[-1] == runner.agent.recycler.recycled > 0, algo
        for net in runner.networks.values():  # masks and budgets kept (absent weights stay zero)
            if net.topology is not None:
                for i, layer in enumerate(net.topology.layers):
                    assert torch.all(layer.weight[net.topology.mask(i) == 0] == 0)


# --- exact resume with everything on -----------------------------------------------------------
@pytest.mark.parametrize("algo,method,extra", [
    ("td3", "rlx2", dict(RLX2_NOW, redo=True, redo_every=50)),
    ("sac", "rlx2", dict(RLX2_NOW, redo=True, redo_every=50)),
    ("dqn", "prune", dict(redo=True, redo_every=50)),
    ("ppo", "rigl", dict(redo=True, redo_every=8)),
])
def test_resume_with_rlx2_redo_and_dormant_metrics_on_gives_the_uninterrupted_numbers(tmp_path, algo, method, extra):
    sizes = {} if algo == "ppo" else {"buffer_size": 1050}
    cfg = tiny(algo, method, eval_every=350, steps=1050, **sizes, **extra)
    straight_sink = MemorySink()
    straight = Runner(cfg, sink=straight_sink)
    expected = [(e.step, e.return_mean, e.train_flops) for e in straight.evaluations()]
    first = Runner(cfg)
    for evaluation in first.evaluations():
        if evaluation.step == 700:
            first.save(tmp_path)
            break
    resumed_sink = MemorySink()
    resumed = Runner(cfg, sink=resumed_sink)
    resumed.load(tmp_path)
    seen = expected[:3] + [(e.step, e.return_mean, e.train_flops) for e in resumed.evaluations()]
    assert seen == expected
    assert resumed.summary() == straight.summary()
    final = lambda sink: {k: v for s, m in sink.points if s == 1050 for k, v in m.items()  # noqa: E731
                          if k.startswith(("dormant/", "feature_rank/", "redo/", "replay/"))}
    assert final(resumed_sink) == final(straight_sink) and final(straight_sink)
