/* A masked linear layer computed on its nonzeros only: the forward and the whole backward.
 *
 * W is read in place from the dense weight through the CSR structure (`flat[k]`: where the
 * k-th nonzero lives in the flattened weight), so no values are gathered beforehand. Activations
 * are feature-major (Xt is cols × B, row-major): every nonzero touches a contiguous run of B.
 *   sparse_forward    Yt = W · Xt + bias                          (Y = X·Wᵀ + b)
 *   sparse_backward   dXt = Wᵀ · dYt  (through Wᵀ's CSR: again a gather per output row)
 *                     grad[flat[k]] += dYt[row k] · Xt[col k]      (weight gradient, nonzeros only)
 *                     bias_grad[r] = Σ_b dYt[r, b]
 * Each output row is built in registers, 32 floats of the batch at a time (GCC/Clang vector
 * extensions: portable, compiled for the host's widest units by -march=native), so the inner
 * loop is loads and fused multiply-adds with no stores. Single-threaded, float32. Built by
 * native.py. Plain loops beat MKL's sparse BLAS here: the matrices are small (its per-call
 * set-up dominates) and the batch is long and contiguous.
 */
#include <stdint.h>
#include <math.h>
#include <string.h>

typedef float vf __attribute__((vector_size(32))); /* 8 floats */
#define VW 8

static inline vf loadu(const float* p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void storeu(float* p, vf v) { memcpy(p, &v, sizeof v); }

static void rows_times(int64_t rows, int64_t B, const int32_t* restrict crow, const int32_t* restrict col,
                       const int64_t* restrict flat, const float* restrict weight, const float* restrict Xt,
                       const float* restrict bias, float* restrict Yt) {
  for (int64_t r = 0; r < rows; r++) {
    const int32_t k0 = crow[r], k1 = crow[r + 1];
    const float b = bias ? bias[r] : 0.0f;
    float* y = Yt + r * B;
    int64_t j = 0;
    for (; j + 4 * VW <= B; j += 4 * VW) {
      vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
      a0 += b, a1 += b, a2 += b, a3 += b;
      for (int32_t k = k0; k < k1; k++) {
        const float v = weight[flat[k]];
        const float* x = Xt + (int64_t)col[k] * B + j;
        a0 += v * loadu(x), a1 += v * loadu(x + VW), a2 += v * loadu(x + 2 * VW), a3 += v * loadu(x + 3 * VW);
      }
      storeu(y + j, a0), storeu(y + j + VW, a1), storeu(y + j + 2 * VW, a2), storeu(y + j + 3 * VW, a3);
    }
    for (; j + VW <= B; j += VW) {
      vf a = {0};
      a += b;
      for (int32_t k = k0; k < k1; k++) a += weight[flat[k]] * loadu(Xt + (int64_t)col[k] * B + j);
      storeu(y + j, a);
    }
    for (; j < B; j++) {
      float a = b;
      for (int32_t k = k0; k < k1; k++) a += weight[flat[k]] * Xt[(int64_t)col[k] * B + j];
      y[j] = a;
    }
  }
}

void sparse_forward(int64_t rows, int64_t B, const int32_t* crow, const int32_t* col, const int64_t* flat,
                    const float* weight, const float* Xt, const float* bias, float* Yt) {
  rows_times(rows, B, crow, col, flat, weight, Xt, bias, Yt);
}

void sparse_backward(int64_t rows, int64_t cols, int64_t B, const int32_t* crow, const int32_t* col,
                     const int64_t* flat, const int32_t* crow_t, const int32_t* col_t, const int64_t* flat_t,
                     const float* weight, const float* restrict Xt, const float* restrict dYt,
                     float* dXt, float* restrict grad, float* restrict bias_grad) {
  if (dXt) rows_times(cols, B, crow_t, col_t, flat_t, weight, dYt, 0, dXt);
  if (grad)
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
        grad[flat[k]] += s;
      }
    }
  if (bias_grad)
    for (int64_t r = 0; r < rows; r++) {
      const float* g = dYt + r * B;
      vf a = {0};
      int64_t j = 0;
      for (; j + VW <= B; j += VW) a += loadu(g + j);
      float s = 0.0f;
      for (int i = 0; i < VW; i++) s += a[i];
      for (; j < B; j++) s += g[j];
      bias_grad[r] = s;
    }
}

/* Adam (Kingma & Ba; torch.optim.Adam's defaults: L2 added to the gradient, no AMSGrad) on the
 * n entries idx[0..n) of a parameter (idx NULL: entries 0..n, a loop the compiler vectorises),
 * in place; *step counts steps. The bias corrections are computed in double and applied as
 * torch's fused kernel applies them. */
#define ADAM_ENTRY(k)                                                          \
  do {                                                                         \
    const float grad = g[k] + w * p[k];                                        \
    const float mk = b1 * m[k] + c1 * grad, vk = b2 * v[k] + c2 * grad * grad; \
    m[k] = mk, v[k] = vk;                                                      \
    p[k] -= step_size * mk / (sqrtf(vk) / bc2s + e);                           \
  } while (0)

void adam_at(int64_t n, const int64_t* restrict idx, float* restrict p, const float* restrict g, float* restrict m,
             float* restrict v, float* step, double lr, double beta1, double beta2, double eps, double wd) {
  const double t = (*step += 1.0f);
  const double bc1 = 1.0 - pow(beta1, t), bc2_sqrt = sqrt(1.0 - pow(beta2, t));
  const float step_size = (float)(lr / bc1), b1 = (float)beta1, b2 = (float)beta2;
  const float c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2), e = (float)eps, w = (float)wd;
  const float bc2s = (float)bc2_sqrt;
  if (idx)
    for (int64_t i = 0; i < n; i++) ADAM_ENTRY(idx[i]);
  else
    for (int64_t k = 0; k < n; k++) ADAM_ENTRY(k);
}
