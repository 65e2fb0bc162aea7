/* engine/vae_tiling.c — AutoencoderKL's tiled_encode and tiled_decode (diffusers 0.27.2).
 *
 * diffusers computes every tile, then walks them in row order: each tile is
 * blended in place with the (already blended) tile above it (blend_v), then
 * with the one on its left (blend_h), and its first row_limit rows and
 * columns are kept; the kept parts are joined with torch.cat. Blending only
 * looks up and left, so the same result comes from coding the tiles in that
 * order and keeping two rows of them: the one above and the current one.
 */
#include "engine/vae_tiling.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"     // sdr_fail
#include "engine/interrupt.h" // sdr_interrupt_check

/* blend_v and blend_h add two products, each rounded, as torch computes
 * a * w1 + b * w2; a fused multiply-add would round once. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

/* AutoencoderKL.__init__: tile_overlap_factor. */
static const double TILE_OVERLAP_FACTOR = 0.25;

int sdr_vae_tile_sample_size(const sdr_vae *v) { return v->cfg.sample_size; }

int sdr_vae_tile_latent_size(const sdr_vae *v) {
  /* int(sample_size / (2 ** (len(block_out_channels) - 1))) */
  return (int)((double)v->cfg.sample_size / (double)sdr_vae_scale_factor(v));
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- sizes --------------------------------------------------------------------- */

/* One tiled call: tile and overlap in the input's units, blend and row_limit in the output's. */
typedef struct tiling {
  const char *what; /* "vae.decode" or "vae.encode", for messages */
  int decode;       /* 1: a tile of n latents gives n*f pixels; 0: n pixels give n/f latents */
  int f;
  int64_t tile;      /* tile_latent_min_size (decode) or tile_sample_min_size (encode) */
  int64_t overlap;   /* the step between tiles: overlap_size */
  int64_t blend;     /* blend_extent */
  int64_t row_limit; /* rows and columns kept of each tile */
} tiling;

static int64_t tile_out_side(const tiling *t, int64_t n) { return t->decode ? n * t->f : n / t->f; }

/* The result's side along an axis of n input units: the kept parts of the
 * tiles at 0, overlap, 2*overlap, ... < n, joined. -1 when encoding would cut a
 * tile whose side is not a multiple of f. */
static int64_t joined_side(const tiling *t, int64_t n) {
  int64_t side = 0;
  for (int64_t i = 0; i < n; i += t->overlap) {
    const int64_t len = min64(t->tile, n - i);
    if (!t->decode && len % t->f)
      return -1;
    side += min64(t->row_limit, tile_out_side(t, len));
  }
  return side;
}

/* ---- blending on the host ---------------------------------------------------- */

/* A coded tile on the host: (B*C, h, w) float32. */
typedef struct host_tile {
  float *data;
  int64_t h, w;
} host_tile;

/* blend_v: b's first rows fade in from a's last rows; b changed in place, as diffusers does.
 * a and b are tiles of one column, so equally wide. */
static void blend_v(const host_tile *a, host_tile *b, int64_t planes, int64_t extent) {
  const int64_t e = min64(min64(a->h, b->h), extent), w = b->w;
  for (int64_t y = 0; y < e; y++) {
    /* a * (1 - y / blend_extent) + b * (y / blend_extent): Python doubles, then float32 */
    const float wa = (float)(1.0 - (double)y / (double)e), wb = (float)((double)y / (double)e);
    for (int64_t p = 0; p < planes; p++) {
      const float *ra = a->data + (p * a->h + a->h - e + y) * w;
      float *rb = b->data + (p * b->h + y) * w;
      for (int64_t x = 0; x < w; x++)
        rb[x] = ra[x] * wa + rb[x] * wb;
    }
  }
}

/* blend_h: b's first columns fade in from a's last columns; a and b are tiles of one row. */
static void blend_h(const host_tile *a, host_tile *b, int64_t planes, int64_t extent) {
  const int64_t e = min64(min64(a->w, b->w), extent), h = b->h;
  for (int64_t x = 0; x < e; x++) {
    const float wa = (float)(1.0 - (double)x / (double)e), wb = (float)((double)x / (double)e);
    for (int64_t p = 0; p < planes; p++)
      for (int64_t y = 0; y < h; y++) {
        const float *ra = a->data + (p * h + y) * a->w;
        float *rb = b->data + (p * h + y) * b->w;
        rb[x] = ra[a->w - e + x] * wa + rb[x] * wb;
      }
  }
}

/* ---- one tile ------------------------------------------------------------------ */

/* in[:, :, y:y+th, x:x+tw] (host, (planes, H, W)) through the encoder or
 * decoder on the backend, into dst on the host. */
static int code_tile(sdr_vae *v, sdr_arena *a, const tiling *t, const float *in,
                     const int64_t in_shape[4], int64_t y, int64_t x, int64_t th, int64_t tw,
                     float *cut, int64_t cout, host_tile *dst) {
  const int64_t B = in_shape[0], C = in_shape[1], H = in_shape[2], W = in_shape[3];
  for (int64_t p = 0; p < B * C; p++)
    for (int64_t r = 0; r < th; r++)
      memcpy(cut + (p * th + r) * tw, in + (p * H + y + r) * W + x, (size_t)tw * sizeof *cut);
  dst->h = tile_out_side(t, th);
  dst->w = tile_out_side(t, tw);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor tin, tout;
  TRY(sdr_arena_tensor(a, &tin, SDR_F32, 4, (int64_t[]){B, C, th, tw}));
  TRY(sdr_arena_tensor(a, &tout, SDR_F32, 4, (int64_t[]){B, cout, dst->h, dst->w}));
  TRY(sdr_upload(v->be, tin.data, cut, sdr_tensor_nbytes(&tin)));
  /* decode: self.post_quant_conv(tile) then self.decoder; encode: self.encoder then
   * self.quant_conv. sdr_vae_decode/encode do both halves. */
  if (t->decode)
    TRY(sdr_vae_decode(v, a, &tout, &tin));
  else
    TRY(sdr_vae_encode(v, a, &tout, &tin));
  TRY(sdr_download(v->be, dst->data, tout.data, sdr_tensor_nbytes(&tout)));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

/* tile[:, :, :kh, :kw] into out at (y0, x0): the part of a tile torch.cat joins. */
static void keep(float *out, const int64_t out_shape[4], int64_t y0, int64_t x0,
                 const host_tile *tl, int64_t kh, int64_t kw) {
  const int64_t planes = out_shape[0] * out_shape[1], OH = out_shape[2], OW = out_shape[3];
  for (int64_t p = 0; p < planes; p++)
    for (int64_t r = 0; r < kh; r++)
      memcpy(out + (p * OH + y0 + r) * OW + x0, tl->data + (p * tl->h + r) * tl->w,
             (size_t)kw * sizeof *out);
}

/* ---- the tiled call ------------------------------------------------------------ */

/* tiled_decode / tiled_encode: in (B, C, H, W) -> out (B, cout, OH, OW), both on the backend. */
static int run_tiled(sdr_vae *v, sdr_arena *a, sdr_tensor *out, const sdr_tensor *in,
                     const tiling *t, int64_t cout) {
  const int64_t B = in->shape[0], H = in->shape[2], W = in->shape[3];
  if (t->overlap < 1 || t->row_limit < 1)
    return sdr_fail("%s: sample_size %d is too small to tile", t->what, v->cfg.sample_size);
  const int64_t OH = joined_side(t, H), OW = joined_side(t, W);
  if (OH < 0 || OW < 0)
    return sdr_fail("%s: tiles of %lld pixels every %lld cut this %lldx%lld image into sides "
                    "that are not multiples of %d",
                    t->what, (long long)t->tile, (long long)t->overlap, (long long)W, (long long)H,
                    t->f);
  const int64_t want[4] = {B, cout, OH, OW};
  if (in->dtype != SDR_F32 || out->dtype != SDR_F32 || out->ndim != 4 ||
      memcmp(out->shape, want, sizeof want) != 0) {
    char buf[64];
    return sdr_fail("%s: tiling gives float32 (%lld, %lld, %lld, %lld); the output is %s %s",
                    t->what, (long long)B, (long long)cout, (long long)OH, (long long)OW,
                    sdr_dtype_name(out->dtype), sdr_shape_str(out, buf, sizeof buf));
  }
  const int64_t ncols = (W + t->overlap - 1) / t->overlap, T = tile_out_side(t, t->tile);
  const size_t per_tile = (size_t)(B * cout * T * T);
  float *host_in = malloc(sdr_tensor_nbytes(in));
  float *host_out = malloc(sdr_tensor_nbytes(out));
  float *cut = malloc((size_t)(B * in->shape[1] * t->tile * t->tile) * sizeof *cut);
  float *store = malloc(2 * (size_t)ncols * per_tile * sizeof *store);
  host_tile *rows = calloc(2 * (size_t)ncols, sizeof *rows);
  int rc = -1;
  if (!host_in || !host_out || !cut || !store || !rows) {
    sdr_fail("out of memory");
    goto fail;
  }
  for (int64_t c = 0; c < 2 * ncols; c++)
    rows[c].data = store + (size_t)c * per_tile;
  host_tile *above = rows, *cur = rows + ncols;
  TRY(sdr_download(v->be, host_in, in->data, sdr_tensor_nbytes(in)));
  int64_t y0 = 0;
  for (int64_t i = 0; i < H; i += t->overlap) {
    const int64_t th = min64(t->tile, H - i);
    int64_t x0 = 0, c = 0;
    for (int64_t j = 0; j < W; j += t->overlap, c++) {
      host_tile *tl = &cur[c];
      TRY(code_tile(v, a, t, host_in, in->shape, i, j, th, min64(t->tile, W - j), cut, cout, tl));
      if (i > 0)
        blend_v(&above[c], tl, B * cout, t->blend);
      if (c > 0)
        blend_h(&cur[c - 1], tl, B * cout, t->blend);
      const int64_t kw = min64(t->row_limit, tl->w);
      keep(host_out, want, y0, x0, tl, min64(t->row_limit, tl->h), kw);
      x0 += kw;
      if (sdr_interrupt_check() != 0)
        goto fail;
    }
    y0 += min64(t->row_limit, cur[0].h);
    host_tile *swap = above;
    above = cur;
    cur = swap;
  }
  TRY(sdr_upload(v->be, out->data, host_out, sdr_tensor_nbytes(out)));
  rc = 0;
fail:
  free(host_in);
  free(host_out);
  free(cut);
  free(store);
  free(rows);
  return rc;
}

/* ---- AutoencoderTiny's tiling ------------------------------------------------- */

/* AutoencoderTiny.__init__: tile_sample_min_size, tile_overlap_factor. */
enum { TINY_TILE_SAMPLE = 512 };
static const double TINY_OVERLAP_FACTOR = 0.125;

/* _tiled_decode and _tiled_encode: tiles of 512 pixels (64 latents) every 448 (56), whatever the
 * input's size; each written over what the tiles before it left, through a mask that rises from
 * 0 to 1 over its first 64 pixels (8 latents) below and right of the first row and column:
 * out = mask * tile + (1 - mask) * out, in float32 from zeros. */
static int tiny_tiled(sdr_vae *v, sdr_arena *a, sdr_tensor *out, const sdr_tensor *in, int decode) {
  const int f = sdr_vae_scale_factor(v);
  const int64_t B = in->shape[0], H = in->shape[2], W = in->shape[3];
  tiling t = {.what = decode ? "vae.decode" : "vae.encode", .decode = decode, .f = f};
  t.tile = decode ? TINY_TILE_SAMPLE / f : TINY_TILE_SAMPLE;
  const int64_t blend = (int64_t)((double)t.tile * TINY_OVERLAP_FACTOR);
  const int64_t step = t.tile - blend;
  /* the masks: arange(tile * sf) / (blend * sf - 1) and arange(tile / sf) / (blend / sf - 1) */
  const float den = decode ? (float)(blend * f - 1) : (float)((double)blend / f - 1.0);
  const int64_t cout = decode ? v->cfg.out_channels : v->cfg.latent_channels;
  const int64_t OH = tile_out_side(&t, H), OW = tile_out_side(&t, W), T = tile_out_side(&t, t.tile);
  const int64_t want[4] = {B, cout, OH, OW};
  if (step < 1 || den <= 0)
    return sdr_fail("%s: the VAE's factor %d leaves tiles too small to blend", t.what, f);
  if (!decode && (H % f || W % f))
    return sdr_fail("vae.encode: the image is %lldx%lld; its sides must be multiples of %d",
                    (long long)W, (long long)H, f);
  if (in->dtype != SDR_F32 || out->dtype != SDR_F32 || out->ndim != 4 ||
      memcmp(out->shape, want, sizeof want) != 0) {
    char buf[64];
    return sdr_fail("%s: tiling gives float32 (%lld, %lld, %lld, %lld); the output is %s %s",
                    t.what, (long long)B, (long long)cout, (long long)OH, (long long)OW,
                    sdr_dtype_name(out->dtype), sdr_shape_str(out, buf, sizeof buf));
  }
  float *host_in = malloc(sdr_tensor_nbytes(in));
  float *host_out = calloc((size_t)(B * cout * OH * OW), sizeof *host_out);
  float *cut = malloc((size_t)(B * in->shape[1] * t.tile * t.tile) * sizeof *cut);
  float *store = malloc((size_t)(B * cout * T * T) * sizeof *store);
  int rc = -1;
  if (!host_in || !host_out || !cut || !store) {
    sdr_fail("out of memory");
    goto fail;
  }
  TRY(sdr_download(v->be, host_in, in->data, sdr_tensor_nbytes(in)));
  for (int64_t i = 0; i < H; i += step)
    for (int64_t j = 0; j < W; j += step) {
      host_tile tl = {.data = store};
      TRY(code_tile(v, a, &t, host_in, in->shape, i, j, min64(t.tile, H - i), min64(t.tile, W - j),
                    cut, cout, &tl));
      const int64_t y0 = decode ? i * f : i / f, x0 = decode ? j * f : j / f;
      for (int64_t y = 0; y < tl.h; y++) {
        float mi = i == 0 ? 1.0f : (float)y / den;
        mi = mi > 1.0f ? 1.0f : mi;
        for (int64_t x = 0; x < tl.w; x++) {
          float mj = j == 0 ? 1.0f : (float)x / den;
          mj = mj > 1.0f ? 1.0f : mj;
          const float m = mi * mj, rest = 1.0f - m;
          for (int64_t p = 0; p < B * cout; p++) {
            float *o = host_out + (p * OH + y0 + y) * OW + x0 + x;
            const float a_ = m * tl.data[(p * tl.h + y) * tl.w + x], b_ = rest * *o;
            *o = a_ + b_;
          }
        }
      }
      if (sdr_interrupt_check() != 0)
        goto fail;
    }
  TRY(sdr_upload(v->be, out->data, host_out, sdr_tensor_nbytes(out)));
  rc = 0;
fail:
  free(host_in);
  free(host_out);
  free(cut);
  free(store);
  return rc;
}

/* ---- the entry points ---------------------------------------------------------- */

int sdr_vae_decode_tiled(sdr_vae *v, sdr_arena *a, sdr_tensor *image, const sdr_tensor *z) {
  if (v->cfg.tiny && z->ndim == 4 && z->shape[1] == v->cfg.latent_channels)
    return tiny_tiled(v, a, image, z, 1);
  const int ts = sdr_vae_tile_sample_size(v), tl = sdr_vae_tile_latent_size(v);
  /* _decode: tiled only when z is larger than a tile (bad shapes: sdr_vae_decode says why) */
  if (z->ndim != 4 || z->shape[1] != v->cfg.latent_channels ||
      (z->shape[2] <= tl && z->shape[3] <= tl))
    return sdr_vae_decode(v, a, image, z);
  tiling t = {.what = "vae.decode", .decode = 1, .f = sdr_vae_scale_factor(v), .tile = tl};
  t.overlap = (int64_t)((double)tl * (1.0 - TILE_OVERLAP_FACTOR));
  t.blend = (int64_t)((double)ts * TILE_OVERLAP_FACTOR);
  t.row_limit = ts - t.blend;
  return run_tiled(v, a, image, z, &t, v->cfg.out_channels);
}

int sdr_vae_encode_tiled(sdr_vae *v, sdr_arena *a, sdr_tensor *moments, const sdr_tensor *x) {
  if (v->cfg.tiny && x->ndim == 4 && x->shape[1] == v->cfg.in_channels)
    return tiny_tiled(v, a, moments, x, 0);
  const int ts = sdr_vae_tile_sample_size(v), tl = sdr_vae_tile_latent_size(v);
  const int f = sdr_vae_scale_factor(v);
  /* encode: tiled only when x is larger than a tile */
  if (x->ndim != 4 || x->shape[1] != v->cfg.in_channels || x->shape[2] % f || x->shape[3] % f ||
      (x->shape[2] <= ts && x->shape[3] <= ts))
    return sdr_vae_encode(v, a, moments, x);
  tiling t = {.what = "vae.encode", .decode = 0, .f = f, .tile = ts};
  t.overlap = (int64_t)((double)ts * (1.0 - TILE_OVERLAP_FACTOR));
  t.blend = (int64_t)((double)tl * TILE_OVERLAP_FACTOR);
  t.row_limit = tl - t.blend;
  return run_tiled(v, a, moments, x, &t, 2 * (int64_t)v->cfg.latent_channels);
}
