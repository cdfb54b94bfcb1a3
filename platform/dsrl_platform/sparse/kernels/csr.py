"""The nonzero positions of a masked weight parameter, row-compressed (CSR).

A 2-D weight (out, in) is one matrix. A stack of G matrices (G, out, in) — TwinCritic's two
heads today, several seeds' networks later — is read as its block-diagonal (G·out, G·in)
matrix: block g maps input features [g·in, (g+1)·in) to outputs [g·out, (g+1)·out), so one
sparse product serves every member of the stack. Row-major order of the flattened parameter is
row-major order of the block-diagonal matrix too, so the CSR values are simply
`param.view(-1)[flat]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(eq=False)
class CSR:
    rows: int
    cols: int
    crow: torch.Tensor  # int32 (rows + 1,): row r's nonzeros are [crow[r], crow[r+1])
    col: torch.Tensor  # int32 (nnz,): column of each nonzero
    flat: torch.Tensor  # int64 (nnz,): its position in the flattened parameter
    _tops: dict = field(default_factory=dict, repr=False)
    _transposed: tuple | None = field(default=None, repr=False)
    _pointers: tuple[int, int, int] | None = field(default=None, repr=False)
    _torch: dict = field(default_factory=dict, repr=False)  # torch.sparse's index copies (backends.py)

    @property
    def nnz(self) -> int:
        return self.flat.numel()

    @property
    def pointers(self) -> tuple[int, int, int]:
        """Addresses of crow, col and flat (for the C kernels; the arrays live as long as self)."""
        if self._pointers is None:
            self._pointers = (self.crow.data_ptr(), self.col.data_ptr(), self.flat.data_ptr())
        return self._pointers

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> CSR:
        """Positions of the nonzeros of a (out, in) or (G, out, in) mask. O(numel): one pass."""
        if mask.dim() not in (2, 3):
            raise ValueError(f"a sparse kernel needs a 2-D or stacked 3-D weight, got shape {tuple(mask.shape)}")
        groups, out, n_in = (1, *mask.shape) if mask.dim() == 2 else tuple(mask.shape)
        flat = torch.nonzero(mask.reshape(-1)).squeeze(1)  # ascending: row-major
        g, rest = flat // (out * n_in), flat % (out * n_in)
        row, col = g * out + rest // n_in, g * n_in + rest % n_in
        crow = torch.zeros(groups * out + 1, dtype=torch.int64, device=mask.device)
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=groups * out), 0)
        return cls(groups * out, groups * n_in, crow.to(torch.int32), col.to(torch.int32), flat)

    def top(self, rows: int, cols: int) -> CSR:
        """The leading `rows` rows, whose columns lie in [0, cols) (the first head of a stack):
        prefixes of the arrays, cached."""
        if rows == self.rows:
            return self
        if (rows, cols) not in self._tops:
            end = int(self.crow[rows])
            sub = CSR(rows, cols, self.crow[: rows + 1], self.col[:end], self.flat[:end])
            assert end == 0 or int(sub.col.max()) < cols, "the leading rows reach past their columns"
            self._tops[(rows, cols)] = sub
        return self._tops[(rows, cols)]

    def transposed(self) -> tuple[CSR, torch.Tensor]:
        """(Wᵀ's CSR, perm): Wᵀ's values are W's values[perm]. Built once per structure."""
        if self._transposed is None:
            crow, col = self.crow.long(), self.col.long()
            row = torch.repeat_interleave(torch.arange(self.rows, device=col.device), crow.diff())
            perm = torch.argsort(col * self.rows + row)  # the nonzeros in column-major order
            crow_t = torch.zeros(self.cols + 1, dtype=torch.int64, device=col.device)
            crow_t[1:] = torch.cumsum(torch.bincount(col, minlength=self.cols), 0)
            t = CSR(self.cols, self.rows, crow_t.to(torch.int32), row[perm].to(torch.int32), self.flat[perm])
            self._transposed = (t, perm)
        return self._transposed
