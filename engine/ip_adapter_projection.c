/* engine/ip_adapter_projection.c — the image projections of models/embeddings.py:
 * ImageProjection, IPAdapterFullImageProjection and IPAdapterPlusImageProjection (the
 * Resampler), over the backend ops. */
#include <math.h>

#include "engine/error.h" // sdr_fail
#include "engine/ip_adapter.h"

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

static const float LN_EPS = 1e-5f; /* nn.LayerNorm's default */

/* ImageProjection: linear to num_tokens * C, as (M, num_tokens, C), norm. */
static int plain(sdr_ip_adapter *ad, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x) {
  const int64_t M = x->shape[0], C = ad->cross_dim;
  sdr_tensor h, h3;
  TRY(sdr_arena_tensor(a, &h, ad->act, 2, (int64_t[]){M, ad->num_tokens * C}));
  TRY(sdr_linear(ad->be, &h, x, &ad->proj_w, &ad->proj_b));
  TRY(sdr_tensor_reshape(&h3, &h, 3, (int64_t[]){M, ad->num_tokens, C}));
  return sdr_layer_norm(ad->be, out, &h3, &ad->norm_w, &ad->norm_b, LN_EPS);
fail:
  return -1;
}

/* IPAdapterFullImageProjection: FeedForward(E -> E -> C, GELU), norm. */
static int full(sdr_ip_adapter *ad, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x) {
  const int64_t M = x->shape[0], T = x->shape[1], E = ad->embed_dim;
  sdr_tensor h, o;
  TRY(sdr_arena_tensor(a, &h, ad->act, 3, (int64_t[]){M, T, E}));
  TRY(sdr_arena_tensor(a, &o, ad->act, 3, (int64_t[]){M, T, ad->cross_dim}));
  TRY(sdr_linear(ad->be, &h, x, &ad->proj_w, &ad->proj_b));
  TRY(sdr_unary(ad->be, &h, &h, SDR_UNARY_GELU));
  TRY(sdr_linear(ad->be, &o, &h, &ad->proj2_w, &ad->proj2_b));
  return sdr_layer_norm(ad->be, out, &o, &ad->norm_w, &ad->norm_b, LN_EPS);
fail:
  return -1;
}

/* One Resampler layer on lat (M, Q, Hd), in place: the queries attend to the picture's
 * tokens and themselves (ln0(x) and ln1(lat) concatenated), then the feed-forward. */
static int resampler_layer(sdr_ip_adapter *ad, sdr_arena *a, sdr_tensor *lat, const sdr_tensor *x,
                           const sdr_ip_resampler_layer *l) {
  sdr_backend *be = ad->be;
  const int64_t M = x->shape[0], T = x->shape[1], Q = lat->shape[1], Hd = ad->hidden;
  const int64_t inner = (int64_t)ad->heads * 64;
  sdr_tensor xn, ln, both, q, k, v, o, h, f, kw, vw;
  TRY(sdr_arena_tensor(a, &xn, ad->act, 3, x->shape));
  TRY(sdr_arena_tensor(a, &ln, ad->act, 3, lat->shape));
  TRY(sdr_layer_norm(be, &xn, x, &l->ln0_w, &l->ln0_b, LN_EPS));
  TRY(sdr_layer_norm(be, &ln, lat, &l->ln1_w, &l->ln1_b, LN_EPS));
  TRY(sdr_arena_tensor(a, &both, ad->act, 3, (int64_t[]){M, T + Q, Hd}));
  TRY(sdr_concat(be, &both, &xn, &ln, 1));
  /* to_kv's rows: to_k's, then to_v's (the loader's chunk(2)) */
  TRY(sdr_tensor_narrow0(&kw, &l->kv_w, 0, inner));
  TRY(sdr_tensor_narrow0(&vw, &l->kv_w, inner, inner));
  TRY(sdr_arena_tensor(a, &q, ad->act, 3, (int64_t[]){M, Q, inner}));
  TRY(sdr_arena_tensor(a, &k, ad->act, 3, (int64_t[]){M, T + Q, inner}));
  TRY(sdr_arena_tensor(a, &v, ad->act, 3, (int64_t[]){M, T + Q, inner}));
  TRY(sdr_arena_tensor(a, &o, ad->act, 3, (int64_t[]){M, Q, inner}));
  TRY(sdr_linear(be, &q, &ln, &l->q_w, NULL));
  TRY(sdr_linear(be, &k, &both, &kw, NULL));
  TRY(sdr_linear(be, &v, &both, &vw, NULL));
  TRY(sdr_attention(be, &o, &q, &k, &v, ad->heads, 1.0f / 8.0f, 0)); /* dim_head 64 */
  TRY(sdr_arena_tensor(a, &h, ad->act, 3, lat->shape));
  TRY(sdr_linear(be, &h, &o, &l->out_w, NULL));
  TRY(sdr_binary(be, lat, &h, lat, SDR_BINARY_ADD));
  /* ff: LayerNorm, Linear(Hd, 4 Hd), GELU, Linear(4 Hd, Hd), plus the latents */
  TRY(sdr_layer_norm(be, &ln, lat, &l->ff_ln_w, &l->ff_ln_b, LN_EPS));
  TRY(sdr_arena_tensor(a, &f, ad->act, 3, (int64_t[]){M, Q, 4 * Hd}));
  TRY(sdr_linear(be, &f, &ln, &l->ff1_w, NULL));
  TRY(sdr_unary(be, &f, &f, SDR_UNARY_GELU));
  TRY(sdr_linear(be, &h, &f, &l->ff2_w, NULL));
  return sdr_binary(be, lat, &h, lat, SDR_BINARY_ADD);
fail:
  return -1;
}

/* IPAdapterPlusImageProjection: the learnt latents, repeated per picture, through the
 * layers over proj_in(x); then proj_out and norm_out. */
static int plus(sdr_ip_adapter *ad, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x) {
  sdr_backend *be = ad->be;
  const int64_t M = x->shape[0], T = x->shape[1], Q = ad->num_tokens, Hd = ad->hidden;
  sdr_tensor px, lat, l0, row, o;
  TRY(sdr_arena_tensor(a, &px, ad->act, 3, (int64_t[]){M, T, Hd}));
  TRY(sdr_linear(be, &px, x, &ad->proj_in_w, &ad->proj_in_b));
  TRY(sdr_arena_tensor(a, &lat, ad->act, 3, (int64_t[]){M, Q, Hd}));
  TRY(sdr_arena_as(a, &l0, &ad->latents, ad->act));
  for (int64_t m = 0; m < M; m++) {
    TRY(sdr_tensor_narrow0(&row, &lat, m, 1));
    TRY(sdr_affine(be, &row, &l0, 1.0f, 0.0f));
  }
  for (int i = 0; i < SDR_IP_PLUS_DEPTH; i++) {
    sdr_arena_mark mark = sdr_arena_get_mark(a);
    int rc = resampler_layer(ad, a, &lat, &px, &ad->layers[i]);
    sdr_arena_release(a, mark);
    TRY(rc);
  }
  TRY(sdr_arena_tensor(a, &o, ad->act, 3, (int64_t[]){M, Q, ad->cross_dim}));
  TRY(sdr_linear(be, &o, &lat, &ad->proj_out_w, &ad->proj_out_b));
  return sdr_layer_norm(be, out, &o, &ad->norm_w, &ad->norm_b, LN_EPS);
fail:
  return -1;
}

int sdr_ip_adapter_project(sdr_ip_adapter *ad, sdr_arena *a, sdr_tensor *out,
                           const sdr_tensor *in) {
  const int want = ad->kind == SDR_IP_PLAIN ? 2 : 3;
  if (in->ndim != want || in->shape[in->ndim - 1] != ad->embed_dim)
    return sdr_fail(want == 2 ? "ip_adapter: image embeddings must be (images, %d)"
                              : "ip_adapter: image hidden states must be (images, tokens, %d)",
                    ad->embed_dim);
  const int64_t M = in->shape[0], T = sdr_ip_adapter_tokens(ad, in->ndim == 3 ? in->shape[1] : 1);
  if (out->ndim != 3 || out->shape[0] != M || out->shape[1] != T ||
      out->shape[2] != ad->cross_dim || out->dtype != ad->act)
    return sdr_fail("ip_adapter: the projection's output must be (%lld, %lld, %d)", (long long)M,
                    (long long)T, ad->cross_dim);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor x;
  int rc = sdr_arena_as(a, &x, in, ad->act);
  if (rc == 0)
    rc = (ad->kind == SDR_IP_PLAIN ? plain : ad->kind == SDR_IP_FULL ? full : plus)(ad, a, out, &x);
  sdr_arena_release(a, mark);
  return rc;
}
