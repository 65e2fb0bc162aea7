/* engine/resnet_block.c — ResnetBlock2D, Downsample2D, Upsample2D over the backend ops. */
#include "engine/resnet_block.h"

#include <math.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

int sdr_resnet_block_bind(sdr_resnet_block *r, sdr_weights *w, const char *p, int cin, int cout,
                          int temb_channels, int groups, float eps, float output_scale_factor) {
  *r = (sdr_resnet_block){.in_channels = cin,
                          .out_channels = cout,
                          .groups = groups,
                          .eps = eps,
                          .output_scale_factor = output_scale_factor};
  if (cin % groups || cout % groups)
    return sdr_fail("%s: %d and %d channels do not split into %d groups", p, cin, cout, groups);
  int rc = 0;
  rc |= sdr_weights_bindf(w, &r->norm1_w, 1, (int64_t[]){cin}, "%s.norm1.weight", p);
  rc |= sdr_weights_bindf(w, &r->norm1_b, 1, (int64_t[]){cin}, "%s.norm1.bias", p);
  rc |= sdr_weights_bindf(w, &r->conv1_w, 4, (int64_t[]){cout, cin, 3, 3}, "%s.conv1.weight", p);
  rc |= sdr_weights_bindf(w, &r->conv1_b, 1, (int64_t[]){cout}, "%s.conv1.bias", p);
  if (temb_channels > 0) {
    rc |= sdr_weights_bindf(w, &r->temb_w, 2, (int64_t[]){cout, temb_channels},
                            "%s.time_emb_proj.weight", p);
    rc |= sdr_weights_bindf(w, &r->temb_b, 1, (int64_t[]){cout}, "%s.time_emb_proj.bias", p);
  }
  rc |= sdr_weights_bindf(w, &r->norm2_w, 1, (int64_t[]){cout}, "%s.norm2.weight", p);
  rc |= sdr_weights_bindf(w, &r->norm2_b, 1, (int64_t[]){cout}, "%s.norm2.bias", p);
  rc |= sdr_weights_bindf(w, &r->conv2_w, 4, (int64_t[]){cout, cout, 3, 3}, "%s.conv2.weight", p);
  rc |= sdr_weights_bindf(w, &r->conv2_b, 1, (int64_t[]){cout}, "%s.conv2.bias", p);
  if (cin != cout) {
    rc |= sdr_weights_bindf(w, &r->short_w, 4, (int64_t[]){cout, cin, 1, 1},
                            "%s.conv_shortcut.weight", p);
    rc |= sdr_weights_bindf(w, &r->short_b, 1, (int64_t[]){cout}, "%s.conv_shortcut.bias", p);
  }
  return rc ? -1 : 0;
}

/* A tensor of shape in spent's memory when it fits there, else a new one from the arena. */
static int reuse_or_new(sdr_arena *a, sdr_tensor *out, const sdr_tensor *spent,
                        const int64_t shape[4]) {
  const int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
  sdr_tensor flat, part;
  if (n > sdr_tensor_numel(spent))
    return sdr_arena_tensor(a, out, spent->dtype, 4, shape);
  if (sdr_tensor_reshape(&flat, spent, 1, (int64_t[]){sdr_tensor_numel(spent)}) != 0 ||
      sdr_tensor_narrow0(&part, &flat, 0, n) != 0)
    return -1;
  return sdr_tensor_reshape(out, &part, 4, shape);
}

int sdr_resnet_block_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                             const sdr_tensor *temb_act, const sdr_resnet_block *r) {
  const int64_t B = x->shape[0], H = x->shape[2], W = x->shape[3], Co = r->out_channels;
  const int64_t in_shape[4] = {B, r->in_channels, H, W}, out_shape[4] = {B, Co, H, W};
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor h, h2, t, shortcut;
  /* norm1 -> silu -> conv1 */
  TRY(sdr_arena_tensor(a, &h, x->dtype, 4, in_shape));
  TRY(sdr_group_norm(be, &h, x, &r->norm1_w, &r->norm1_b, r->groups, r->eps, 1));
  TRY(sdr_arena_tensor(a, &h2, x->dtype, 4, out_shape));
  TRY(sdr_conv2d(be, &h2, &h, &r->conv1_w, &r->conv1_b, 1, 1));
  /* + time_emb_proj(silu(emb))[:, :, None, None] */
  if (r->temb_w.data && temb_act) {
    sdr_tensor proj, proj4;
    TRY(sdr_arena_tensor(a, &proj, x->dtype, 2, (int64_t[]){B, Co}));
    TRY(sdr_linear(be, &proj, temb_act, &r->temb_w, &r->temb_b));
    TRY(sdr_tensor_reshape(&proj4, &proj, 4, (int64_t[]){B, Co, 1, 1}));
    TRY(sdr_binary(be, &h2, &h2, &proj4, SDR_BINARY_ADD));
  }
  /* norm2 -> silu -> (dropout: none at inference) -> conv2; conv1's input is spent, so the
   * normed tensor and then the shortcut take its memory where it is large enough (at a VAE's
   * full size that is a gigabyte less alive at once) */
  TRY(reuse_or_new(a, &t, &h, out_shape));
  TRY(sdr_group_norm(be, &t, &h2, &r->norm2_w, &r->norm2_b, r->groups, r->eps, 1));
  TRY(sdr_conv2d(be, &h2, &t, &r->conv2_w, &r->conv2_b, 1, 1));
  /* (shortcut(x) + h) / output_scale_factor */
  const sdr_tensor *sc = x;
  if (r->short_w.data) {
    TRY(reuse_or_new(a, &shortcut, &h, out_shape));
    TRY(sdr_conv2d(be, &shortcut, x, &r->short_w, &r->short_b, 1, 0));
    sc = &shortcut;
  }
  TRY(sdr_binary(be, out, sc, &h2, SDR_BINARY_ADD));
  if (r->output_scale_factor != 1.0f)
    TRY(sdr_affine(be, out, out, 1.0f / r->output_scale_factor, 0.0f));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_downsample_bind(sdr_downsample *d, sdr_weights *w, const char *p, int channels,
                        int padding) {
  *d = (sdr_downsample){.channels = channels, .padding = padding};
  int rc = sdr_weights_bindf(w, &d->conv_w, 4, (int64_t[]){channels, channels, 3, 3},
                             "%s.conv.weight", p);
  rc |= sdr_weights_bindf(w, &d->conv_b, 1, (int64_t[]){channels}, "%s.conv.bias", p);
  return rc ? -1 : 0;
}

int64_t sdr_downsample_size(const sdr_downsample *d, int64_t in) {
  /* padding 1: (in + 2 - 3) / 2 + 1; padding 0 after the (0, 1) pad: (in + 1 - 3) / 2 + 1 */
  return d->padding ? (in - 1) / 2 + 1 : (in - 2) / 2 + 1;
}

int sdr_downsample_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                           const sdr_downsample *d) {
  if (d->padding)
    return sdr_conv2d(be, out, x, &d->conv_w, &d->conv_b, 2, d->padding);
  /* Downsample2D with padding 0 pads one zero column and row (right, bottom):
   * F.pad(x, (0, 1, 0, 1)). */
  const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor padded;
  TRY(sdr_arena_tensor(a, &padded, x->dtype, 4, (int64_t[]){B, C, H + 1, W + 1}));
  TRY(sdr_pad2d(be, &padded, x, 0, 1, 0, 1));
  TRY(sdr_conv2d(be, out, &padded, &d->conv_w, &d->conv_b, 2, 0));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

int sdr_upsample_bind(sdr_upsample *u, sdr_weights *w, const char *p, int channels) {
  *u = (sdr_upsample){.channels = channels};
  int rc = sdr_weights_bindf(w, &u->conv_w, 4, (int64_t[]){channels, channels, 3, 3},
                             "%s.conv.weight", p);
  rc |= sdr_weights_bindf(w, &u->conv_b, 1, (int64_t[]){channels}, "%s.conv.bias", p);
  return rc ? -1 : 0;
}

/* F.interpolate(size=...)'s nearest source index when the size is not double the input's:
 * floor(i * (float)in / out) in float32, at most in - 1 (torch's nearest_idx). */
static int64_t nearest_source(int64_t i, int64_t in, int64_t out) {
  const float scale = (float)in / (float)out;
  const int64_t s = (int64_t)floorf((float)i * scale);
  return s < in - 1 ? s : in - 1;
}

/* x (B, C, H, W) to up (B, C, OH, OW) by nearest neighbour at any size: the rows, then the
 * columns, each moved to the front and copied one slice at a time. Only UNets whose
 * downsampling drops a row (downsample_padding 0) with odd sizes come here. */
static int resize_nearest(sdr_backend *be, sdr_arena *a, sdr_tensor *up, const sdr_tensor *x) {
  const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t OH = up->shape[2], OW = up->shape[3];
  sdr_tensor t, rows, u, cols, src, dst;
  TRY(sdr_arena_tensor(a, &t, x->dtype, 4, (int64_t[]){H, B, C, W}));
  TRY(sdr_permute(be, &t, x, (const int[]){2, 0, 1, 3}));
  TRY(sdr_arena_tensor(a, &rows, x->dtype, 4, (int64_t[]){OH, B, C, W}));
  for (int64_t y = 0; y < OH; y++) {
    TRY(sdr_tensor_narrow0(&src, &t, nearest_source(y, H, OH), 1));
    TRY(sdr_tensor_narrow0(&dst, &rows, y, 1));
    TRY(sdr_cast(be, &dst, &src));
  }
  TRY(sdr_arena_tensor(a, &u, x->dtype, 4, (int64_t[]){W, B, C, OH}));
  TRY(sdr_permute(be, &u, &rows, (const int[]){3, 1, 2, 0}));
  TRY(sdr_arena_tensor(a, &cols, x->dtype, 4, (int64_t[]){OW, B, C, OH}));
  for (int64_t c = 0; c < OW; c++) {
    TRY(sdr_tensor_narrow0(&src, &u, nearest_source(c, W, OW), 1));
    TRY(sdr_tensor_narrow0(&dst, &cols, c, 1));
    TRY(sdr_cast(be, &dst, &src));
  }
  TRY(sdr_permute(be, up, &cols, (const int[]){1, 2, 3, 0}));
  return 0;
fail:
  return -1;
}

int sdr_upsample_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                         const sdr_upsample *u) {
  const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const int64_t OH = out->ndim == 4 ? out->shape[2] : 0, OW = out->ndim == 4 ? out->shape[3] : 0;
  if (OH < 1 || OW < 1 || OH > 4 * H + 4 || OW > 4 * W + 4)
    return sdr_fail("upsample: (%lld, %lld) from (%lld, %lld)", (long long)OH, (long long)OW,
                    (long long)H, (long long)W);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor up;
  if ((OH != 2 * H && OH != 2 * H - 1) || (OW != 2 * W && OW != 2 * W - 1)) {
    TRY(sdr_arena_tensor(a, &up, x->dtype, 4, (int64_t[]){B, C, OH, OW}));
    TRY(resize_nearest(be, a, &up, x));
    TRY(sdr_conv2d(be, out, &up, &u->conv_w, &u->conv_b, 1, 1));
    sdr_arena_release(a, mark);
    return 0;
  }
  TRY(sdr_arena_tensor(a, &up, x->dtype, 4, (int64_t[]){B, C, 2 * H, 2 * W}));
  TRY(sdr_upsample_nearest2x(be, &up, x));
  if (OH != 2 * H || OW != 2 * W) {
    /* nearest to (2H - 1) rows is row y <- y / 2, as for 2H: keep the first OH rows and
     * OW columns, moving each cut dimension to the front to narrow it */
    sdr_tensor t, cut, back;
    TRY(sdr_arena_tensor(a, &t, x->dtype, 4, (int64_t[]){2 * H, B, C, 2 * W}));
    TRY(sdr_permute(be, &t, &up, (const int[]){2, 0, 1, 3}));
    TRY(sdr_tensor_narrow0(&cut, &t, 0, OH));
    TRY(sdr_arena_tensor(a, &back, x->dtype, 4, (int64_t[]){2 * W, B, C, OH}));
    TRY(sdr_permute(be, &back, &cut, (const int[]){3, 1, 2, 0}));
    TRY(sdr_tensor_narrow0(&cut, &back, 0, OW));
    TRY(sdr_arena_tensor(a, &up, x->dtype, 4, (int64_t[]){B, C, OH, OW}));
    TRY(sdr_permute(be, &up, &cut, (const int[]){1, 2, 3, 0}));
  }
  TRY(sdr_conv2d(be, out, &up, &u->conv_w, &u->conv_b, 1, 1));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}
