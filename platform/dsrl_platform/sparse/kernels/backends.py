"""Sparse-kernel back ends: the three products of a CSR weight, on transposed activations.

Every back end computes, for W given by a CSR structure and its values, Xt = Xᵀ (cols × B),
dYt = dYᵀ (rows × B), all contiguous:
    matmul(csr, values, xt, bias) -> Yt  = W·Xt + bias        (rows × B)
    matmul_t(csr, values, dyt)    -> dXt = Wᵀ·dYt              (cols × B)
    sddmm(csr, dyt, xt)           -> dW at the nonzeros only   (nnz,)
`native`: the C loops of csr_kernels.c (CPU, float32, when a compiler exists); `torch`:
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

    def matmul(self, csr: CSR, values: torch.Tensor, xt: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        yt = torch.empty(csr.rows, xt.shape[1], dtype=xt.dtype)
        self.lib.csr_matmul(csr.rows, xt.shape[1], csr.crow.data_ptr(), csr.col.data_ptr(), values.data_ptr(),
                            xt.data_ptr(), None if bias is None else bias.data_ptr(), yt.data_ptr())
        return yt

    def matmul_t(self, csr: CSR, values: torch.Tensor, dyt: torch.Tensor) -> torch.Tensor:
        t, perm = csr.transposed()  # a gather per row again, not scattered writes
        return self.matmul(t, values.index_select(0, perm), dyt, None)

    def sddmm(self, csr: CSR, dyt: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        dv = torch.empty(csr.nnz, dtype=dyt.dtype)
        self.lib.csr_sddmm(csr.rows, dyt.shape[1], csr.crow.data_ptr(), csr.col.data_ptr(), dyt.data_ptr(),
                           xt.data_ptr(), dv.data_ptr())
        return dv


class TorchCSR:
    name = "torch"

    @staticmethod
    def supports(device: torch.device, dtype: torch.dtype) -> bool:
        return True

    @staticmethod
    def _indices(csr: CSR) -> dict[str, torch.Tensor]:
        """int64 indices of W and Wᵀ (built once per structure)."""
        if not csr._torch:
            t, perm = csr.transposed()
            csr._torch.update(crow=csr.crow.long(), col=csr.col.long(), crow_t=t.crow.long(), col_t=t.col.long(),
                              perm=perm)
        return csr._torch

    def matmul(self, csr: CSR, values: torch.Tensor, xt: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        i = self._indices(csr)
        w = torch.sparse_csr_tensor(i["crow"], i["col"], values, (csr.rows, csr.cols), check_invariants=False)
        yt = w @ xt
        return yt if bias is None else yt.add_(bias.unsqueeze(1))

    def matmul_t(self, csr: CSR, values: torch.Tensor, dyt: torch.Tensor) -> torch.Tensor:
        i = self._indices(csr)
        wt = torch.sparse_csr_tensor(i["crow_t"], i["col_t"], values[i["perm"]], (csr.cols, csr.rows),
                                     check_invariants=False)
        return wt @ dyt

    def sddmm(self, csr: CSR, dyt: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        i = self._indices(csr)
        pattern = torch.sparse_csr_tensor(i["crow"], i["col"], torch.zeros(csr.nnz, dtype=dyt.dtype, device=dyt.device),
                                          (csr.rows, csr.cols), check_invariants=False)
        return torch.sparse.sampled_addmm(pattern, dyt, xt.t(), beta=0.0).values()


def available(device: torch.device, dtype: torch.dtype = torch.float32) -> list:
    """The back ends that can run on `device`, the native one first."""
    lib = native.library() if NativeCSR.supports(device, dtype) else None
    return ([NativeCSR(lib)] if lib is not None else []) + [TorchCSR()]
