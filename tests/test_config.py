"""Run options: one flat namespace, per-algorithm models, the papers' defaults, a resolved type."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from dsrl_platform import config
from dsrl_platform.agents.registry import ALGORITHMS
from dsrl_platform.methods import METHODS

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "dsrl_platform"


def test_an_option_of_another_algorithm_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"policy_delay: not an option of dqn \(it applies to td3\)"):
        config.build(algo="dqn", policy_delay=2)
    with pytest.raises(ValueError, match=r"epsilon_eval: not an option of td3 \(it applies to dqn\)"):
        config.build(algo="td3", epsilon_eval=0.0)
    with pytest.raises(ValueError, match="polcy_delay: unknown option .did you mean policy_delay"):
        config.build(algo="td3", polcy_delay=2)


def test_resolved_is_its_own_frozen_type_and_round_trips():
    cfg = config.build(algo="sac", method="ds", env="Hopper-v4")
    resolved = cfg.resolve()
    assert isinstance(resolved, config.Resolved) and not isinstance(cfg, config.Resolved)
    assert resolved.resolve() is resolved
    assert (resolved.lambda1, resolved.lambda2, resolved.tau, resolved.target_update_every) == (7, 20, 1.0, 1000)
    with pytest.raises(pydantic.ValidationError):
        resolved.lr = 1.0
    again = config.resolved(resolved.model_dump(mode="json"))  # what a worker receives
    assert again == resolved and type(again) is type(resolved)


def test_defaults_follow_the_algorithm_and_the_environment_family():
    classic = config.build(algo="dqn", method="rigl", env="CartPole-v1").resolve()
    assert (classic.hidden_sizes, classic.batch_size, classic.target_update_every, classic.network) == \
        ([512, 512], 128, 100, "mlp")
    assert (classic.sparsity, classic.distribution, classic.sparse_layers) == (0.9, "erk", "all")
    assert (classic.drop_fraction, classic.drop_schedule, classic.topology_end) == (0.5, "cosine", 75_000)
    atari = config.build(algo="dqn", method="rigl", env="ALE/Pong-v5", steps=10_000_000).resolve()
    assert (atari.network, atari.train_every, atari.drop_fraction, atari.topology_interval) == ("nature", 4, 0.3, 5000)
    assert atari.grad_step_at(20_000 + 400) == 100  # one update every 4 steps after the warm-up
    static = config.build(algo="td3", method="static", topology_interval=500).resolve()
    assert static.topology_interval is None  # a schedule static does not have: not part of its identity


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_every_algorithm_resolves_every_method(algo):
    for method in METHODS:
        resolved = config.build(algo=algo, method=method).resolve()
        m = METHODS[method]
        has_level = (m.sparse and resolved.distribution != "er") or m.matches_sparsity
        assert resolved.algo == algo and (resolved.sparsity is not None) == has_level


def test_what_a_method_is_is_asked_of_its_registry_entry_only():
    """No `method == "rigl"` / `method in ("ds", …)` outside methods.py: code asks traits."""
    pattern = re.compile(r"""method\s*(==|!=|in)\s*[("']""")
    offenders = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if p.name != "methods.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
