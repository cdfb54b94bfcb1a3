import math

import pytest
import torch

from dsrl_platform.sparse import DISTRIBUTIONS, SparseLayer, Topology, er, er_density, erk, uniform

# Sokar et al., HalfCheetah (obs 17, action 6): shapes (n_out, n_in) of the sparse layers.
ACTOR = [(256, 17), (256, 256)]
CRITIC = [(256, 23), (256, 256)]
ACTOR_OUT, CRITIC_OUT = 256 * 6, 256 * 1  # dense output layers


def test_er_density_formula_by_hand():
    assert er_density(3, 4, 1.0) == pytest.approx(7 / 12)
    assert er_density(17, 256, 7) == pytest.approx(7 * 273 / 4352)
    assert er_density(256, 256, 64) == 0.5
    assert er_density(10, 10, 10) == 2.0  # no clipping here


def test_er_one_lambda_per_layer():
    assert er(ACTOR, lambdas=[7, 64]) == pytest.approx([1911 / 4352, 0.5])
    assert er(CRITIC, lambdas=[7, 64]) == pytest.approx([1953 / 5888, 0.5])


def test_er_rejects_density_above_one_naming_the_option():
    with pytest.raises(ValueError, match=r"^lambda2: λ=200 gives density 1\.562>1 for a 256×256 layer"):
        er(ACTOR, lambdas=[7, 200])
    with pytest.raises(ValueError, match="^lambda1"):
        er([(4, 3)], lambdas=[-1])
    with pytest.raises(ValueError, match="^lambdas"):
        er(ACTOR, lambdas=[7])


def test_sokar_halfcheetah_overall_sparsity():
    """λ1=7, λ2=64 on HalfCheetah: the paper says ~51% overall; ours is 50.57% over all
    weights (sparse + dense output layers) and 51.06% over the sparse layers alone."""
    nets = [(ACTOR, ACTOR_OUT), (CRITIC, CRITIC_OUT), (CRITIC, CRITIC_OUT)]
    nnz = numel = sparse_nnz = sparse_numel = 0
    for shapes, out in nets:
        for shape, d in zip(shapes, er(shapes, lambdas=[7, 64])):
            k = round(d * math.prod(shape))
            sparse_nnz, sparse_numel = sparse_nnz + k, sparse_numel + math.prod(shape)
        nnz, numel = nnz + out, numel + out
    nnz, numel = nnz + sparse_nnz, numel + sparse_numel
    # ER keeps exactly λ·(n_in + n_out) connections here: 7·273, 64·512, 7·279, 64·512.
    assert sparse_nnz == 1911 + 32768 + 2 * (1953 + 32768) == 104121
    assert (nnz, numel) == (106169, 214784)
    assert 1 - nnz / numel == pytest.approx(0.50570, abs=1e-5)
    assert sparse_numel == 212736
    assert 1 - sparse_nnz / sparse_numel == pytest.approx(0.51056, abs=1e-5)


def test_uniform_and_sparsity_errors():
    assert uniform([(3, 4), (5, 6)], sparsity=0.8) == pytest.approx([0.2, 0.2])
    for bad in (-0.1, 1.0, 1.5):
        for fn in (uniform, erk):
            with pytest.raises(ValueError, match="^sparsity"):
                fn([(3, 4)], sparsity=bad)


def test_erk_by_hand_and_equals_er_for_mlps():
    shapes = [(256, 17), (256, 256)]
    d = erk(shapes, sparsity=0.9)
    numels = [4352, 65536]
    eps = 0.1 * sum(numels) / (273 + 512)  # Σ ε·(n_in+n_out) = target
    assert d == pytest.approx([eps * 273 / 4352, eps * 512 / 65536])
    assert d == pytest.approx(er(shapes, lambdas=[eps] * 2))  # MLP: ERK == ER with λ = ε
    assert sum(di * n for di, n in zip(d, numels)) == pytest.approx(0.1 * sum(numels))


def test_erk_caps_dense_layers_and_hits_target():
    # Tiny 2×2 layer: raw ε·4/4 would be 24.5 > 1 → dense; ε re-solved for the big layer.
    assert erk([(2, 2), (100, 100)], sparsity=0.5) == pytest.approx([1.0, (5002 - 4) / 10000])
    # Critic-like net, every layer sparse at 50%: first the 256→1 output (raw (256+1)/256),
    # then the 23→256 input layer exceed 1 and are capped; the 256×256 layer takes the rest.
    shapes = [(256, 23), (256, 256), (1, 256)]
    d = erk(shapes, sparsity=0.5)
    numels = [math.prod(s) for s in shapes]
    assert d == [1.0, (35840 - 5888 - 256) / 65536, 1.0] == [1.0, 0.453125, 1.0]
    target = 0.5 * sum(numels)
    assert sum(di * n for di, n in zip(d, numels)) == pytest.approx(target)
    # After rounding to whole connections the total is within half a weight per layer.
    assert abs(sum(round(di * n) for di, n in zip(d, numels)) - target) <= len(shapes) / 2
    assert erk(shapes, sparsity=0.0) == [1.0, 1.0, 1.0]


def test_erk_total_nnz_through_topology():
    g = torch.Generator().manual_seed(0)
    layers = [SparseLayer(f"l{i}", torch.nn.Parameter(torch.randn(*s)))
              for i, s in enumerate([(64, 11), (64, 64), (3, 64)])]
    d = erk([la.shape for la in layers], sparsity=0.8)
    topo = Topology(layers, d, g)
    total = sum(topo.numel())
    assert abs(sum(topo.nnz()) - 0.2 * total) <= 1.5
    assert topo.nnz() == [round(x * n) for x, n in zip(d, topo.numel())]


def test_registry():
    assert DISTRIBUTIONS == {"uniform": uniform, "er": er, "erk": erk}
