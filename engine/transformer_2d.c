/* engine/transformer_2d.c — Transformer2DModel and BasicTransformerBlock over the backend ops. */
#include "engine/transformer_2d.h"

#include <stdio.h>
#include <stdlib.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

static int bind_block(sdr_transformer_block *b, sdr_weights *w, const char *p, int D,
                      int context_dim, int heads, int dim_head, int F, int only_cross) {
  char sub[512];
  int rc = 0;
  rc |= sdr_weights_bindf(w, &b->norm1_w, 1, (int64_t[]){D}, "%s.norm1.weight", p);
  rc |= sdr_weights_bindf(w, &b->norm1_b, 1, (int64_t[]){D}, "%s.norm1.bias", p);
  rc |= sdr_weights_bindf(w, &b->norm2_w, 1, (int64_t[]){D}, "%s.norm2.weight", p);
  rc |= sdr_weights_bindf(w, &b->norm2_b, 1, (int64_t[]){D}, "%s.norm2.bias", p);
  rc |= sdr_weights_bindf(w, &b->norm3_w, 1, (int64_t[]){D}, "%s.norm3.weight", p);
  rc |= sdr_weights_bindf(w, &b->norm3_b, 1, (int64_t[]){D}, "%s.norm3.bias", p);
  if (snprintf(sub, sizeof sub, "%s.attn1", p) >= (int)sizeof sub)
    return sdr_fail("%s: weight name too long", p);
  rc |= sdr_attn_layer_bind(&b->attn1, w, sub, D, only_cross ? context_dim : D, heads, dim_head, 0);
  if (snprintf(sub, sizeof sub, "%s.attn2", p) >= (int)sizeof sub)
    return sdr_fail("%s: weight name too long", p);
  rc |= sdr_attn_layer_bind(&b->attn2, w, sub, D, context_dim, heads, dim_head, 0);
  rc |= sdr_weights_bindf(w, &b->ff_in_w, 2, (int64_t[]){2 * F, D}, "%s.ff.net.0.proj.weight", p);
  rc |= sdr_weights_bindf(w, &b->ff_in_b, 1, (int64_t[]){2 * F}, "%s.ff.net.0.proj.bias", p);
  rc |= sdr_weights_bindf(w, &b->ff_out_w, 2, (int64_t[]){D, F}, "%s.ff.net.2.weight", p);
  rc |= sdr_weights_bindf(w, &b->ff_out_b, 1, (int64_t[]){D}, "%s.ff.net.2.bias", p);
  return rc ? -1 : 0;
}

int sdr_transformer_2d_bind(sdr_transformer_2d *t, sdr_weights *w, const char *p, int channels,
                            int heads, int dim_head, int layers, int groups, int context_dim,
                            int linear_projection, int only_cross) {
  const int D = heads * dim_head;
  *t = (sdr_transformer_2d){.only_cross = only_cross,
                            .channels = channels,
                            .heads = heads,
                            .dim_head = dim_head,
                            .groups = groups,
                            .layers = layers,
                            .linear_projection = linear_projection,
                            .context_dim = context_dim,
                            .ff_inner = 4 * D};
  if (channels % groups)
    return sdr_fail("%s: %d channels do not split into %d groups", p, channels, groups);
  t->blocks = calloc((size_t)layers, sizeof *t->blocks);
  if (!t->blocks)
    return sdr_fail("out of memory");
  int rc = 0;
  rc |= sdr_weights_bindf(w, &t->norm_w, 1, (int64_t[]){channels}, "%s.norm.weight", p);
  rc |= sdr_weights_bindf(w, &t->norm_b, 1, (int64_t[]){channels}, "%s.norm.bias", p);
  if (linear_projection) {
    rc |= sdr_weights_bindf(w, &t->proj_in_w, 2, (int64_t[]){D, channels}, "%s.proj_in.weight", p);
    rc |=
        sdr_weights_bindf(w, &t->proj_out_w, 2, (int64_t[]){channels, D}, "%s.proj_out.weight", p);
  } else {
    rc |= sdr_weights_bindf(w, &t->proj_in_w, 4, (int64_t[]){D, channels, 1, 1},
                            "%s.proj_in.weight", p);
    rc |= sdr_weights_bindf(w, &t->proj_out_w, 4, (int64_t[]){channels, D, 1, 1},
                            "%s.proj_out.weight", p);
  }
  rc |= sdr_weights_bindf(w, &t->proj_in_b, 1, (int64_t[]){D}, "%s.proj_in.bias", p);
  rc |= sdr_weights_bindf(w, &t->proj_out_b, 1, (int64_t[]){channels}, "%s.proj_out.bias", p);
  for (int i = 0; i < layers; i++) {
    char sub[512];
    snprintf(sub, sizeof sub, "%s.transformer_blocks.%d", p, i);
    rc |=
        bind_block(&t->blocks[i], w, sub, D, context_dim, heads, dim_head, t->ff_inner, only_cross);
  }
  return rc ? -1 : 0;
}

void sdr_transformer_2d_free(sdr_transformer_2d *t) {
  free(t->blocks);
  t->blocks = NULL;
}

/* BasicTransformerBlock: h (B, N, D) updated in place. */
static int block_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *h,
                         const sdr_attn_context *context, const sdr_transformer_block *b, int F,
                         int only_cross) {
  const int64_t B = h->shape[0], N = h->shape[1], D = h->shape[2];
  const int64_t bnd[3] = {B, N, D};
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor n, o, ff, gated;
  TRY(sdr_arena_tensor(a, &n, h->dtype, 3, bnd));
  TRY(sdr_arena_tensor(a, &o, h->dtype, 3, bnd));
  TRY(sdr_layer_norm(be, &n, h, &b->norm1_w, &b->norm1_b, 1e-5f));
  if (only_cross) { /* BasicTransformerBlock gives attn1 the text alone */
    const sdr_attn_context text = {.text = context->text};
    TRY(sdr_attn_layer_forward_ctx(be, a, &o, &n, &text, &b->attn1));
  } else {
    TRY(sdr_attn_layer_forward(be, a, &o, &n, NULL, &b->attn1));
  }
  TRY(sdr_binary(be, h, h, &o, SDR_BINARY_ADD));
  TRY(sdr_layer_norm(be, &n, h, &b->norm2_w, &b->norm2_b, 1e-5f));
  TRY(sdr_attn_layer_forward_ctx(be, a, &o, &n, context, &b->attn2));
  TRY(sdr_binary(be, h, h, &o, SDR_BINARY_ADD));
  TRY(sdr_layer_norm(be, &n, h, &b->norm3_w, &b->norm3_b, 1e-5f));
  TRY(sdr_arena_tensor(a, &ff, h->dtype, 3, (int64_t[]){B, N, 2 * (int64_t)F}));
  TRY(sdr_arena_tensor(a, &gated, h->dtype, 3, (int64_t[]){B, N, F}));
  TRY(sdr_linear(be, &ff, &n, &b->ff_in_w, &b->ff_in_b));
  TRY(sdr_geglu(be, &gated, &ff));
  TRY(sdr_linear(be, &o, &gated, &b->ff_out_w, &b->ff_out_b));
  TRY(sdr_binary(be, h, h, &o, SDR_BINARY_ADD));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_transformer_2d_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                               const sdr_attn_context *context, const sdr_transformer_2d *t) {
  const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t D = (int64_t)t->heads * t->dim_head, N = H * W;
  const int to_tokens[4] = {0, 2, 3, 1}, to_map[4] = {0, 3, 1, 2};
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor n, map, tokens, tokens4, h;
  TRY(sdr_arena_tensor(a, &n, x->dtype, 4, x->shape));
  TRY(sdr_group_norm(be, &n, x, &t->norm_w, &t->norm_b, t->groups, 1e-6f, 0));
  TRY(sdr_arena_tensor(a, &h, x->dtype, 3, (int64_t[]){B, N, D}));
  TRY(sdr_tensor_reshape(&tokens4, &h, 4, (int64_t[]){B, H, W, D}));
  if (!t->linear_projection) {
    /* proj_in as a 1x1 conv on the map, then (B, D, H, W) -> (B, H*W, D) */
    TRY(sdr_arena_tensor(a, &map, x->dtype, 4, (int64_t[]){B, D, H, W}));
    TRY(sdr_conv2d(be, &map, &n, &t->proj_in_w, &t->proj_in_b, 1, 0));
    TRY(sdr_permute(be, &tokens4, &map, to_tokens));
  } else {
    /* (B, C, H, W) -> (B, H*W, C), then proj_in as a linear layer */
    TRY(sdr_arena_tensor(a, &tokens, x->dtype, 4, (int64_t[]){B, H, W, C}));
    TRY(sdr_permute(be, &tokens, &n, to_tokens));
    sdr_tensor flat;
    TRY(sdr_tensor_reshape(&flat, &tokens, 3, (int64_t[]){B, N, C}));
    TRY(sdr_linear(be, &h, &flat, &t->proj_in_w, &t->proj_in_b));
  }
  for (int i = 0; i < t->layers; i++)
    TRY(block_forward(be, a, &h, context, &t->blocks[i], t->ff_inner, t->only_cross));
  sdr_tensor back;
  TRY(sdr_arena_tensor(a, &back, x->dtype, 4, (int64_t[]){B, C, H, W}));
  if (!t->linear_projection) {
    TRY(sdr_arena_tensor(a, &map, x->dtype, 4, (int64_t[]){B, D, H, W}));
    TRY(sdr_permute(be, &map, &tokens4, to_map));
    TRY(sdr_conv2d(be, &back, &map, &t->proj_out_w, &t->proj_out_b, 1, 0));
  } else {
    sdr_tensor proj, proj4;
    TRY(sdr_arena_tensor(a, &proj, x->dtype, 3, (int64_t[]){B, N, C}));
    TRY(sdr_linear(be, &proj, &h, &t->proj_out_w, &t->proj_out_b));
    TRY(sdr_tensor_reshape(&proj4, &proj, 4, (int64_t[]){B, H, W, C}));
    TRY(sdr_permute(be, &back, &proj4, to_map));
  }
  TRY(sdr_binary(be, out, &back, x, SDR_BINARY_ADD));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}
