/* engine/attention.c — Attention: to_q, to_k, to_v, softmax(q k^T / sqrt(d)) v, to_out.0. */
#include "engine/attention.h"

#include <math.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

int sdr_attn_layer_bind(sdr_attn_layer *at, sdr_weights *w, const char *p, int query_dim,
                        int context_dim, int heads, int dim_head, int qkv_bias) {
  *at = (sdr_attn_layer){
      .query_dim = query_dim, .context_dim = context_dim, .heads = heads, .dim_head = dim_head};
  const int64_t inner = (int64_t)heads * dim_head;
  int rc = 0;
  rc |= sdr_weights_bindf(w, &at->q_w, 2, (int64_t[]){inner, query_dim}, "%s.to_q.weight", p);
  rc |= sdr_weights_bindf(w, &at->k_w, 2, (int64_t[]){inner, context_dim}, "%s.to_k.weight", p);
  rc |= sdr_weights_bindf(w, &at->v_w, 2, (int64_t[]){inner, context_dim}, "%s.to_v.weight", p);
  if (qkv_bias) {
    rc |= sdr_weights_bindf(w, &at->q_b, 1, (int64_t[]){inner}, "%s.to_q.bias", p);
    rc |= sdr_weights_bindf(w, &at->k_b, 1, (int64_t[]){inner}, "%s.to_k.bias", p);
    rc |= sdr_weights_bindf(w, &at->v_b, 1, (int64_t[]){inner}, "%s.to_v.bias", p);
  }
  rc |= sdr_weights_bindf(w, &at->out_w, 2, (int64_t[]){query_dim, inner}, "%s.to_out.0.weight", p);
  rc |= sdr_weights_bindf(w, &at->out_b, 1, (int64_t[]){query_dim}, "%s.to_out.0.bias", p);
  return rc ? -1 : 0;
}

static const sdr_tensor *bias_or_null(const sdr_tensor *b) { return b->data ? b : NULL; }

int sdr_attn_layer_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                           const sdr_tensor *context, const sdr_attn_layer *at) {
  const sdr_tensor *ctx = context ? context : x;
  const int64_t B = x->shape[0], T = x->shape[1], S = ctx->shape[1];
  const int64_t inner = (int64_t)at->heads * at->dim_head;
  if (ctx->shape[2] != at->context_dim)
    return sdr_fail("attention: the context is %lld wide, the layer takes %d",
                    (long long)ctx->shape[2], at->context_dim);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor q, k, v, o;
  TRY(sdr_arena_tensor(a, &q, x->dtype, 3, (int64_t[]){B, T, inner}));
  TRY(sdr_arena_tensor(a, &k, x->dtype, 3, (int64_t[]){B, S, inner}));
  TRY(sdr_arena_tensor(a, &v, x->dtype, 3, (int64_t[]){B, S, inner}));
  TRY(sdr_arena_tensor(a, &o, x->dtype, 3, (int64_t[]){B, T, inner}));
  TRY(sdr_linear(be, &q, x, &at->q_w, bias_or_null(&at->q_b)));
  TRY(sdr_linear(be, &k, ctx, &at->k_w, bias_or_null(&at->k_b)));
  TRY(sdr_linear(be, &v, ctx, &at->v_w, bias_or_null(&at->v_b)));
  TRY(sdr_attention(be, &o, &q, &k, &v, at->heads, 1.0f / sqrtf((float)at->dim_head), 0));
  TRY(sdr_linear(be, out, &o, &at->out_w, &at->out_b));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}
