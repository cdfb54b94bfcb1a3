"""Network shapes, conv layers as sparse layers: ERK over kernel shapes and conv FLOPs by hand."""

from __future__ import annotations

import pytest
import torch

from dsrl_platform import config
from dsrl_platform.agents.dqn import DQN
from dsrl_platform.agents.networks import ConvQNetwork
from dsrl_platform.agents.protocol import Spaces
from dsrl_platform.agents.registry import ALGORITHMS
from dsrl_platform.agents.sparsity import build_sparse_network
from dsrl_platform.envs import env_spaces


def minatar_net(method: str = "static", **extra):
    cfg = config.build(algo="dqn", method=method, env="MinAtar/Breakout-v1", sparsity=0.9, **extra).resolve()
    g = torch.Generator().manual_seed(0)
    module = ConvQNetwork((4, 10, 10), [(16, 3, 1)], [128], 3, g, "q")
    opt = torch.optim.Adam(module.parameters())
    return build_sparse_network("q", module, opt, cfg, g, batch_size=32), cfg


def test_conv_erk_densities_by_hand():
    """ERK (Evci et al.): density ∝ Σ shape / Π shape, kernel dims included, scaled to the
    global budget; a layer above 1 is made dense and the rest re-solved.

    conv 16×4×3×3 (576 weights, raw 26/576), fc 128×1024 (raw 1152/131072), head 3×128 (raw
    131/384). 90%: budget 0.1·132032 = 13203.2; ε = 13203.2 / (26 + 1152 + 131) = 10.09 puts the
    head at 3.4 > 1, so it is dense: ε = (13203.2 − 384) / (26 + 1152) = 10.8822.
    """
    net, _ = minatar_net()
    eps = (0.1 * (576 + 131072 + 384) - 384) / (26 + 1152)
    expected = [eps * 26 / 576, eps * 1152 / 131072, 1.0]
    assert [round(d * n) for d, n in zip(expected, (576, 131072, 384))] == net.topology.nnz()
    assert net.topology.nnz() == [283, 12536, 384]


def test_conv_flops_follow_the_nonzeros_at_every_output_position():
    """A conv layer does 2 FLOPs per nonzero weight per output position (8×8 for a valid 3×3 on
    10×10), plus a bias add per output channel and position (RigL's convention)."""
    net, _ = minatar_net()
    by_hand = (2 * 283 + 16) * 64 + (2 * 12536 + 128) + (2 * 384 + 3)
    assert net.forward_flops() == by_hand
    assert net.forward_flops(dense=True) == (2 * 576 + 16) * 64 + (2 * 131072 + 128) + (2 * 384 + 3)
    assert net.train_flops_per_step() == 3 * by_hand * 32


def test_nature_cnn_has_dopamines_shapes():
    spaces = Spaces((4, 84, 84), "uint8", True, 6)
    cfg = config.build(algo="dqn", env="ALE/Pong-v5").resolve()
    with torch.device("meta"):
        q = DQN.build_modules(cfg, spaces, None)["q"]
    shapes = [tuple(w.layer.shape) for w in q.weight_layers()]
    # 'same' padding: 84 → 21 → 11 → 11, so the first dense layer sees 64·11·11 = 7744 inputs
    assert shapes == [(32, 4, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3), (512, 7744), (6, 512)]
    assert [w.positions for w in q.weight_layers()] == [441, 121, 121, 1, 1]


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_networks_are_defined_once_and_checked_on_the_meta_device(algo):
    entry = ALGORITHMS[algo]
    cfg = config.build(algo=algo, method="rigl", hidden_sizes=[100_000, 100_000]).resolve()
    entry.check_shapes(cfg, env_spaces(cfg.env))  # no 40 GB allocated
    with pytest.raises(ValueError, match="hidden_sizes"):
        entry.check_shapes(cfg, env_spaces(cfg.env), memory_bytes=2**30)
