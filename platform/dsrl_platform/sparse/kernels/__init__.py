"""Sparse networks that are actually faster: real sparse kernels for highly sparse layers.

Masked-dense training (every library in the field) pays for the zeros. Here a masked layer may
instead run on its nonzeros only — forward Y = X·Wᵀ, input gradient dX = dY·W, weight gradient
at the nonzeros (SDDMM), and Adam's step — chosen per layer by measuring both on this device:

  csr.py        the mask's nonzeros (CSR; a stack of matrices as its block diagonal)
  backends.py   the three products: own C loops (native.py builds csr_kernels.c) or torch.sparse
  linear.py     dense_linear and the SparseLinear autograd node; RigL's dense gradient on demand
  calibrate.py  dense vs each back end, timed per layer shape, density and batch
  paths.py      Kernels (one network's layers, rebuilt when the masks change) and the Paths
                modules ask (`kernels.linear(x, weight, bias)`)
  adam.py       Adam's step at the nonzeros
"""

from .adam import step_on_nonzeros
from .csr import CSR
from .linear import SparseLinear, dense_linear
from .paths import MIN_BATCH, Kernels, LayerKernel, Mode, Paths, attach

__all__ = ["CSR", "Kernels", "LayerKernel", "MIN_BATCH", "Mode", "Paths", "SparseLinear", "attach",
           "dense_linear", "step_on_nonzeros"]
