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
  const sdr_attn_context ctx = {.text = context};
  return sdr_attn_layer_forward_ctx(be, a, out, x, &ctx, at);
}

/* softmax(q k^T / sqrt(d)) v for k and v projected from ctx by k_w and v_w, into o. */
static int attend(sdr_backend *be, sdr_arena *a, sdr_tensor *o, const sdr_tensor *q,
                  const sdr_tensor *ctx, const sdr_tensor *k_w, const sdr_tensor *k_b,
                  const sdr_tensor *v_w, const sdr_tensor *v_b, const sdr_attn_layer *at) {
  const int64_t B = ctx->shape[0], S = ctx->shape[1], inner = q->shape[2];
  if (ctx->shape[2] != at->context_dim)
    return sdr_fail("attention: the context is %lld wide, the layer takes %d",
                    (long long)ctx->shape[2], at->context_dim);
  if (B != q->shape[0])
    return sdr_fail("attention: a context of %lld for a batch of %lld", (long long)B,
                    (long long)q->shape[0]);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor k, v;
  TRY(sdr_arena_tensor(a, &k, q->dtype, 3, (int64_t[]){B, S, inner}));
  TRY(sdr_arena_tensor(a, &v, q->dtype, 3, (int64_t[]){B, S, inner}));
  TRY(sdr_linear(be, &k, ctx, k_w, k_b));
  TRY(sdr_linear(be, &v, ctx, v_w, v_b));
  TRY(sdr_attention(be, o, q, &k, &v, at->heads, 1.0f / sqrtf((float)at->dim_head), 0));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_attn_layer_forward_ctx(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                               const sdr_attn_context *c, const sdr_attn_layer *at) {
  const sdr_tensor *ctx = c->text ? c->text : x;
  const int64_t B = x->shape[0], T = x->shape[1];
  const int64_t inner = (int64_t)at->heads * at->dim_head;
  const int nip = at->ip ? at->ip->n : 0;
  if (nip != c->nimage)
    return sdr_fail(nip ? "unet: IP-Adapters are loaded; each needs its image embeddings "
                          "(ip_adapter_image or ip_adapter_image_embeds), %d given"
                        : "unet: image embeddings given (%d) but no IP-Adapter is loaded",
                    c->nimage);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor q, o;
  TRY(sdr_arena_tensor(a, &q, x->dtype, 3, (int64_t[]){B, T, inner}));
  TRY(sdr_arena_tensor(a, &o, x->dtype, 3, (int64_t[]){B, T, inner}));
  TRY(sdr_linear(be, &q, x, &at->q_w, bias_or_null(&at->q_b)));
  TRY(attend(be, a, &o, &q, ctx, &at->k_w, bias_or_null(&at->k_b), &at->v_w, bias_or_null(&at->v_b),
             at));
  if (nip) {
    /* hidden_states + scale * attention(query, to_k_ip(image), to_v_ip(image)), per adapter */
    sdr_tensor o2, img;
    TRY(sdr_arena_tensor(a, &o2, x->dtype, 3, (int64_t[]){B, T, inner}));
    for (int i = 0; i < nip; i++) {
      sdr_arena_mark m2 = sdr_arena_get_mark(a);
      TRY(sdr_arena_as(a, &img, c->image[i], x->dtype));
      TRY(attend(be, a, &o2, &q, &img, at->ip->k_w[i], NULL, at->ip->v_w[i], NULL, at));
      TRY(sdr_affine(be, &o2, &o2, at->ip->scale[i], 0.0f));
      TRY(sdr_binary(be, &o, &o, &o2, SDR_BINARY_ADD));
      sdr_arena_release(a, m2);
    }
  }
  TRY(sdr_linear(be, out, &o, &at->out_w, &at->out_b));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}
