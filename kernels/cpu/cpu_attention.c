/* kernels/cpu/cpu_attention.c — softmax(q k^T * scale) v per head, what diffusers'
 * AttnProcessor and CLIP's attention compute, without the (B, heads, Tq, Tk) score tensor.
 *
 * Work is split into tasks of (image, head, block of query rows). A task computes
 * its block's scores S (rows, Tk) with one sgemm straight from the (B, T, heads*Dh)
 * layout (row stride heads*Dh selects the head), turns each row into exp(s - max)
 * with its sum, multiplies by v with a second sgemm into out, and divides each
 * output row by its sum. Tasks run one per thread, each sgemm on its own thread.
 *
 * Scratch per thread is rows x Tk floats: up to 256 rows, fewer when the keys
 * are many so that it stays within 4 MB (256 rows for 4096 keys, 113 for 9216).
 * Taller blocks amortise the packing BLAS does for every product: on 2 cores,
 * (2, 8 heads, 4096, 40) runs at 175, 210, 257, 280, 295 GFLOP/s with 16, 32,
 * 64, 128, 256 rows. A smaller workspace means fewer rows, down to one.
 *
 * causal (CLIP's text model): query i sees keys 0..i, torch's triu mask; the
 * products for a block stop at its last query's key.
 *
 * Heads up to 256 wide go to cpu_attention_mk.c first: the same blocks, both products
 * on our own kernel (AVX-512 or AVX2); this OpenBLAS path takes the rest (the VAE's
 * 512-wide head, a CPU with neither, a workspace too small to pack the keys).
 */
#include <cblas.h>
#include <omp.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/error.h" // sdr_fail

enum { ATTN_MAX_ROWS = 256, ATTN_BLOCK_FLOATS = 1024 << 10 };

int cpu_attention(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                  const sdr_tensor *v, int heads, float scale, int causal) {
  if (cpu_attention_mk(be, out, q, k, v, heads, scale, causal))
    return 0; /* our own kernel took it */
  int64_t B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1], HD = q->shape[2];
  int64_t Dh = HD / heads;
  int nt = cpu_threads();
  size_t per_thread = cpu_ws_floats(be) / (size_t)nt;
  /* rows * (Tk + 1) floats per thread: scores and the row sums */
  int64_t rows = (int64_t)(per_thread / (size_t)(Tk + 1));
  if (rows < 1)
    return sdr_fail("sdr_attention: workspace of %zu bytes is too small for %lld keys on %d "
                    "threads; reserve at least %zu",
                    cpu_state_of(be)->ws_bytes, (long long)Tk, nt,
                    (size_t)nt * (size_t)(Tk + 1) * sizeof(float));
  int64_t want = ATTN_BLOCK_FLOATS / Tk;
  want = want < 16 ? 16 : want > ATTN_MAX_ROWS ? ATTN_MAX_ROWS : want;
  rows = rows < want ? rows : want;
  rows = rows > Tq ? Tq : rows;
  int64_t blocks = (Tq + rows - 1) / rows, tasks = B * heads * blocks;
  float *ws = cpu_state_of(be)->ws;
  const float *Q = q->data, *Kt = k->data, *V = v->data;
  float *O = out->data;

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (tasks > 1)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t bi = t / (heads * blocks), h = (t / blocks) % heads, q0 = (t % blocks) * rows;
    int64_t nq = Tq - q0 < rows ? Tq - q0 : rows;
    int64_t nk = causal ? (q0 + nq < Tk ? q0 + nq : Tk) : Tk; /* keys any row of the block sees */
    float *S = ws + (size_t)omp_get_thread_num() * per_thread, *inv = S + rows * Tk;
    const float *qb = Q + (bi * Tq + q0) * HD + h * Dh;
    const float *kb = Kt + bi * Tk * HD + h * Dh, *vb = V + bi * Tk * HD + h * Dh;
    float *ob = O + (bi * Tq + q0) * HD + h * Dh;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)Dh, scale, qb,
                (int)HD, kb, (int)HD, 0.0f, S, (int)nk);
    for (int64_t r = 0; r < nq; r++) {
      float *s = S + r * nk;
      int64_t valid = causal ? (q0 + r + 1 < nk ? q0 + r + 1 : nk) : nk;
      float m = cpu_max(s, valid);
      inv[r] = 1.0f / cpu_exp_sum(s, s, valid, 1.0f, m);
      for (int64_t j = valid; j < nk; j++)
        s[j] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)Dh, (int)nk, 1.0f, S,
                (int)nk, vb, (int)HD, 0.0f, ob, (int)HD);
    for (int64_t r = 0; r < nq; r++)
      cpu_scale(ob + r * HD, ob + r * HD, Dh, inv[r]);
  }
  return 0;
}
