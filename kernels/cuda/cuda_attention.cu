/* kernels/cuda/cuda_attention.cu — the attention op: which kernel takes a call
 * (cuda_attention.cuh: attn_flash, attn_simple; cuda_attention_mma.cuh: attn_mma)
 * and its launch. */
#include "kernels/cuda/cuda_attention.cuh"
#include "kernels/cuda/cuda_internal.h"

int cuda_attention_init(cuda_state *st) {
  const char *op = "sdr_cuda_backend_create";
  int lim = (int)st->smem_optin;
  CUDA_TRY(op, cudaFuncSetAttribute(attn_flash<__half>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    lim));
  CUDA_TRY(op, cudaFuncSetAttribute(attn_flash<__nv_bfloat16>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, lim));
  CUDA_TRY(op, cudaFuncSetAttribute(attn_simple<float>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    lim));
  CUDA_TRY(op, cudaFuncSetAttribute(attn_simple<__half>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, lim));
  CUDA_TRY(op, cudaFuncSetAttribute(attn_simple<__nv_bfloat16>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, lim));
  return cuda_attention_mma_init(st);
}

template <typename T>
static void launch_flash(cuda_state *st, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                         const sdr_tensor *v, int B, int Tq, int Tk, int H, int Dh, int Dp,
                         int warps, int BK, float scale, int causal) {
  SDR_LAUNCH(attn_flash<T>, flash_grid(B, H, Tq, warps), 32 * warps, flash_smem(warps, BK, Dp),
             st->stream, (T *)out->data, (const T *)q->data, (const T *)k->data, (const T *)v->data,
             Tq, Tk, H, Dh, Dp, BK, scale * LOG2E, causal);
}

template <typename T>
static void launch_simple(cuda_state *st, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                          const sdr_tensor *v, int B, int Tq, int Tk, int H, int Dh, float scale,
                          int causal) {
  SDR_LAUNCH(attn_simple<T>, simple_grid(B, H, Tq, Dh), SA_ROWS * 32, simple_smem(Dh), st->stream,
             (T *)out->data, (const T *)q->data, (const T *)k->data, (const T *)v->data, Tq, Tk, H,
             Dh, scale, causal);
}

int cuda_attention(sdr_backend *be, sdr_tensor *out, const sdr_tensor *q, const sdr_tensor *k,
                   const sdr_tensor *v, int heads, float scale, int causal) {
  const char *op = "sdr_attention";
  cuda_state *st = cuda_use(be);
  sdr_dtype dt;
  const sdr_tensor *acts[4] = {out, q, k, v};
  if (cuda_act_dtype(op, acts, 4, &dt) < 0)
    return -1;
  int64_t B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1], Dh = q->shape[2] / heads;
  if (B * heads > 65535)
    return sdr_fail("%s: %lld images x %d heads is more than the CUDA kernel takes (65535)", op,
                    (long long)B, heads);
  if ((Tq + SA_ROWS - 1) / SA_ROWS > 0x7fffffff)
    return sdr_fail("%s: %lld queries is more than the CUDA kernel takes", op, (long long)Tq);
  int warps, BK, Dp = (int)((Dh + 15) / 16 * 16);
  if (dt != SDR_F32 && !st->simple_attention && st->mma_attention) {
    int r = cuda_attention_mma(st, op, out, q, k, v, dt, (int)B, (int)Tq, (int)Tk, heads, (int)Dh,
                               scale, causal);
    if (r != 0)
      return r < 0 ? -1 : 0;
  }
  if (dt != SDR_F32 && !st->simple_attention && flash_pick(st->smem_optin, Dp, &warps, &BK) == 0) {
    if (dt == SDR_F16)
      launch_flash<__half>(st, out, q, k, v, (int)B, (int)Tq, (int)Tk, heads, (int)Dh, Dp, warps,
                           BK, scale, causal);
    else
      launch_flash<__nv_bfloat16>(st, out, q, k, v, (int)B, (int)Tq, (int)Tk, heads, (int)Dh, Dp,
                                  warps, BK, scale, causal);
    CUDA_LAUNCHED(op);
    return 0;
  }
  if (simple_smem((int)Dh) > st->smem_optin)
    return sdr_fail("%s: heads of %lld are wider than the CUDA kernels take (%zu bytes of shared "
                    "memory needed, %zu available)",
                    op, (long long)Dh, simple_smem((int)Dh), st->smem_optin);
  if (dt == SDR_F32)
    launch_simple<float>(st, out, q, k, v, (int)B, (int)Tq, (int)Tk, heads, (int)Dh, scale, causal);
  else if (dt == SDR_F16)
    launch_simple<__half>(st, out, q, k, v, (int)B, (int)Tq, (int)Tk, heads, (int)Dh, scale,
                          causal);
  else
    launch_simple<__nv_bfloat16>(st, out, q, k, v, (int)B, (int)Tq, (int)Tk, heads, (int)Dh, scale,
                                 causal);
  CUDA_LAUNCHED(op);
  return 0;
}
