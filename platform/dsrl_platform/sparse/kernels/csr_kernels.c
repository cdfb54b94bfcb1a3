/* Sparse × dense products of one CSR weight matrix W (rows × cols) with a batch of B columns.
 *
 * Activations are stored transposed (feature-major: Xt is cols × B, row-major), so each
 * nonzero touches one contiguous run of B floats:
 *   csr_matmul   Yt = W · Xt + bias                     (forward, Y = X·Wᵀ + b; called with
 *                                                        Wᵀ's CSR it gives dXt = Wᵀ · dYt)
 *   csr_sddmm    dW[k] = dYt[row k] · Xt[col k]          (weight gradient at the nonzeros only)
 * Each output row is built in registers, 32 floats of the batch at a time (GCC/Clang vector
 * extensions: portable, compiled for the host's widest units by -march=native), so the inner
 * loop is loads and fused multiply-adds with no stores. Single-threaded, float32. Built by
 * native.py. Simple loops beat MKL's sparse BLAS here because the matrices are small (its
 * per-call set-up dominates) and the batch is long and contiguous.
 */
#include <stdint.h>
#include <string.h>

typedef float vf __attribute__((vector_size(32))); /* 8 floats */
#define VW 8

static inline vf loadu(const float* p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void storeu(float* p, vf v) { memcpy(p, &v, sizeof v); }

void csr_matmul(int64_t rows, int64_t B, const int32_t* restrict crow, const int32_t* restrict col,
                const float* restrict val, const float* restrict Xt, const float* restrict bias,
                float* restrict Yt) {
  for (int64_t r = 0; r < rows; r++) {
    const int32_t k0 = crow[r], k1 = crow[r + 1];
    const float b = bias ? bias[r] : 0.0f;
    float* y = Yt + r * B;
    int64_t j = 0;
    for (; j + 4 * VW <= B; j += 4 * VW) {
      vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
      a0 += b, a1 += b, a2 += b, a3 += b;
      for (int32_t k = k0; k < k1; k++) {
        const float v = val[k];
        const float* x = Xt + (int64_t)col[k] * B + j;
        a0 += v * loadu(x), a1 += v * loadu(x + VW), a2 += v * loadu(x + 2 * VW), a3 += v * loadu(x + 3 * VW);
      }
      storeu(y + j, a0), storeu(y + j + VW, a1), storeu(y + j + 2 * VW, a2), storeu(y + j + 3 * VW, a3);
    }
    for (; j + VW <= B; j += VW) {
      vf a = {0};
      a += b;
      for (int32_t k = k0; k < k1; k++) a += val[k] * loadu(Xt + (int64_t)col[k] * B + j);
      storeu(y + j, a);
    }
    for (; j < B; j++) {
      float a = b;
      for (int32_t k = k0; k < k1; k++) a += val[k] * Xt[(int64_t)col[k] * B + j];
      y[j] = a;
    }
  }
}

void csr_sddmm(int64_t rows, int64_t B, const int32_t* restrict crow, const int32_t* restrict col,
               const float* restrict dYt, const float* restrict Xt, float* restrict dval) {
  for (int64_t r = 0; r < rows; r++) {
    const float* g = dYt + r * B;
    for (int32_t k = crow[r]; k < crow[r + 1]; k++) {
      const float* x = Xt + (int64_t)col[k] * B;
      vf a0 = {0}, a1 = {0};
      int64_t j = 0;
      for (; j + 2 * VW <= B; j += 2 * VW) a0 += loadu(g + j) * loadu(x + j), a1 += loadu(g + j + VW) * loadu(x + j + VW);
      for (; j + VW <= B; j += VW) a0 += loadu(g + j) * loadu(x + j);
      a0 += a1;
      float s = 0.0f;
      for (int i = 0; i < VW; i++) s += a0[i];
      for (; j < B; j++) s += g[j] * x[j];
      dval[k] = s;
    }
  }
}

