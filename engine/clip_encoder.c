/* engine/clip_encoder.c — transformers' CLIPEncoderLayer over the backend ops. */
#include "engine/clip_encoder.h"

#include <math.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

int sdr_clip_layer_bind(sdr_weights *w, sdr_clip_layer *l, const char *prefix, int i,
                        const sdr_clip_encoder_params *p) {
  const int64_t D = p->hidden_size, I = p->intermediate_size;
  struct {
    sdr_tensor *t;
    const char *name;
    int ndim;
    int64_t shape[2];
  } items[] = {
      {&l->ln1_w, "layer_norm1.weight", 1, {D}},
      {&l->ln1_b, "layer_norm1.bias", 1, {D}},
      {&l->q_w, "self_attn.q_proj.weight", 2, {D, D}},
      {&l->q_b, "self_attn.q_proj.bias", 1, {D}},
      {&l->k_w, "self_attn.k_proj.weight", 2, {D, D}},
      {&l->k_b, "self_attn.k_proj.bias", 1, {D}},
      {&l->v_w, "self_attn.v_proj.weight", 2, {D, D}},
      {&l->v_b, "self_attn.v_proj.bias", 1, {D}},
      {&l->o_w, "self_attn.out_proj.weight", 2, {D, D}},
      {&l->o_b, "self_attn.out_proj.bias", 1, {D}},
      {&l->ln2_w, "layer_norm2.weight", 1, {D}},
      {&l->ln2_b, "layer_norm2.bias", 1, {D}},
      {&l->fc1_w, "mlp.fc1.weight", 2, {I, D}},
      {&l->fc1_b, "mlp.fc1.bias", 1, {I}},
      {&l->fc2_w, "mlp.fc2.weight", 2, {D, I}},
      {&l->fc2_b, "mlp.fc2.bias", 1, {D}},
  };
  for (size_t k = 0; k < sizeof items / sizeof items[0]; k++)
    if (sdr_weights_bindf(w, items[k].t, items[k].ndim, items[k].shape, "%s.%d.%s", prefix, i,
                          items[k].name) != 0)
      return -1;
  return 0;
}

int sdr_clip_encoder_layer(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                           const sdr_clip_layer *l, const sdr_clip_encoder_params *p) {
  const int64_t B = x->shape[0], T = x->shape[1], D = p->hidden_size, I = p->intermediate_size;
  const int64_t btd[3] = {B, T, D};
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor h, q, k, v, att, o, r, f1, f1a;
  TRY(sdr_arena_tensor(a, &h, x->dtype, 3, btd));
  TRY(sdr_arena_tensor(a, &q, x->dtype, 3, btd));
  TRY(sdr_arena_tensor(a, &k, x->dtype, 3, btd));
  TRY(sdr_arena_tensor(a, &v, x->dtype, 3, btd));
  TRY(sdr_arena_tensor(a, &att, x->dtype, 3, btd));
  TRY(sdr_arena_tensor(a, &o, x->dtype, 3, btd));
  TRY(sdr_arena_tensor(a, &r, x->dtype, 3, btd));
  TRY(sdr_arena_tensor(a, &f1, x->dtype, 3, (int64_t[]){B, T, I}));
  TRY(sdr_arena_tensor(a, &f1a, x->dtype, 3, (int64_t[]){B, T, I}));

  /* self-attention block (CLIPAttention: q scaled by head_dim^-0.5) */
  TRY(sdr_layer_norm(be, &h, x, &l->ln1_w, &l->ln1_b, p->layer_norm_eps));
  TRY(sdr_linear(be, &q, &h, &l->q_w, &l->q_b));
  TRY(sdr_linear(be, &k, &h, &l->k_w, &l->k_b));
  TRY(sdr_linear(be, &v, &h, &l->v_w, &l->v_b));
  const float scale = 1.0f / sqrtf((float)(D / p->heads));
  TRY(sdr_attention(be, &att, &q, &k, &v, p->heads, scale, p->causal));
  TRY(sdr_linear(be, &o, &att, &l->o_w, &l->o_b));
  TRY(sdr_binary(be, &r, x, &o, SDR_BINARY_ADD));

  /* MLP block (CLIPMLP: fc1, quick_gelu or gelu, fc2) */
  TRY(sdr_layer_norm(be, &h, &r, &l->ln2_w, &l->ln2_b, p->layer_norm_eps));
  TRY(sdr_linear(be, &f1, &h, &l->fc1_w, &l->fc1_b));
  TRY(sdr_unary(be, &f1a, &f1, p->quick_gelu ? SDR_UNARY_QUICK_GELU : SDR_UNARY_GELU));
  TRY(sdr_linear(be, &o, &f1a, &l->fc2_w, &l->fc2_b));
  TRY(sdr_binary(be, out, &r, &o, SDR_BINARY_ADD));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_clip_ids(sdr_backend *be, sdr_arena *a, sdr_tensor *ids, int64_t n, int64_t step,
                 int64_t first) {
  int64_t *host = malloc((size_t)n * sizeof *host);
  if (!host)
    return sdr_fail("out of memory");
  for (int64_t i = 0; i < n; i++)
    host[i] = first + i * step;
  int rc = sdr_arena_tensor(a, ids, SDR_I64, 1, (int64_t[]){n});
  if (rc == 0)
    rc = sdr_upload(be, ids->data, host, (size_t)n * sizeof *host);
  free(host);
  return rc;
}
