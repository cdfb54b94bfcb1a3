"""Which path runs a layer fastest on this device: measured, not guessed.

For a layer's shape, density and training batch, `fastest` times one training step of the layer
— forward, backward (input and weight gradients, through autograd) and Adam — on the masked
dense path and on every sparse back end (gradient and Adam at the nonzeros), interleaved over
several rounds on the same random data, and keeps each one's fastest round: the load of a
shared machine only ever adds time, so the minimum is the estimate least disturbed by it (as
Python's timeit recommends). The input comes in the layout the previous layer hands over.

A sparse back end is chosen only if it beats the dense path by `MARGIN`; otherwise the layer
stays dense, so the automatic choice is not slower than masked dense beyond the noise of the
measurement. Results are remembered for the process, per (shape, density to two significant
digits, batch, input layout, threads, device), so a grid's networks and pruning's shrinking
masks measure each case once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .adam import step_on_nonzeros
from .csr import CSR
from .linear import SparseLinear, dense_linear

MARGIN = 0.95  # a sparse path must take under 95% of the dense time (the fastest of 7 rounds each)
# At half dense or more a sparse product does at least half the dense work with scattered reads:
# on its own it cannot win, and a measurement that says otherwise sees an artefact of a tiny
# shape that the network does not share. Such a layer is measured only where its input comes
# from a sparse layer (then staying sparse saves handing the activations over); otherwise dense.
MAX_DENSITY = 0.5
ROUNDS = 7
ROUND_SECONDS = 1e-3


@dataclass(eq=False)
class _Probe:
    """The stand-in kernel SparseLinear needs while timing (no recording, sparse neighbours)."""
    backend: object
    recording: bool = False
    records: list = field(default_factory=list)
    feature_major_out: bool = True
    feature_major_grad: bool = True


_memo: dict[tuple, tuple[str, dict[str, float]]] = {}


def fastest(csr: CSR, shape: torch.Size, batch: int, backends: list, device: torch.device,
            feature_major_input: bool) -> tuple[str, dict[str, float]]:
    """("dense" or a back end's name, seconds per training step of each candidate).
    `feature_major_input`: the layer's input comes from a sparse layer (no transpose to pay)."""
    numel = 1
    for n in shape:
        numel *= n
    if csr.nnz >= MAX_DENSITY * numel and not feature_major_input:
        return "dense", {}
    key = (tuple(shape), f"{csr.nnz / numel:.2g}", batch, feature_major_input, torch.get_num_threads(),
           str(device), tuple(b.name for b in backends))
    if key not in _memo:
        _memo[key] = _measure(csr, shape, batch, backends, device, feature_major_input)
    return _memo[key]


def _measure(csr: CSR, shape: torch.Size, batch: int, backends: list, device: torch.device,
             feature_major_input: bool):
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(shape).view(-1)
    mask[csr.flat.cpu()] = 1.0
    mask = mask.view(shape).to(device)
    init = torch.randn(shape, generator=g).to(device) * mask
    bias_shape = (shape[0], 1, shape[1]) if len(shape) == 3 else (shape[0],)
    x = torch.randn(csr.cols, batch, generator=g).to(device).t()  # as a sparse layer hands it on
    x = (x if feature_major_input else x.contiguous()).requires_grad_(True)
    dy = torch.randn(batch, csr.rows, generator=g).to(device)

    def candidate(backend) -> Callable[[], None]:
        """One training step of the layer on this path: forward, backward, Adam (over the masked
        dense matrix, or at the nonzeros as SparseTraining does)."""
        weight = init.clone().requires_grad_(True)
        bias = torch.zeros(bias_shape, device=device, requires_grad=True)
        opt = torch.optim.Adam([weight, bias], lr=1e-4, fused=device.type in ("cpu", "cuda"))
        probe = _Probe(backend, feature_major_grad=feature_major_input)  # dX goes back in the input's layout

        def dense_step() -> None:  # the same Adam for both: in a network with any sparse layer,
            # every parameter steps through step_on_nonzeros. After a sparse layer, the hand-over
            # to row-major (and of the gradient back) is this path's cost: x.contiguous().
            dense_linear(x.contiguous(), weight, bias).backward(dy)
            with torch.no_grad():
                weight.grad.mul_(mask)
                step_on_nonzeros(opt, {})
                weight.mul_(mask)
            opt.zero_grad(set_to_none=False)

        def sparse_step() -> None:
            SparseLinear.apply(x, weight, bias, probe, csr).backward(dy)
            step_on_nonzeros(opt, {id(weight): csr.flat})
            opt.zero_grad(set_to_none=False)

        return dense_step if backend is None else sparse_step

    candidates = {"dense": candidate(None)} | {b.name: candidate(b) for b in backends}
    times: dict[str, list[float]] = {name: [] for name in candidates}
    calls = {}
    for name, f in candidates.items():  # warm up, and size the rounds
        f()
        start = time.perf_counter()
        f()
        calls[name] = max(1, int(ROUND_SECONDS / max(time.perf_counter() - start, 1e-7)))
    for _ in range(ROUNDS):
        for name, f in candidates.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(calls[name]):
                f()
            _sync(device)
            times[name].append((time.perf_counter() - start) / calls[name])
    fastest_round = {name: min(ts) for name, ts in times.items()}
    best = min((n for n in fastest_round if n != "dense"), key=fastest_round.get, default="dense")
    choice = best if best != "dense" and fastest_round[best] < MARGIN * fastest_round["dense"] else "dense"
    return choice, fastest_round


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
