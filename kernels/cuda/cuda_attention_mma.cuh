/* kernels/cuda/cuda_attention_mma.cuh — attention with everything a query row needs in
 * registers (FlashAttention-2's layout): mma.sync m16n8k16 on the tensor cores,
 * float32 accumulation, the online softmax on the accumulator fragments. Mirrors
 * kernels/cpu/cpu_attention.c, as attn_flash in cuda_attention.cu does; this one
 * differs in where the data lives:
 *
 *  - a warp owns 16 query rows; its Q fragments stay in registers for the whole
 *    walk over the keys, so Q is read from global memory once;
 *  - S = Q K^T for a tile of 64 keys lands in 8 accumulator fragments (16 x 8
 *    each): a thread holds rows g and g + 8 (g = lane / 4) at columns 2t, 2t + 1
 *    (t = lane % 4), so a row's max and sum are reductions over 4 lanes;
 *  - P = exp2(S - m) is rounded to the input dtype and repacked in registers as
 *    the A operand of P V (the accumulator layout of two 8-key fragments is the A
 *    layout of one 16-key operand), and the output accumulates in registers;
 *  - K and V tiles are copied row-major into shared memory with cp.async (16 bytes a
 *    copy, no registers), two stages: the next tile's copies run while this one is
 *    used. The B operand of Q K^T (a key's consecutive dims) is read as words; that
 *    of P V (a dim's consecutive keys) with ldmatrix.trans, which transposes 8x8
 *    blocks on the way. Row pitches of 8 extra halves keep both conflict-free.
 *
 * For heads a multiple of 8 wide up to 160 (SD's 40, 80, 160; CLIP's 64) with q, k, v
 * and out 16-byte aligned; other heads (the VAE's 512) take attn_flash. float16 and
 * bfloat16. Shared memory: 28 KB at width 40 .. 84 KB at 160 (raised at init).
 */
#ifndef SDR_KERNELS_CUDA_ATTENTION_MMA_CUH
#define SDR_KERNELS_CUDA_ATTENTION_MMA_CUH

#include "kernels/cuda/cuda_device.cuh" // to_f, from_f
#include "kernels/cuda/cuda_ptx.cuh"    // mma_traits, cp_async16, ldsm_x4_t

#define MMA_LOG2E 1.4426950408889634f

enum { MMA_WARPS = 4, MMA_BQ = 16 * MMA_WARPS, MMA_BK = 64 };

/* Two elements (cols c, c + 1) of a row-major matrix of 2-byte values as one word. */
__device__ __forceinline__ uint32_t ld_pair(const void *base, int64_t elem) {
  return *reinterpret_cast<const uint32_t *>(reinterpret_cast<const uint16_t *>(base) + elem);
}

/* Shared memory: two stages of K and V tiles, each BK rows of DP + 8 2-byte elements. */
template <int DP> constexpr size_t mma_smem() { return (size_t)2 * 2 * MMA_BK * (DP + 8) * 2; }

/* K and V rows k0 .. k0 + BK of this head into a stage, 16 bytes per copy; zeros past
 * the keys and Dh (a multiple of 8 here), so no NaN reaches the products. */
template <int DP>
__device__ __forceinline__ void load_tile(uint16_t *Ks, uint16_t *Vs, const void *kb, const void *vb,
                                          int k0, int Tk, int Dh, int64_t HD) {
  constexpr int KP = DP + 8, CH = DP / 8; /* 16-byte chunks per row */
#pragma unroll 1
  for (int c = threadIdx.x; c < MMA_BK * CH; c += 32 * MMA_WARPS) {
    const int j = c / CH, d = (c % CH) * 8;
    const bool in = k0 + j < Tk && d < Dh;
    const int64_t e = in ? (int64_t)(k0 + j) * HD + d : 0;
    cp_async16(Ks + j * KP + d, reinterpret_cast<const uint16_t *>(kb) + e, in);
    cp_async16(Vs + j * KP + d, reinterpret_cast<const uint16_t *>(vb) + e, in);
  }
}

/* The launch shape (cuda_attention_mma.cu, and tests/cuda/simt/). */
static inline dim3 mma_grid(int B, int H, int Tq) {
  return dim3((unsigned)((Tq + MMA_BQ - 1) / MMA_BQ), (unsigned)(B * H));
}

/* Block (query block of 64 rows, b*H + h); 4 warps of 16 rows each. Dh a multiple of 8,
 * <= DP; q, k, v, out 16-byte aligned (cuda_attention_mma checks). */
template <typename T, int DP>
__global__ void __launch_bounds__(32 * MMA_WARPS)
    attn_mma(T *out, const T *q, const T *k, const T *v, int Tq, int Tk, int H, int Dh,
             float scale_log2, int causal) {
  typedef mma_traits<T> M;
  constexpr int KP = DP + 8, NQ = DP / 16, NO = DP / 8, STAGE = MMA_BK * KP;
  SDR_DYNAMIC_SHARED(unsigned char, smem_raw);
  uint16_t *Ks = reinterpret_cast<uint16_t *>(smem_raw); /* [2][BK][KP] */
  uint16_t *Vs = Ks + 2 * STAGE;                          /* [2][BK][KP] */

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t HD = (int64_t)H * Dh;
  const int b = blockIdx.y / H, h = blockIdx.y % H;
  const int q0 = blockIdx.x * MMA_BQ, r0 = q0 + warp * 16; /* this warp's first row */
  const T *qb = q + (int64_t)b * Tq * HD + (int64_t)h * Dh;
  const T *kb = k + (int64_t)b * Tk * HD + (int64_t)h * Dh;
  const T *vb = v + (int64_t)b * Tk * HD + (int64_t)h * Dh;

  /* the first tile's copies start before Q is read */
  const int kend = causal ? min(Tk, q0 + MMA_BQ) : Tk;
  load_tile<DP>(Ks, Vs, kb, vb, 0, Tk, Dh, HD);
  cp_async_commit();

  /* Q fragments: rows r0 + g and r0 + g + 8, dims 16 kc + 2t (+1) and + 8; zeros
   * past the rows and Dh. */
  uint32_t qa[NQ][4];
#pragma unroll
  for (int kc = 0; kc < NQ; kc++)
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int row = r0 + g + (i & 1) * 8, col = kc * 16 + 2 * t + (i >> 1) * 8;
      qa[kc][i] = row < Tq && col < Dh ? ld_pair(qb, (int64_t)row * HD + col) : 0u;
    }

  float o[NO][4];
#pragma unroll
  for (int n = 0; n < NO; n++)
    o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.0f, l_hi = 0.0f; /* rows g, g + 8 */

  for (int k0 = 0, stage = 0; k0 < kend; k0 += MMA_BK, stage ^= 1) {
    /* the next tile's copies go into the other stage (free: the last iteration ended
     * with a barrier) while this one is used */
    if (k0 + MMA_BK < kend) {
      load_tile<DP>(Ks + (stage ^ 1) * STAGE, Vs + (stage ^ 1) * STAGE, kb, vb, k0 + MMA_BK, Tk,
                    Dh, HD);
      cp_async_commit();
      cp_async_wait<1>(); /* this thread's copies of this tile are done */
    } else {
      cp_async_wait<0>();
    }
    __syncthreads(); /* and every thread's */
    const uint16_t *Kt = Ks + stage * STAGE, *Vt = Vs + stage * STAGE;

    /* S (16 x 64) = Q K^T: fragment nb holds keys 8 nb .. 8 nb + 7. */
    float s[MMA_BK / 8][4];
#pragma unroll
    for (int nb = 0; nb < MMA_BK / 8; nb++) {
      s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
      const uint16_t *krow = Kt + (nb * 8 + g) * KP + 2 * t;
#pragma unroll
      for (int kc = 0; kc < NQ; kc++)
        M::mma(s[nb], qa[kc], *reinterpret_cast<const uint32_t *>(krow + kc * 16),
               *reinterpret_cast<const uint32_t *>(krow + kc * 16 + 8));
    }

    /* Mask, scale (base 2), the rows' new maxima over the 4 lanes of a row. */
    float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
    for (int nb = 0; nb < MMA_BK / 8; nb++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int key = k0 + nb * 8 + 2 * t + (e & 1), row = r0 + g + (e >> 1) * 8;
        const bool valid = key < Tk && (!causal || key <= row);
        s[nb][e] = valid ? s[nb][e] * scale_log2 : -INFINITY;
        if (e < 2)
          mx_lo = fmaxf(mx_lo, s[nb][e]);
        else
          mx_hi = fmaxf(mx_hi, s[nb][e]);
      }
#pragma unroll
    for (int off = 1; off < 4; off <<= 1) {
      mx_lo = fmaxf(mx_lo, __shfl_xor_sync(0xffffffffu, mx_lo, off));
      mx_hi = fmaxf(mx_hi, __shfl_xor_sync(0xffffffffu, mx_hi, off));
    }
    const float mn_lo = fmaxf(m_lo, mx_lo), mn_hi = fmaxf(m_hi, mx_hi);
    const float base_lo = mn_lo == -INFINITY ? 0.0f : mn_lo; /* no -inf - -inf */
    const float base_hi = mn_hi == -INFINITY ? 0.0f : mn_hi;
    const float corr_lo = exp2f(m_lo - base_lo), corr_hi = exp2f(m_hi - base_hi);
    m_lo = mn_lo;
    m_hi = mn_hi;

    /* P = exp2(S - m); this lane's share of the row sums (reduced at the end). */
    float sum_lo = 0.0f, sum_hi = 0.0f;
#pragma unroll
    for (int nb = 0; nb < MMA_BK / 8; nb++) {
      s[nb][0] = exp2f(s[nb][0] - base_lo);
      s[nb][1] = exp2f(s[nb][1] - base_lo);
      s[nb][2] = exp2f(s[nb][2] - base_hi);
      s[nb][3] = exp2f(s[nb][3] - base_hi);
      sum_lo += s[nb][0] + s[nb][1];
      sum_hi += s[nb][2] + s[nb][3];
    }
    l_lo = l_lo * corr_lo + sum_lo;
    l_hi = l_hi * corr_hi + sum_hi;
#pragma unroll
    for (int n = 0; n < NO; n++) {
      o[n][0] *= corr_lo;
      o[n][1] *= corr_lo;
      o[n][2] *= corr_hi;
      o[n][3] *= corr_hi;
    }

    /* O += P V, 16 keys at a time: P's A operand from two S fragments. */
#pragma unroll
    for (int kc = 0; kc < MMA_BK / 16; kc++) {
      const uint32_t pa[4] = {
          M::pack(s[2 * kc][0], s[2 * kc][1]), M::pack(s[2 * kc][2], s[2 * kc][3]),
          M::pack(s[2 * kc + 1][0], s[2 * kc + 1][1]), M::pack(s[2 * kc + 1][2], s[2 * kc + 1][3])};
      /* V's B operands, two dim blocks per ldmatrix: matrices (keys 0-7, dims n),
       * (keys 8-15, dims n), (keys 0-7, dims n + 1), (keys 8-15, dims n + 1) */
      const uint16_t *vrow = Vt + (kc * 16 + (lane & 15)) * KP + (lane >> 4) * 8;
#pragma unroll
      for (int n = 0; n < NO; n += 2) {
        uint32_t vf[4];
        ldsm_x4_t(vf, vrow + n * 8);
        M::mma(o[n], pa, vf[0], vf[1]);
        M::mma(o[n + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads(); /* every warp is done with this stage before it is refilled */
  }

  /* The rows' sums over their 4 lanes, then O / l. */
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l_lo += __shfl_xor_sync(0xffffffffu, l_lo, off);
    l_hi += __shfl_xor_sync(0xffffffffu, l_hi, off);
  }
  const float inv_lo = l_lo > 0.0f ? 1.0f / l_lo : 0.0f, inv_hi = l_hi > 0.0f ? 1.0f / l_hi : 0.0f;
  T *ob = out + (int64_t)b * Tq * HD + (int64_t)h * Dh;
  const int row_lo = r0 + g, row_hi = r0 + g + 8;
#pragma unroll
  for (int n = 0; n < NO; n++) {
    const int d = n * 8 + 2 * t;
    if (d >= Dh)
      continue;
    if (row_lo < Tq)
      *reinterpret_cast<uint32_t *>(ob + (int64_t)row_lo * HD + d) =
          M::pack(o[n][0] * inv_lo, o[n][1] * inv_lo);
    if (row_hi < Tq)
      *reinterpret_cast<uint32_t *>(ob + (int64_t)row_hi * HD + d) =
          M::pack(o[n][2] * inv_hi, o[n][3] * inv_hi);
  }
}

#endif
