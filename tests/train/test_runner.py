"""The runner with every algorithm × method: sparsity kept, costs by hand, determinism, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dsrl_platform import config, names
from dsrl_platform.agents.registry import ALGORITHMS
from dsrl_platform.methods import METHODS
from dsrl_platform.train.runner import Runner
from dsrl_platform.train.sinks import MemorySink

ENVS = {"td3": "Pendulum-v1", "sac": "Pendulum-v1", "dqn": "CartPole-v1", "ppo": "Pendulum-v1"}
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference_curves.json"


def tiny(algo: str, method: str, **extra) -> config.RunConfig:
    """Small nets, topology updates every 50 gradient steps: seconds per run."""
    options = dict(algo=algo, method=method, env=ENVS[algo], steps=900, eval_every=300, eval_episodes=1,
                   hidden_sizes=[32, 32])
    if algo == "ppo":  # rollouts of 128 steps: 7 iterations, checkpoints fall mid-rollout
        options.update(rollout_steps=128, minibatch_size=32, epochs=2)
    else:
        options.update(warmup_steps=300, batch_size=32, buffer_size=900)
    if METHODS[method].dynamic:
        options.update(topology_interval=50, topology_end=850)
    if METHODS[method].starts_dense:
        options.update(prune_interval=50, prune_start=400, prune_end=800)
    if algo == "ppo":  # 8 gradient steps per rollout: a denser topology schedule
        options.update({k: 8 for k in ("topology_interval", "prune_interval") if k in options})
    options.update(extra)
    return config.build(**options)


PAIRS = [(a, m) for a in ALGORITHMS for m in METHODS]


@pytest.mark.parametrize("algo,method", PAIRS)
def test_every_algorithm_and_method_trains_and_keeps_its_sparsity(algo, method):
    runner = Runner(tiny(algo, method))
    nets = runner.networks
    before = {n: net.nnz() for n, net in nets.items()}
    evaluations = list(runner.evaluations())
    assert [e.step for e in evaluations] == [0, 300, 600, 900]
    assert all(np.isfinite(e.return_mean) for e in evaluations)
    after = {n: net.nnz() for n, net in nets.items()}
    for net in nets.values():
        if net.topology is not None:
            for i, layer in enumerate(net.topology.layers):  # absent weights are exactly zero
                assert torch.all(layer.weight[net.topology.mask(i) == 0] == 0), layer.name
    summary = runner.summary()
    m = METHODS[method]
    if m.matches_sparsity:  # dense, narrower, tagged with the sparsity it matches
        assert after == before and summary["sparsity"] == 0.9 and runner.param_counts()["sparsity"] == 0.0
    elif not m.sparse:
        assert after == before and summary["sparsity"] == 0.0
        assert summary["train_flops_relative"] == pytest.approx(1.0)
    elif m.starts_dense:  # starts dense, ends at the target
        assert sum(map(sum, (d.values() for d in before.values()))) > sum(map(sum, (d.values() for d in after.values())))
        assert summary["sparsity"] == pytest.approx(0.9, abs=0.01)
        assert runner.param_counts()["sparsity"] == pytest.approx(0.9, abs=0.01)
    else:  # sparse from the start: the count per layer never changes
        assert after == before
        assert 0 < summary["train_flops_relative"] < 1
    if m.dynamic:
        assert all(net.topology_updates > 0 for net in nets.values())
    assert {f"params_{n}" for n in nets} <= set(summary)


@pytest.mark.parametrize("key", json.loads(REFERENCE.read_text()))
def test_curves_equal_those_of_the_engine_before_the_agent_protocol(key):
    """TD3/SAC numbers from before the agent/runner split (2d9c0ac), same seed and budget."""
    ref = json.loads(REFERENCE.read_text())[key]
    runner = Runner(config.build(**ref["options"]))
    assert [[e.step, e.return_mean, e.train_flops] for e in runner.evaluations()] == ref["evals"]


def test_sparse_targets_stay_as_sparse_as_the_online_networks():
    runner = Runner(tiny("td3", "ds"))
    list(runner.evaluations())
    agent = runner.agent
    assert agent.cfg.sparse_targets == "topk"
    online = agent.critic_net.topology
    targets = {w.layer.name: w.layer for w in agent.critic_target.weight_layers()}
    for layer, k in zip(online.layers, online.nnz()):
        assert int(torch.count_nonzero(targets[layer.name].weight)) <= k


def test_mask_target_rule_gives_targets_the_online_support():
    runner = Runner(tiny("td3", "ds", sparse_targets="mask"))
    list(runner.evaluations())
    agent = runner.agent
    online = agent.critic_net.topology
    targets = {w.layer.name: w.layer for w in agent.critic_target.weight_layers()}
    for i, layer in enumerate(online.layers):
        assert torch.all(targets[layer.name].weight[online.mask(i) == 0] == 0)


def test_ds_sac_copies_its_targets_right_after_the_topology_update():
    """Both fall on every 50th gradient step here: the hard copy hands the targets the new masks."""
    runner = Runner(tiny("sac", "ds", target_update_every=50, steps=900))
    agent = runner.agent
    assert agent.cfg.tau == 1.0
    while runner.step < 300 + 50:  # the 50th gradient step: topology update, then the copy
        runner._env_step()
    assert agent.critic_net.topology_updates == 1
    for online, target in zip(agent.critic.parameters(), agent.critic_target.parameters()):
        assert torch.equal(online, target)


def test_halfcheetah_counts_and_flops_match_a_hand_count():
    dense = Runner(config.build(algo="td3", method="dense", env="HalfCheetah-v4"))
    # actor 17→256→256→6, each critic 23→256→256→1 (weights only)
    actor, critic = 17 * 256 + 256 * 256 + 256 * 6, 2 * (23 * 256 + 256 * 256 + 256)
    counts = dense.param_counts()
    assert (counts["actor"], counts["critic"], counts["total"]) == (actor, critic, actor + critic)
    assert counts["total_with_biases"] == actor + critic + (256 + 256 + 6) + 2 * (256 + 256 + 1)
    # forward FLOPs per sample: 2 per weight + 1 per bias; training = 3× forward on the batch;
    # critic every step, actor every policy_delay = 2 steps (Sokar: 1.07e14 for 1e6 steps)
    actor_fwd = 2 * actor + (256 + 256 + 6)
    critic_fwd = 2 * critic + 2 * (256 + 256 + 1)
    per_step = 3 * 100 * critic_fwd + 3 * 100 * actor_fwd / 2
    assert dense.costs.flops_per_step(dense=True) == per_step == 107_828_700
    assert dense.summary()["flops_per_action"] == actor_fwd

    ds = Runner(config.build(algo="td3", method="ds", env="HalfCheetah-v4"))
    # Sokar's λ1 = 7, λ2 = 64 on HalfCheetah: ~51% sparsity, hidden layers only
    counts = ds.param_counts()
    assert counts["total"] == 106_169
    assert counts["sparsity"] == pytest.approx(1 - 106_169 / 214_784)
    layers = ds.layer_sparsity()
    assert layers["actor.2"] == 0.0 and layers["critic.q1.2"] == 0.0  # outputs stay dense
    assert layers["actor.1"] == pytest.approx(0.5)


def test_same_config_and_seed_give_the_same_curve():
    for algo, method in (("sac", "rigl"), ("dqn", "set"), ("ppo", "static")):
        curves = [[(e.step, e.return_mean) for e in Runner(tiny(algo, method)).evaluations()] for _ in range(2)]
        assert curves[0] == curves[1]
        other = [(e.step, e.return_mean) for e in Runner(tiny(algo, method, seed=1)).evaluations()]
        assert other != curves[0]


@pytest.mark.parametrize("algo,method", [("td3", "ds"), ("sac", "prune"), ("td3", "rigl"), ("dqn", "rigl"),
                                         ("dqn", "prune"), ("ppo", "rigl"), ("ppo", "prune")])
def test_resume_from_a_checkpoint_gives_the_numbers_of_an_uninterrupted_run(tmp_path, algo, method):
    # eval_every 350: the checkpoint falls mid-episode (Pendulum episodes last 200 steps), and
    # for PPO mid-rollout (128 steps each)
    extra = {} if algo == "ppo" else {"buffer_size": 1050}
    cfg = tiny(algo, method, eval_every=350, steps=1050, **extra)
    straight = Runner(cfg)
    expected = [(e.step, e.return_mean, e.train_flops) for e in straight.evaluations()]

    first = Runner(cfg)
    seen = []
    for evaluation in first.evaluations():
        seen.append((evaluation.step, evaluation.return_mean, evaluation.train_flops))
        if evaluation.step == 700:
            first.save(tmp_path)
            break
    resumed = Runner(cfg)
    resumed.load(tmp_path)
    seen += [(e.step, e.return_mean, e.train_flops) for e in resumed.evaluations()]
    assert seen == expected
    for name in straight.networks:
        for a, b in zip(straight.networks[name].module.state_dict().values(),
                        resumed.networks[name].module.state_dict().values()):
            assert torch.equal(a, b)
    assert resumed.summary() == straight.summary()


def test_loading_a_checkpoint_of_another_config_is_refused(tmp_path):
    runner = Runner(tiny("td3", "dense"))
    runner.save(tmp_path)
    with pytest.raises(ValueError, match="different configuration"):
        Runner(tiny("td3", "dense", seed=3)).load(tmp_path)


def test_metrics_reach_the_sink_with_environment_steps():
    sink = MemorySink()
    runner = Runner(tiny("td3", "set"), sink=sink)
    list(runner.evaluations())
    assert [s for s, _ in sink.series(names.EVAL_RETURN)] == [0, 300, 600, 900]
    flops = [v for _, v in sink.series(names.TRAIN_FLOPS)]
    assert flops[0] == 0 and flops == sorted(flops) and flops[-1] == runner.costs.train_flops
    per_net = [sink.series(names.train_flops_metric(n))[-1][1] for n in ("actor", "critic")]
    assert sum(per_net) == flops[-1]
    assert sink.series(names.TRAIN_EPISODE_RETURN)  # Pendulum episodes end every 200 steps
    assert any(names.layer_sparsity_metric("critic.q1.1") in m for _, m in sink.points)
    assert max(v for _, v in sink.series(names.TOPOLOGY_CHURN)) > 0
    assert sink.series(names.params_metric("actor")) and sink.series(names.sparsity_metric("critic"))
    summary = dict(sink.points[-1][1])
    assert summary[names.SUMMARY_PREFIX + names.SUMMARY_FINAL_RETURN] == runner.summary()["final_return"]


@pytest.mark.parametrize("algo", ["td3", "dqn", "ppo"])
def test_rigl_updates_cost_the_dense_gradient_of_their_step(algo):
    """Evci et al.: an update step's backward is 2·f_S + f_D per sample instead of 3·f_S; every
    other gradient step 3·f_S, counted by each network's own gradient steps."""
    runner = Runner(tiny(algo, "rigl"))
    list(runner.evaluations())
    expected = 0
    for net in runner.networks.values():
        assert net.topology_updates > 0
        sparse, dense = net.forward_flops(), net.forward_flops(dense=True)
        expected += net.grad_steps * 3 * sparse * net.batch_size + net.topology_updates * (dense - sparse) * net.batch_size
    assert runner.costs.train_flops == expected
    if algo == "td3":  # the actor trains every policy_delay-th step
        assert runner.networks["actor"].grad_steps == runner.networks["critic"].grad_steps // 2 == 300
    if algo == "ppo":  # 7 rollouts × 2 epochs × 4 minibatches, both networks
        assert runner.networks["actor"].grad_steps == runner.networks["value"].grad_steps == 56


def test_update_wall_clock_and_kernel_choices_are_logged_beside_the_results(tmp_path):
    sink = MemorySink()
    runner = Runner(tiny("sac", "rigl", sparse_kernels="sparse"), sink=sink)
    list(runner.evaluations())
    # updates begin after the 300-step warm-up: the evaluations at 600 and 900 have a time each
    assert [s for s, _ in sink.series(names.UPDATE_MS)] == [600, 900]
    assert all(v > 0 for _, v in sink.series(names.UPDATE_MS))
    measured = runner.measured()
    assert measured[names.SUMMARY_UPDATE_MS] == pytest.approx(1e3 * measured[names.SUMMARY_UPDATE_WALL_S] / 600)
    paths = runner.kernel_paths()
    assert len(paths) == 6 and set(paths.values()) == {"native"}  # actor 3 layers, critic 3 stacked
    assert measured[names.SUMMARY_SPARSE_KERNEL_LAYERS] == 6 and "critic.ws.0=native" in measured[names.SUMMARY_KERNEL_PATHS]
    assert sink.series(names.kernel_sparse_metric("critic.ws.0"))[-1][1] == 1.0
    final = dict(sink.points[-1][1])
    assert final[names.SUMMARY_PREFIX + names.SUMMARY_UPDATE_MS] == measured[names.SUMMARY_UPDATE_MS]
    assert names.SUMMARY_UPDATE_MS not in runner.summary()  # measurements stay out of the results
    # the run's update time survives a checkpoint
    runner.save(tmp_path)
    resumed = Runner(tiny("sac", "rigl", sparse_kernels="sparse"))
    resumed.load(tmp_path)
    assert resumed.measured()[names.SUMMARY_UPDATE_WALL_S] == measured[names.SUMMARY_UPDATE_WALL_S]
    # masked dense (the default) logs its time, and no kernels
    dense = Runner(tiny("sac", "rigl"))
    list(dense.evaluations())
    assert names.SUMMARY_UPDATE_MS in dense.measured() and names.SUMMARY_KERNEL_PATHS not in dense.measured()
