/* kernels/cuda/cuda_attention.cuh — softmax(q k^T * scale) v per head without the N x N
 * scores (flash attention: running max and sum per query row, "online softmax");
 * mirrors kernels/cpu/cpu_attention.c. q (B, Tq, heads*Dh), k and v (B, Tk, heads*Dh);
 * causal masks key j > query i (CLIP's text model).
 *
 * Two kernels:
 *  - attn_flash (float16, bfloat16): tensor cores through WMMA (16x16x16, float32
 *    accumulation). A block of 2-4 warps takes 16 query rows per warp of one
 *    (image, head) and walks the keys in tiles of 16-64: S = Q K^T into shared
 *    memory, each warp turns its rows into probabilities (float32, then rounded
 *    to the input dtype for the second product, as flash attention does),
 *    rescales its output rows by exp(m_old - m_new), and adds P V onto them. The
 *    output accumulates in float32 in shared memory (WMMA's fragment layout is
 *    opaque, so the per-row rescale cannot be done in registers). Dh is padded
 *    with zeros to a multiple of 16: 40 -> 48, 80, 160, 64; the VAE's 512 takes
 *    the 2-warp, 32-key shape to fit in shared memory.
 *  - attn_simple (any dtype, float32 arithmetic, any Dh up to ~1200): one warp per
 *    query row, one key per lane; the reference the fast one is checked against
 *    on the GPU, the float32 path, and the fallback when attn_flash does not fit.
 * Correct first; the fast kernel's next steps (ldmatrix/mma.sync with the output
 * in registers, cp.async double buffering, wgmma on sm_90a) are in README.md.
 */
#ifndef SDR_KERNELS_CUDA_ATTENTION_CUH
#define SDR_KERNELS_CUDA_ATTENTION_CUH

#include <mma.h>
#include <stddef.h>

#include "kernels/cuda/cuda_device.cuh" // to_f, from_f

using namespace nvcuda;

#define LOG2E 1.4426950408889634f

__device__ __forceinline__ float attn_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float attn_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* ---- attn_simple ---- */

enum { SA_ROWS = 8, SA_KEYS = 32, SA_DCHUNK = 256 };

/* queries (SA_ROWS x Dh), keys (SA_KEYS x (Dh|1): an odd pitch, so the lanes' rows
 * fall in different banks), values (SA_KEYS x the block's output columns) */
static inline size_t simple_smem(int Dh) {
  int dn = Dh < SA_DCHUNK ? Dh : SA_DCHUNK;
  return (size_t)(SA_ROWS * Dh + SA_KEYS * (Dh | 1) + SA_KEYS * dn) * sizeof(float);
}

/* Block (query block, b*H + h, output-column chunk): warp w owns query row q0 + w. */
template <typename T>
__global__ void __launch_bounds__(SA_ROWS * 32)
    attn_simple(T *out, const T *q, const T *k, const T *v, int Tq, int Tk, int H, int Dh,
                float scale, int causal) {
  SDR_DYNAMIC_SHARED(float, smf);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, kp = Dh | 1;
  const int64_t HD = (int64_t)H * Dh;
  const int b = blockIdx.y / H, h = blockIdx.y % H, q0 = blockIdx.x * SA_ROWS;
  const int d0 = blockIdx.z * SA_DCHUNK, dn = min(SA_DCHUNK, Dh - d0);
  float *qs = smf, *ks = qs + SA_ROWS * Dh, *vs = ks + SA_KEYS * kp;
  const T *qb = q + (int64_t)b * Tq * HD + (int64_t)h * Dh;
  const T *kb = k + (int64_t)b * Tk * HD + (int64_t)h * Dh;
  const T *vb = v + (int64_t)b * Tk * HD + (int64_t)h * Dh + d0;
  for (int i = threadIdx.x; i < SA_ROWS * Dh; i += blockDim.x) {
    int r = i / Dh, d = i % Dh;
    qs[i] = q0 + r < Tq ? to_f(qb[(int64_t)(q0 + r) * HD + d]) : 0.0f;
  }
  const int row = q0 + warp;
  const int kend = causal ? min(Tk, q0 + SA_ROWS) : Tk; /* keys any row of the block sees */
  float m = -INFINITY, l = 0.0f, acc[SA_DCHUNK / 32];
#pragma unroll
  for (int c = 0; c < SA_DCHUNK / 32; c++)
    acc[c] = 0.0f;
  for (int k0 = 0; k0 < kend; k0 += SA_KEYS) {
    __syncthreads(); /* queries loaded; the last tile no longer read */
    for (int i = threadIdx.x; i < SA_KEYS * Dh; i += blockDim.x) {
      int j = i / Dh, d = i % Dh;
      ks[j * kp + d] = k0 + j < Tk ? to_f(kb[(int64_t)(k0 + j) * HD + d]) : 0.0f;
    }
    for (int i = threadIdx.x; i < SA_KEYS * dn; i += blockDim.x) {
      int j = i / dn, d = i % dn;
      vs[i] = k0 + j < Tk ? to_f(vb[(int64_t)(k0 + j) * HD + d]) : 0.0f;
    }
    __syncthreads();
    const int key = k0 + lane;
    const bool valid = row < Tq && key < Tk && (!causal || key <= row);
    float s = -INFINITY;
    if (valid) {
      const float *qr = qs + warp * Dh, *kr = ks + lane * kp;
      float dot = 0.0f;
      for (int d = 0; d < Dh; d++)
        dot = fmaf(qr[d], kr[d], dot);
      s = dot * scale; /* scaled after the sum, as the CPU's sgemm alpha */
    }
    const float mnew = fmaxf(m, attn_warp_max(s));
    if (mnew == -INFINITY) /* the same for the whole warp: no key of this row yet */
      continue;
    const float p = valid ? expf(s - mnew) : 0.0f, corr = expf(m - mnew);
    l = l * corr + attn_warp_sum(p);
#pragma unroll
    for (int c = 0; c < SA_DCHUNK / 32; c++)
      acc[c] *= corr;
    for (int j = 0; j < SA_KEYS; j++) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
      if (pj == 0.0f) /* masked or padding: the same for every lane */
        continue;
      const float *vr = vs + j * dn;
#pragma unroll
      for (int c = 0; c < SA_DCHUNK / 32; c++) {
        int d = lane + 32 * c;
        if (d < dn)
          acc[c] = fmaf(pj, vr[d], acc[c]);
      }
    }
    m = mnew;
  }
  if (row < Tq) {
    T *ob = out + ((int64_t)b * Tq + row) * HD + (int64_t)h * Dh + d0;
    const float inv = 1.0f / l;
#pragma unroll
    for (int c = 0; c < SA_DCHUNK / 32; c++) {
      int d = lane + 32 * c;
      if (d < dn)
        ob[d] = from_f<T>(acc[c] * inv);
    }
  }
}

/* ---- attn_flash ---- */

/* Shared memory of one block: Q (BQ x ldh), K and V (BK x ldh) in the input dtype,
 * S (BQ x lds) float, P (BQ x ldp) input dtype, O (BQ x ldo) float, then the rows'
 * running max, sum and last correction. Every region starts on a 32-byte boundary
 * (WMMA's rule), since BQ and BK are multiples of 16 and the pitches of 8 or 4. */
static inline size_t flash_smem(int warps, int BK, int Dp) {
  size_t BQ = 16 * (size_t)warps, ldh = Dp + 8, lds = BK + 4, ldp = BK + 8, ldo = Dp + 4;
  return (BQ * ldh + 2 * (size_t)BK * ldh) * 2 + BQ * lds * 4 + BQ * ldp * 2 + BQ * ldo * 4 +
         3 * BQ * 4;
}

template <typename T>
__global__ void __launch_bounds__(128)
    attn_flash(T *out, const T *q, const T *k, const T *v, int Tq, int Tk, int H, int Dh, int Dp,
               int BK, float scale_log2, int causal) {
  SDR_DYNAMIC_SHARED(unsigned char, smem);
  typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> frag_a;
  typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> frag_bt;
  typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> frag_b;
  typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;
  const int NW = blockDim.x >> 5, BQ = 16 * NW;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, r16 = warp * 16;
  const int ldh = Dp + 8, lds = BK + 4, ldp = BK + 8, ldo = Dp + 4;
  T *Qs = (T *)smem, *Ks = Qs + BQ * ldh, *Vs = Ks + BK * ldh;
  float *Ss = (float *)(Vs + BK * ldh);
  T *Ps = (T *)(Ss + BQ * lds);
  float *Os = (float *)(Ps + BQ * ldp);
  float *rowM = Os + BQ * ldo, *rowL = rowM + BQ, *rowC = rowL + BQ;

  const int64_t HD = (int64_t)H * Dh;
  const int b = blockIdx.y / H, h = blockIdx.y % H, q0 = blockIdx.x * BQ;
  const T *qb = q + (int64_t)b * Tq * HD + (int64_t)h * Dh;
  const T *kb = k + (int64_t)b * Tk * HD + (int64_t)h * Dh;
  const T *vb = v + (int64_t)b * Tk * HD + (int64_t)h * Dh;
  const T zero = from_f<T>(0.0f);

  for (int i = threadIdx.x; i < BQ * Dp; i += blockDim.x) {
    int r = i / Dp, d = i % Dp;
    Qs[r * ldh + d] = q0 + r < Tq && d < Dh ? qb[(int64_t)(q0 + r) * HD + d] : zero;
    Os[r * ldo + d] = 0.0f;
  }
  for (int i = threadIdx.x; i < BQ; i += blockDim.x) {
    rowM[i] = -INFINITY;
    rowL[i] = 0.0f;
  }
  const int kend = causal ? min(Tk, q0 + BQ) : Tk;
  for (int k0 = 0; k0 < kend; k0 += BK) {
    __syncthreads(); /* Q and O ready; every warp done with the last K and V */
    for (int i = threadIdx.x; i < BK * Dp; i += blockDim.x) {
      int j = i / Dp, d = i % Dp;
      bool in = k0 + j < Tk && d < Dh; /* zeros past the keys and Dh: no NaN from padding */
      Ks[j * ldh + d] = in ? kb[(int64_t)(k0 + j) * HD + d] : zero;
      Vs[j * ldh + d] = in ? vb[(int64_t)(k0 + j) * HD + d] : zero;
    }
    __syncthreads();

    /* S (16 x BK) of this warp's rows = Q K^T; K^T is K read column-major. */
    for (int c = 0; c < BK / 16; c++) {
      frag_c acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < Dp / 16; kk++) {
        frag_a fa;
        frag_bt fb;
        wmma::load_matrix_sync(fa, Qs + r16 * ldh + kk * 16, ldh);
        wmma::load_matrix_sync(fb, Ks + c * 16 * ldh + kk * 16, ldh);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Ss + r16 * lds + c * 16, acc, lds, wmma::mem_row_major);
    }
    __syncwarp();

    /* Online softmax: two lanes per row, half the tile's keys each (base 2). */
    {
      const int r = lane >> 1, half = lane & 1, hb = BK / 2, grow = q0 + r16 + r;
      float *srow = Ss + (r16 + r) * lds + half * hb;
      T *prow = Ps + (r16 + r) * ldp + half * hb;
      float mx = -INFINITY;
      for (int j = 0; j < hb; j++) {
        int key = k0 + half * hb + j;
        bool valid = key < Tk && (!causal || key <= grow);
        float s = valid ? srow[j] * scale_log2 : -INFINITY;
        srow[j] = s;
        mx = fmaxf(mx, s);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      const float mold = rowM[r16 + r], mnew = fmaxf(mold, mx);
      const float base = mnew == -INFINITY ? 0.0f : mnew; /* no -inf - -inf */
      float sum = 0.0f;
      for (int j = 0; j < hb; j++) {
        float p = exp2f(srow[j] - base);
        prow[j] = from_f<T>(p);
        sum += p;
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      const float corr = exp2f(mold - base);
      __syncwarp(); /* both lanes of a row have read rowM */
      if (half == 0) {
        rowM[r16 + r] = mnew;
        rowL[r16 + r] = rowL[r16 + r] * corr + sum;
        rowC[r16 + r] = corr;
      }
      __syncwarp();
    }

    /* O = O * corr + P V for this warp's rows. */
    for (int i = lane; i < 16 * Dp; i += 32) {
      int r = i / Dp, d = i % Dp;
      Os[(r16 + r) * ldo + d] *= rowC[r16 + r];
    }
    __syncwarp();
    for (int dc = 0; dc < Dp / 16; dc++) {
      frag_c acc;
      wmma::load_matrix_sync(acc, Os + r16 * ldo + dc * 16, ldo, wmma::mem_row_major);
      for (int j = 0; j < BK / 16; j++) {
        frag_a fa;
        frag_b fb;
        wmma::load_matrix_sync(fa, Ps + r16 * ldp + j * 16, ldp);
        wmma::load_matrix_sync(fb, Vs + j * 16 * ldh + dc * 16, ldh);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Os + r16 * ldo + dc * 16, acc, ldo, wmma::mem_row_major);
    }
  }
  __syncwarp();
  T *ob = out + (int64_t)b * Tq * HD + (int64_t)h * Dh;
  for (int i = lane; i < 16 * Dh; i += 32) {
    int r = i / Dh, d = i % Dh, grow = q0 + r16 + r;
    if (grow < Tq)
      ob[(int64_t)grow * HD + d] = from_f<T>(Os[(r16 + r) * ldo + d] / rowL[r16 + r]);
  }
}

/* Launch shapes (cuda_attention.cu, and tests/cuda/simt/ which runs these kernels). */
static inline dim3 simple_grid(int B, int H, int Tq, int Dh) {
  return dim3((unsigned)((Tq + SA_ROWS - 1) / SA_ROWS), (unsigned)(B * H),
              (unsigned)((Dh + SA_DCHUNK - 1) / SA_DCHUNK));
}
static inline dim3 flash_grid(int B, int H, int Tq, int warps) {
  return dim3((unsigned)((Tq + 16 * warps - 1) / (16 * warps)), (unsigned)(B * H));
}

/* The largest block shape whose shared memory fits: 4 warps x 64 keys for Dh up
 * to 160 (134 KB at 160), 2 x 32 for the VAE's 512 (173 KB). */
static inline int flash_pick(size_t smem_optin, int Dp, int *warps, int *BK) {
  static const int shapes[3][2] = {{4, 64}, {2, 32}, {1, 16}};
  for (int i = 0; i < 3; i++)
    if (flash_smem(shapes[i][0], shapes[i][1], Dp) <= smem_optin) {
      *warps = shapes[i][0];
      *BK = shapes[i][1];
      return 0;
    }
  return -1;
}

#endif
