/* kernels/cuda/cuda_attention_mma.cu — attention with everything a query row needs in
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
 *  - K is kept row-major in shared memory (the B operand of Q K^T is a key's
 *    consecutive dims), V transposed (the B operand of P V is a dim's consecutive
 *    keys); row pitches of 8 extra halves keep the 32 lanes' loads on distinct banks.
 *
 * For heads of an even width up to 160 (SD's 40, 64, 80, 160; CLIP's 64); wider
 * heads (the VAE's 512) take attn_flash. float16 and bfloat16.
 */
#include "kernels/cuda/cuda_internal.h"

#define MMA_LOG2E 1.4426950408889634f

enum { MMA_WARPS = 4, MMA_BQ = 16 * MMA_WARPS, MMA_BK = 64, MMA_VP = MMA_BK + 8 };

template <typename T> struct mma_traits;
template <> struct mma_traits<__half> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
  }
  static __device__ __forceinline__ void mma(float *d, const uint32_t *a, uint32_t b0,
                                             uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};
template <> struct mma_traits<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
  }
  static __device__ __forceinline__ void mma(float *d, const uint32_t *a, uint32_t b0,
                                             uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

/* Two elements (cols c, c + 1) of a row-major matrix of 2-byte values as one word. */
__device__ __forceinline__ uint32_t ld_pair(const void *base, int64_t elem) {
  return *reinterpret_cast<const uint32_t *>(reinterpret_cast<const uint16_t *>(base) + elem);
}

/* Shared memory: K (BK x DP+8) then V^T (DP x BK+8), 2-byte elements. */
template <int DP> constexpr size_t mma_smem() {
  return ((size_t)MMA_BK * (DP + 8) + (size_t)DP * MMA_VP) * 2;
}

/* Block (query block of 64 rows, b*H + h); 4 warps of 16 rows each. Dh even, <= DP. */
template <typename T, int DP>
__global__ void __launch_bounds__(32 * MMA_WARPS)
    attn_mma(T *out, const T *q, const T *k, const T *v, int Tq, int Tk, int H, int Dh,
             float scale_log2, int causal) {
  typedef mma_traits<T> M;
  constexpr int KP = DP + 8, NQ = DP / 16, NO = DP / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t *Ks = reinterpret_cast<uint16_t *>(smem_raw);
  uint16_t *Vt = Ks + MMA_BK * KP;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t HD = (int64_t)H * Dh;
  const int b = blockIdx.y / H, h = blockIdx.y % H;
  const int q0 = blockIdx.x * MMA_BQ, r0 = q0 + warp * 16; /* this warp's first row */
  const T *qb = q + (int64_t)b * Tq * HD + (int64_t)h * Dh;
  const T *kb = k + (int64_t)b * Tk * HD + (int64_t)h * Dh;
  const T *vb = v + (int64_t)b * Tk * HD + (int64_t)h * Dh;

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

  const int kend = causal ? min(Tk, q0 + MMA_BQ) : Tk;
  for (int k0 = 0; k0 < kend; k0 += MMA_BK) {
    __syncthreads(); /* every warp is done with the last tile */
    for (int i = threadIdx.x; i < MMA_BK * (DP / 2); i += blockDim.x) {
      const int j = i / (DP / 2), d = (i % (DP / 2)) * 2;
      const bool in = k0 + j < Tk && d < Dh; /* zeros past the keys and Dh: no NaN */
      const uint32_t kw = in ? ld_pair(kb, (int64_t)(k0 + j) * HD + d) : 0u;
      const uint32_t vw = in ? ld_pair(vb, (int64_t)(k0 + j) * HD + d) : 0u;
      *reinterpret_cast<uint32_t *>(Ks + j * KP + d) = kw;
      Vt[d * MMA_VP + j] = (uint16_t)(vw & 0xffffu);
      Vt[(d + 1) * MMA_VP + j] = (uint16_t)(vw >> 16);
    }
    __syncthreads();

    /* S (16 x 64) = Q K^T: fragment nb holds keys 8 nb .. 8 nb + 7. */
    float s[MMA_BK / 8][4];
#pragma unroll
    for (int nb = 0; nb < MMA_BK / 8; nb++) {
      s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
      const uint16_t *krow = Ks + (nb * 8 + g) * KP + 2 * t;
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
#pragma unroll
      for (int n = 0; n < NO; n++) {
        const uint16_t *vrow = Vt + (n * 8 + g) * MMA_VP + kc * 16 + 2 * t;
        M::mma(o[n], pa, *reinterpret_cast<const uint32_t *>(vrow),
               *reinterpret_cast<const uint32_t *>(vrow + 8));
      }
    }
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

template <typename T, int DP>
static int launch(cuda_state *st, const char *op, sdr_tensor *out, const sdr_tensor *q,
                  const sdr_tensor *k, const sdr_tensor *v, int B, int Tq, int Tk, int H, int Dh,
                  float scale, int causal) {
  constexpr size_t smem = mma_smem<DP>();
  static_assert(smem <= 48 * 1024, "no opt-in to more shared memory needed up to DP 160");
  dim3 grid((unsigned)((Tq + MMA_BQ - 1) / MMA_BQ), (unsigned)(B * H));
  attn_mma<T, DP><<<grid, 32 * MMA_WARPS, smem, st->stream>>>(
      (T *)out->data, (const T *)q->data, (const T *)k->data, (const T *)v->data, Tq, Tk, H, Dh,
      scale * MMA_LOG2E, causal);
  CUDA_LAUNCHED(op);
  return 1;
}

template <typename T>
static int dispatch(cuda_state *st, const char *op, sdr_tensor *out, const sdr_tensor *q,
                    const sdr_tensor *k, const sdr_tensor *v, int B, int Tq, int Tk, int H, int Dh,
                    float scale, int causal) {
  const int dp = (Dh + 15) / 16 * 16;
#define CASE(N)                                                                                    \
  case N:                                                                                          \
    return launch<T, N>(st, op, out, q, k, v, B, Tq, Tk, H, Dh, scale, causal)
  switch (dp) {
    CASE(16);
    CASE(32);
    CASE(48);
    CASE(64);
    CASE(80);
    CASE(96);
    CASE(112);
    CASE(128);
    CASE(144);
    CASE(160);
  default:
    return 0;
  }
#undef CASE
}

/* 1 when launched, 0 when these heads are not for this kernel, -1 on an error. */
int cuda_attention_mma(cuda_state *st, const char *op, sdr_tensor *out, const sdr_tensor *q,
                       const sdr_tensor *k, const sdr_tensor *v, sdr_dtype dt, int B, int Tq,
                       int Tk, int H, int Dh, float scale, int causal) {
  if (dt == SDR_F32 || Dh % 2 != 0 || Dh > 160 || Dh < 1)
    return 0;
  /* pairs of elements move as 32-bit words: a view at an odd element is not for it */
  if (((uintptr_t)out->data | (uintptr_t)q->data | (uintptr_t)k->data | (uintptr_t)v->data) & 3)
    return 0;
  if (dt == SDR_F16)
    return dispatch<__half>(st, op, out, q, k, v, B, Tq, Tk, H, Dh, scale, causal);
  return dispatch<__nv_bfloat16>(st, op, out, q, k, v, B, Tq, Tk, H, Dh, scale, causal);
}
