"""Sparse-kernel back ends: a masked linear layer's forward and backward on its nonzeros.

Both read W from the dense weight through the CSR structure and take feature-major
activations, Xt = Xᵀ (cols × B) and dYt = dYᵀ (rows × B), contiguous:
    forward(csr, weight, xt, bias)                 -> Yt = W·Xt + bias             (rows × B)
    backward(csr, weight, xt, dyt, dx, grad, db)   -> (dXt = Wᵀ·dYt or None, db or None), and
        grad[nonzeros] += dW at the nonzeros only (SDDMM), when a gradient tensor is given
`native`: one C call each (csr_kernels.c; CPU, float32, where a compiler exists); `torch`:
torch.sparse CSR — MKL's sparse BLAS on CPU, cuSPARSE on CUDA — with `sampled_addmm` for the
SDDMM. Which one a layer uses is measured (calibrate.py).
"""

from __future__ import annotations

import warnings

import torch

from . import native
from .csr import CSR

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


class NativeCSR:
    name = "native"

    def __init__(self, lib):
        self.lib = lib

    @staticmethod
    def supports(device: torch.device, dtype: torch.dtype) -> bool:
        return device.type == "cpu" and dtype == torch.float32

    def forward(self, csr: CSR, weight: torch.Tensor, xt: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        yt = torch.empty(csr.rows, xt.shape[1])
        self.lib.sparse_forward(csr.rows, xt.shape[1], *csr.pointers, weight.data_ptr(), xt.data_ptr(),
                                None if bias is None else bias.data_ptr(), yt.data_ptr())
        return yt

    def backward(self, csr: CSR, weight: torch.Tensor, xt: torch.Tensor, dyt: torch.Tensor, dx: bool,
                 grad: torch.Tensor | None, db: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        t = csr.transposed()[0]
        dxt = torch.empty(csr.cols, dyt.shape[1]) if dx else None
        dbias = torch.empty(csr.rows) if db else None
        self.lib.sparse_backward(csr.rows, csr.cols, dyt.shape[1], *csr.pointers, *t.pointers, weight.data_ptr(),
                                 xt.data_ptr(), dyt.data_ptr(), None if dxt is None else dxt.data_ptr(),
                                 None if grad is None else grad.data_ptr(), None if dbias is None else dbias.data_ptr())
        return dxt, dbias


class TorchCSR:
    name = "torch"

    @staticmethod
    def supports(device: torch.device, dtype: torch.dtype) -> bool:
        return True

    @staticmethod
    def _matrix(csr: CSR, weight: torch.Tensor) -> torch.Tensor:
        if "crow" not in csr._torch:  # int64 indices, once per structure
            csr._torch.update(crow=csr.crow.long().to(weight.device), col=csr.col.long().to(weight.device))
        return torch.sparse_csr_tensor(csr._torch["crow"], csr._torch["col"], weight.view(-1).index_select(0, csr.flat),
                                       (csr.rows, csr.cols), check_invariants=False)

    def forward(self, csr: CSR, weight: torch.Tensor, xt: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        yt = self._matrix(csr, weight) @ xt
        return yt if bias is None else yt.add_(bias.unsqueeze(1))

    def backward(self, csr: CSR, weight: torch.Tensor, xt: torch.Tensor, dyt: torch.Tensor, dx: bool,
                 grad: torch.Tensor | None, db: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        dxt = self._matrix(csr.transposed()[0], weight) @ dyt if dx else None
        if grad is not None:
            pattern = self._matrix(csr, weight)  # the values are ignored (beta = 0)
            dv = torch.sparse.sampled_addmm(pattern, dyt, xt.t(), beta=0.0).values()
            grad.view(-1).index_add_(0, csr.flat, dv)
        return dxt, (dyt.sum(1) if db else None)


def available(device: torch.device, dtype: torch.dtype = torch.float32) -> list:
    """The back ends that can run on `device`, the native one first."""
    lib = native.library() if NativeCSR.supports(device, dtype) else None
    return ([NativeCSR(lib)] if lib is not None else []) + [TorchCSR()]
