/* kernels/cuda/cuda_attention_mma.cu — launching attn_mma (cuda_attention_mma.cuh says
 * how it works): which head widths, the shared memory each needs. */
#include "kernels/cuda/cuda_attention_mma.cuh"
#include "kernels/cuda/cuda_internal.h"

template <typename T, int DP>
static int launch(cuda_state *st, const char *op, sdr_tensor *out, const sdr_tensor *q,
                  const sdr_tensor *k, const sdr_tensor *v, int B, int Tq, int Tk, int H, int Dh,
                  float scale, int causal) {
  constexpr size_t smem = mma_smem<DP>(); /* over 48 KB from DP 96: raised at init */
  if (smem > st->smem_optin)
    return 0;
  SDR_LAUNCH((attn_mma<T, DP>), mma_grid(B, H, Tq), 32 * MMA_WARPS, smem, st->stream,
             (T *)out->data, (const T *)q->data, (const T *)k->data, (const T *)v->data, Tq, Tk, H,
             Dh, scale * MMA_LOG2E, causal);
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
  if (dt == SDR_F32 || Dh % 8 != 0 || Dh > 160 || Dh < 1)
    return 0;
  /* K and V rows move in 16-byte copies: views not aligned to them are not for it */
  if (((uintptr_t)out->data | (uintptr_t)q->data | (uintptr_t)k->data | (uintptr_t)v->data) & 15)
    return 0;
  if (dt == SDR_F16)
    return dispatch<__half>(st, op, out, q, k, v, B, Tq, Tk, H, Dh, scale, causal);
  return dispatch<__nv_bfloat16>(st, op, out, q, k, v, B, Tq, Tk, H, Dh, scale, causal);
}

template <int DP> static cudaError_t raise_smem() {
  cudaError_t e = cudaFuncSetAttribute(
      attn_mma<__half, DP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)mma_smem<DP>());
  if (e == cudaSuccess)
    e = cudaFuncSetAttribute(attn_mma<__nv_bfloat16, DP>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)mma_smem<DP>());
  return e;
}

int cuda_attention_mma_init(cuda_state *st) {
  const char *op = "sdr_cuda_backend_create";
  /* the widths whose two stages fit this GPU (all of them on Hopper: 84 KB at 160) */
#define RAISE(N)                                                                                   \
  if (mma_smem<N>() <= st->smem_optin)                                                             \
  CUDA_TRY(op, raise_smem<N>())
  RAISE(16);
  RAISE(32);
  RAISE(48);
  RAISE(64);
  RAISE(80);
  RAISE(96);
  RAISE(112);
  RAISE(128);
  RAISE(144);
  RAISE(160);
#undef RAISE
  return 0;
}
