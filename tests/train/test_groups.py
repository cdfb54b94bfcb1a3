"""Grouped training: the seeds of one configuration in lockstep, each member a run of its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsrl_platform.agents.registry import ALGORITHMS
from dsrl_platform.methods import METHODS
from dsrl_platform.train.runner import Runner
from test_runner import tiny

SEEDS = [0, 1, 2]


def group(algo: str, method: str, **extra) -> list:
    return [tiny(algo, method, seed=s, **extra) for s in SEEDS]


def module_params(runner: Runner, g: int) -> dict[str, torch.Tensor]:
    """Member g's online weights and biases, by layer name (regions of stacked parameters)."""
    out = {}
    for name, net in runner.members[g].networks.items():
        out.update({w.layer.name: w.layer.weight.clone() for w in net.layers})
        out.update({f"{name}.bias{i}": b.detach().reshape(-1).clone() for i, b in enumerate(net.biases)})
    return out


@pytest.mark.parametrize("algo,method", [(a, m) for a in ALGORITHMS for m in ("dense", "ds", "rigl", "prune")])
def test_members_start_bitwise_as_their_ungrouped_runs(algo, method):
    grouped = Runner(group(algo, method))
    for g, seed in enumerate(SEEDS):
        single = Runner(tiny(algo, method, seed=seed))
        mine, theirs = module_params(grouped, g), module_params(single, 0)
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k].reshape(mine[k].shape)) for k in mine), (algo, method, seed)
        if METHODS[method].sparse:
            for name, net in single.networks.items():
                assert net.topology.nnz() == grouped.members[g].networks[name].topology.nnz()


@pytest.mark.parametrize("algo", ["td3", "sac", "dqn"])
def test_first_actions_replay_and_updates_match_the_ungrouped_runs(algo):
    cfgs = group(algo, "rigl")
    grouped = Runner(cfgs)
    singles = [Runner(c) for c in cfgs]
    warmup = cfgs[0].resolve().warmup_steps
    for _ in range(warmup + 20):  # the warm-up, then 20 updates
        grouped._env_step()
        for s in singles:
            s._env_step()
        if grouped.step == warmup:  # the replay contents are the same, bitwise
            for g, s in enumerate(singles):
                assert np.array_equal(grouped.agent.members[g].replay.obs[:warmup], s.agent.replay.obs[:warmup])
                assert np.array_equal(grouped.agent.members[g].replay.actions[:warmup], s.agent.replay.actions[:warmup])
    for g, s in enumerate(singles):  # 20 updates in: equal to float tolerance
        mine, theirs = module_params(grouped, g), module_params(s, 0)
        for k in mine:
            assert torch.allclose(mine[k], theirs[k].reshape(mine[k].shape), rtol=1e-4, atol=1e-5), (algo, g, k)
        assert grouped.members[g].costs.train_flops == s.costs.train_flops


@pytest.mark.parametrize("algo,method", [(a, m) for a in ALGORITHMS for m in METHODS])
def test_every_algorithm_and_method_trains_as_a_group(algo, method):
    cfgs = group(algo, method)
    reason = cfgs[0].resolve().ungroupable()
    if reason:  # RLx2's replay parts train one agent at a time: refused, and spec.group_trials never asks
        with pytest.raises(ValueError, match="trains one agent at a time"):
            Runner(cfgs)
        return
    runner = Runner(cfgs)
    evaluations = list(runner.group_evaluations())
    assert [[e.step for e in point] for point in evaluations] == [[s] * 3 for s in (0, 300, 600, 900)]
    returns = [[e.return_mean for e in point] for point in evaluations]
    assert all(np.isfinite(r) for point in returns for r in point)
    assert len({tuple(r[g] for r in returns) for g in range(3)}) == 3  # members differ: their own data
    for g in range(3):
        summary = runner.summary(g)
        assert summary["seed"] == SEEDS[g] and np.isfinite(summary["final_return"])
        if METHODS[method].dynamic:
            assert all(net.topology_updates > 0 for net in runner.members[g].networks.values())


def test_groups_are_deterministic_and_resume_exactly(tmp_path):
    cfgs = group("sac", "set", eval_every=350, steps=1050, buffer_size=1050)
    straight = Runner(cfgs)
    expected = [[(e.step, e.return_mean, e.train_flops) for e in point] for point in straight.group_evaluations()]
    first = Runner(cfgs)
    seen = []
    for point in first.group_evaluations():
        seen.append([(e.step, e.return_mean, e.train_flops) for e in point])
        if point[0].step == 700:
            first.save(tmp_path)
            break
    resumed = Runner(cfgs)
    resumed.load(tmp_path)
    seen += [[(e.step, e.return_mean, e.train_flops) for e in point] for point in resumed.group_evaluations()]
    assert seen == expected


def test_a_diverged_member_fails_alone():
    runner = Runner(group("td3", "dense"))
    points = runner.group_evaluations()
    next(points)
    with torch.no_grad():  # member 1 diverges
        runner.agent.actor.weights[0][1].fill_(float("nan"))
    rest = list(points)
    assert runner.members[1].failed and "non-finite weights in actor" in runner.members[1].failed
    assert all(point[1] is None and point[0] is not None and point[2] is not None for point in rest)
    assert all(np.isfinite(p[0].return_mean) and np.isfinite(p[2].return_mean) for p in rest)
    assert runner.members[0].failed is None and runner.members[2].failed is None
