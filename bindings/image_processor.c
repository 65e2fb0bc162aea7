/* bindings/image_processor.c — diffusers' VaeImageProcessor (image_processor.py):
 * VaeImageProcessor{vae_scale_factor = 8, ...}, pipe.image_processor, and its two
 * methods, preprocess (pictures or a tensor to the VAE's (B, C, H, W) in [-1, 1]) and
 * postprocess (the VAE's output to pictures, a (B, H, W, C) array or a tensor).
 *
 * Pictures: each resized with Lanczos to the first's size floored to a multiple of
 * vae_scale_factor (or to height and width, floored likewise), then converted to RGB
 * or L when the config says so, their channels kept otherwise (an RGBA picture gives
 * four, as diffusers' numpy stack does), /255, then 2x - 1. Tensors: (B, C, H, W) or
 * (C, H, W), four channels returned as they are (latents), else resized by nearest
 * neighbour and mapped to [-1, 1] unless already below 0. numpy arrays are tensors
 * here.
 */
#include "bindings/padding_mask_crop.h" // lsdr_proc_get_crop_region, lsdr_read_crop_coords
#include "engine/mask_crop.h"           // sdr_image_resize_fill, sdr_image_resize_cover
#include "bindings/image_processor.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/image.h" // lsdr_to_image, lsdr_push_image_slot
#include "bindings/lsdr.h"
#include "bindings/model_common.h"    // lsdr_model_metatable, lsdr_set_*
#include "bindings/tensor_internal.h" // lsdr_tensor_host_values, lsdr_push_from_host
#include "engine/error.h"             // sdr_last_error
#include "engine/image.h"             // sdr_image_resize, sdr_image_convert
#include "engine/image_processor.h"   // sdr_pixels_preprocess, sdr_pixels_resize_nearest

#define LSDR_IMAGE_PROCESSOR "VaeImageProcessor"

typedef struct lsdr_image_processor {
  int do_resize, vae_scale_factor, do_normalize, do_convert_rgb, do_convert_grayscale, do_binarize;
} lsdr_image_processor;

void lsdr_push_image_processor(lua_State *L, int vae_scale_factor) {
  lsdr_image_processor *p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = (lsdr_image_processor){1, vae_scale_factor, 1, 0, 0, 0};
  luaL_setmetatable(L, LSDR_IMAGE_PROCESSOR);
}

void lsdr_push_mask_processor(lua_State *L, int vae_scale_factor) {
  lsdr_image_processor *p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = (lsdr_image_processor){1, vae_scale_factor, 0, 0, 1, 1};
  luaL_setmetatable(L, LSDR_IMAGE_PROCESSOR);
}

void lsdr_push_control_image_processor(lua_State *L, int vae_scale_factor) {
  lsdr_image_processor *p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = (lsdr_image_processor){1, vae_scale_factor, 0, 1, 0, 0};
  luaL_setmetatable(L, LSDR_IMAGE_PROCESSOR);
}

/* binarize: a mask's values to 0 below 0.5, else 1. */
static void binarize(double *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    x[i] = x[i] < 0.5 ? 0.0 : 1.0;
}

static lsdr_image_processor *check_proc(lua_State *L) {
  return luaL_checkudata(L, 1, LSDR_IMAGE_PROCESSOR);
}

/* ---- preprocess ---------------------------------------------------------------------- */

/* Scratch that Lua frees, even when an error unwinds the call. */
static void *scratch(lua_State *L, size_t bytes) {
  return lua_newuserdatauv(L, bytes ? bytes : 1, 0);
}

int lsdr_read_images(lua_State *L, int idx, sdr_image ***imgs, int *n) {
  sdr_image *one = lsdr_to_image(L, idx);
  if (one || !lua_istable(L, idx)) {
    *n = one ? 1 : 0;
    if (one) {
      *imgs = scratch(L, sizeof **imgs);
      (*imgs)[0] = one;
    }
    return *n;
  }
  int count = (int)lua_rawlen(L, idx);
  lua_rawgeti(L, idx, 1);
  int pictures = count > 0 && lsdr_to_image(L, -1) != NULL;
  lua_pop(L, 1);
  if (!pictures)
    return *n = 0;
  *imgs = scratch(L, (size_t)count * sizeof **imgs);
  for (int i = 0; i < count; i++) {
    lua_rawgeti(L, idx, i + 1);
    (*imgs)[i] = lsdr_to_image(L, -1);
    lua_pop(L, 1);
    if (!(*imgs)[i])
      lsdr_error(L, "argument 1 (image): entry %d of the list is not an Image", i + 1);
  }
  return *n = count;
}

/* get_default_height_width: the given size, else the picture's, floored to the factor */
static void default_size(lua_State *L, int opts, const lsdr_image_processor *p, int h0, int w0,
                         int *h, int *w) {
  lua_getfield(L, opts, "height");
  lua_getfield(L, opts, "width");
  *h = lua_isnil(L, -2) ? h0 : (int)lua_tointeger(L, -2);
  *w = lua_isnil(L, -1) ? w0 : (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  *h -= *h % p->vae_scale_factor;
  *w -= *w % p->vae_scale_factor;
  if (*h < 1 || *w < 1)
    lsdr_error(L,
               "a picture of %dx%d resized to %dx%d: height and width must be at least the "
               "vae_scale_factor (%d)",
               w0, h0, *w, *h, p->vae_scale_factor);
}

/* One picture, resized and converted, into x (C, h, w) / 255 (mapped when normalize). */
static int picture_values(const lsdr_image_processor *p, const sdr_image *img, int h, int w,
                          int channels, double *x) {
  sdr_image *sized = NULL, *conv = NULL;
  const sdr_image *src = img;
  if (p->do_resize && (img->width != w || img->height != h)) {
    if (!(sized = sdr_image_resize(img, w, h, SDR_RESAMPLE_LANCZOS)))
      return -1;
    src = sized;
  }
  if (src->channels != channels) {
    if (!(conv = sdr_image_convert(src, channels))) {
      sdr_image_free(sized);
      return -1;
    }
    src = conv;
  }
  for (int c = 0; c < channels; c++)
    for (int y = 0; y < h; y++)
      for (int xx = 0; xx < w; xx++) {
        float v = (float)src->pixels[((size_t)y * w + xx) * channels + c] / 255.0f;
        x[((size_t)c * h + y) * w + xx] = p->do_normalize ? 2.0f * v - 1.0f : v;
      }
  sdr_image_free(sized);
  sdr_image_free(conv);
  return 0;
}

static int preprocess_images(lua_State *L, const lsdr_image_processor *p, sdr_image **imgs, int n,
                             int opts) {
  int h = imgs[0]->height, w = imgs[0]->width;
  if (p->do_resize)
    default_size(L, opts, p, imgs[0]->height, imgs[0]->width, &h, &w);
  int channels = p->do_convert_rgb ? 3 : p->do_convert_grayscale ? 1 : imgs[0]->channels;
  for (int i = 1; i < n; i++) {
    int ci = p->do_convert_rgb || p->do_convert_grayscale ? channels : imgs[i]->channels;
    if (ci != channels || (!p->do_resize && (imgs[i]->width != w || imgs[i]->height != h)))
      lsdr_error(L,
                 "argument 1 (image): picture %d is %dx%d %s, picture 1 %dx%d %s: a batch "
                 "needs one size and mode",
                 i + 1, imgs[i]->width, imgs[i]->height, sdr_image_mode_name(imgs[i]->channels),
                 imgs[0]->width, imgs[0]->height, sdr_image_mode_name(imgs[0]->channels));
  }
  const size_t plane = (size_t)channels * h * w;
  double *x = scratch(L, (size_t)n * plane * sizeof *x);
  for (int i = 0; i < n; i++)
    if (picture_values(p, imgs[i], h, w, channels, x + (size_t)i * plane) != 0)
      return lsdr_engine_error(L);
  if (p->do_binarize)
    binarize(x, (size_t)n * plane);
  lsdr_push_from_host(L, lsdr_backend(L, SDR_DEVICE_CPU), SDR_F32, 4,
                      (int64_t[]){n, channels, h, w}, x);
  return 1;
}

/* Entry i of the list at idx (n entries), or idx itself when n is 0. */
static void push_item(lua_State *L, int idx, int n, int i) {
  if (n)
    lua_rawgeti(L, idx, i + 1);
  else
    lua_pushvalue(L, idx);
}

/* A (B, C, H, W) or (C, H, W) tensor, or a list of them (cat or stack). */
static int preprocess_tensor(lua_State *L, const lsdr_image_processor *p, int idx, int opts) {
  int n = lua_istable(L, idx) && !lsdr_to_tensor(L, idx) ? (int)lua_rawlen(L, idx) : 0;
  int64_t shape[4] = {0, 0, 0, 0};
  int first_ndim = 0;
  for (int i = 0; i < (n ? n : 1); i++) {
    push_item(L, idx, n, i);
    lsdr_tensor *t = lsdr_to_tensor(L, -1);
    if (!t || (t->t.ndim != 3 && t->t.ndim != 4))
      lsdr_error(L, "argument 1 (image): an Image, a list of Images, or a (B, C, H, W) or (C, H, "
                    "W) tensor expected");
    int64_t b = t->t.ndim == 4 ? t->t.shape[0] : 1;
    const int64_t *s = t->t.shape + (t->t.ndim == 4);
    if (i == 0) {
      first_ndim = t->t.ndim;
      shape[1] = s[0], shape[2] = s[1], shape[3] = s[2];
    } else if (t->t.ndim != first_ndim || s[0] != shape[1] || s[1] != shape[2] ||
               s[2] != shape[3]) {
      lsdr_error(L, "argument 1 (image): tensor %d's shape differs from the first's", i + 1);
    }
    shape[0] += b;
    lua_pop(L, 1);
  }
  const int B = (int)shape[0], C = (int)shape[1], H = (int)shape[2], W = (int)shape[3];
  const size_t each = (size_t)C * H * W;
  float *x = scratch(L, (size_t)B * each * sizeof *x);
  size_t at = 0;
  sdr_backend *be = NULL;
  for (int i = 0; i < (n ? n : 1); i++) {
    push_item(L, idx, n, i);
    lsdr_tensor *t = lsdr_check_tensor(L, -1);
    be = be ? be : t->storage->be;
    double *v = lsdr_tensor_host_values(L, t);
    size_t count = (size_t)sdr_tensor_numel(&t->t);
    for (size_t k = 0; k < count; k++)
      x[at + k] = (float)v[k];
    at += count;
    free(v);
    lua_pop(L, 1);
  }
  int h = H, w = W;
  if (C != 4) /* four channels: latents, returned as they are */
    default_size(L, opts, p, H, W, &h, &w);
  if (C == 4 || !p->do_resize)
    h = H, w = W;
  double *out = scratch(L, (size_t)B * C * h * w * sizeof *out);
  float *y = scratch(L, (size_t)B * C * h * w * sizeof *y);
  if (C == 4)
    memcpy(y, x, (size_t)B * each * sizeof *y);
  else if (p->do_normalize)
    sdr_pixels_preprocess(x, B, C, H, W, h, w, y); /* [-1, 1] already: taken as it is */
  else
    sdr_pixels_resize_nearest(x, B, C, H, W, h, w, y);
  for (size_t k = 0; k < (size_t)B * C * h * w; k++)
    out[k] = y[k];
  if (p->do_binarize && C != 4)
    binarize(out, (size_t)B * C * h * w);
  lsdr_push_from_host(L, be, SDR_F32, 4, (int64_t[]){B, C, h, w}, out);
  return 1;
}

/* proc:preprocess(image, {height, width}) */
/* preprocess's crops_coords and resize_mode, for pictures: each cut to the box, then (with
 * do_resize) "fill" or "crop" to the size; the new pictures replace imgs' entries and stay
 * on the stack. */
static void reframe(lua_State *L, const lsdr_image_processor *p, sdr_image **imgs, int n, int opts,
                    const char *mode) {
  lua_getfield(L, opts, "crops_coords");
  if (!lua_isnil(L, -1)) {
    int box[4];
    lsdr_read_crop_coords(L, lua_gettop(L), 2, box);
    for (int i = 0; i < n; i++) {
      if (!(imgs[i] = sdr_image_crop(imgs[i], box[0], box[1], box[2], box[3])))
        lsdr_engine_error(L);
      lsdr_push_image(L, imgs[i]);
    }
  }
  if (!p->do_resize || strcmp(mode, "default") == 0)
    return;
  int h, w;
  default_size(L, opts, p, imgs[0]->height, imgs[0]->width, &h, &w);
  for (int i = 0; i < n; i++) {
    imgs[i] = strcmp(mode, "fill") == 0 ? sdr_image_resize_fill(imgs[i], w, h)
                                        : sdr_image_resize_cover(imgs[i], w, h);
    if (!imgs[i])
      lsdr_engine_error(L);
    lsdr_push_image(L, imgs[i]);
  }
}

static int m_preprocess(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const lsdr_image_processor *p = check_proc(L);
  lua_getfield(L, 3, "resize_mode");
  const char *mode = luaL_optstring(L, -1, "default");
  if (strcmp(mode, "default") && strcmp(mode, "fill") && strcmp(mode, "crop"))
    return lsdr_error(L,
                      "option 'resize_mode': \"default\", \"fill\" or \"crop\" expected, got "
                      "\"%s\"",
                      mode);
  sdr_image **imgs = NULL;
  int n = 0;
  if (lsdr_read_images(L, 2, &imgs, &n) > 0) {
    reframe(L, p, imgs, n, 3, mode);
    return preprocess_images(L, p, imgs, n, 3);
  }
  if (strcmp(mode, "default") != 0)
    return lsdr_error(L, "Only PIL image input is supported for resize_mode %s", mode);
  return preprocess_tensor(L, p, 2, 3);
}

/* ---- postprocess --------------------------------------------------------------------- */

/* numpy's astype("uint8") of a rounded float: values outside [0, 255] wrap as C's
 * conversion through int does on x86 (diffusers clamps first unless do_denormalize is
 * false, so only raw values get there). */
static uint8_t to_u8(float v) {
  v = nearbyintf(v);
  return fabsf(v) < 2147483648.0f ? (uint8_t)(int32_t)v : 0;
}

/* proc:postprocess(image, {output_type = "pil", do_denormalize = nil}) */
static int m_postprocess(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  const lsdr_image_processor *p = check_proc(L);
  lsdr_tensor *t = lsdr_check_tensor(L, 2);
  if (t->t.ndim != 4)
    return lsdr_argerror(L, 1, "a (B, C, H, W) tensor");
  lua_getfield(L, 3, "output_type");
  const char *type = luaL_optstring(L, -1, "pil");
  if (strcmp(type, "latent") && strcmp(type, "pt") && strcmp(type, "np") && strcmp(type, "pil")) {
    fprintf(stderr,
            "the output_type %s is outdated and has been set to `np`. Please make sure to "
            "set it to one of these instead: `pil`, `np`, `pt`, `latent`\n",
            type);
    type = "np";
  }
  if (strcmp(type, "latent") == 0) {
    lua_pushvalue(L, 2);
    return 1;
  }
  const int B = (int)t->t.shape[0], C = (int)t->t.shape[1], H = (int)t->t.shape[2],
            W = (int)t->t.shape[3];
  int *denorm = scratch(L, (size_t)(B > 0 ? B : 1) * sizeof *denorm);
  lua_getfield(L, 3, "do_denormalize");
  for (int b = 0; b < B; b++) {
    if (lua_isnil(L, -1)) {
      denorm[b] = p->do_normalize;
    } else if (lua_istable(L, -1) && (int)lua_rawlen(L, -1) >= B) {
      lua_rawgeti(L, -1, b + 1);
      denorm[b] = lua_toboolean(L, -1);
      lua_pop(L, 1);
    } else {
      return lsdr_error(L, "option 'do_denormalize': a list of %d booleans expected", B);
    }
  }
  double *v = lsdr_tensor_host_values(L, t);
  const size_t plane = (size_t)H * W;
  for (int b = 0; b < B; b++)
    for (size_t k = 0; denorm[b] && k < (size_t)C * plane; k++) {
      float f = (float)v[(size_t)b * C * plane + k] / 2.0f + 0.5f; /* denormalize, clamp */
      v[(size_t)b * C * plane + k] = f < 0 ? 0 : f > 1 ? 1 : f;
    }
  if (strcmp(type, "pt") == 0) {
    lsdr_push_from_host(L, t->storage->be, SDR_F32, 4, t->t.shape, v);
    free(v);
    return 1;
  }
  if (strcmp(type, "np") == 0) { /* pt_to_numpy: (B, H, W, C) */
    double *o = malloc((size_t)B * C * plane * sizeof *o);
    if (!o) {
      free(v);
      return luaL_error(L, "out of memory");
    }
    for (int b = 0; b < B; b++)
      for (int c = 0; c < C; c++)
        for (size_t k = 0; k < plane; k++)
          o[((size_t)b * plane + k) * C + c] = (float)v[((size_t)b * C + c) * plane + k];
    free(v);
    lsdr_push_from_host(L, lsdr_backend(L, SDR_DEVICE_CPU), SDR_F32, 4, (int64_t[]){B, H, W, C}, o);
    free(o);
    return 1;
  }
  if (C != 1 && C != 3 && C != 4) {
    free(v);
    return lsdr_error(L, "output_type 'pil': pictures have 1, 3 or 4 channels, not %d", C);
  }
  lua_createtable(L, B, 0); /* numpy_to_pil: (x * 255).round().astype("uint8") */
  for (int b = 0; b < B; b++) {
    sdr_image **slot = lsdr_push_image_slot(L);
    if (!(*slot = sdr_image_new(W, H, C))) {
      free(v);
      return luaL_error(L, "out of memory");
    }
    for (int c = 0; c < C; c++)
      for (size_t k = 0; k < plane; k++)
        (*slot)->pixels[k * C + c] = to_u8((float)v[((size_t)b * C + c) * plane + k] * 255.0f);
    lua_rawseti(L, -2, b + 1);
  }
  free(v);
  lsdr_image_list_meta(L, -1);
  return 1;
}

void lsdr_push_numpy_to_pil(lua_State *L, int idx) {
  lsdr_tensor *t = lsdr_check_tensor(L, idx);
  const int nd = t->t.ndim;
  const int64_t *s = t->t.shape;
  const int64_t C = nd >= 3 ? s[nd - 1] : 0;
  if ((nd != 3 && nd != 4) || (C != 1 && C != 3 && C != 4))
    lsdr_error(L,
               "images: a (batch, height, width, channels) or (height, width, channels) "
               "array with 1, 3 or 4 channels expected (output_type = \"np\"), got %d dims",
               nd);
  const int64_t B = nd == 4 ? s[0] : 1, H = s[nd - 3], W = s[nd - 2];
  if (H < 1 || W < 1 || H > 65535 || W > 65535)
    lsdr_error(L, "images: %I x %I pixels cannot be a picture", (lua_Integer)H, (lua_Integer)W);
  double *v = lsdr_tensor_host_values(L, t);
  const size_t n = (size_t)(H * W * C);
  lua_createtable(L, (int)B, 0); /* (images * 255).round().astype("uint8"), each fromarray */
  for (int64_t b = 0; b < B; b++) {
    sdr_image **slot = lsdr_push_image_slot(L);
    if (!(*slot = sdr_image_new((int)W, (int)H, (int)C))) {
      free(v);
      luaL_error(L, "out of memory");
    }
    for (size_t k = 0; k < n; k++)
      (*slot)->pixels[k] = to_u8((float)v[(size_t)b * n + k] * 255.0f);
    lua_rawseti(L, -2, (int)b + 1);
  }
  free(v);
  lsdr_image_list_meta(L, -1);
}

/* proc:blur(image, blur_factor): diffusers' VaeImageProcessor.blur, a GaussianBlur of the
 * picture (a mask softened before inpainting). */
static int m_blur(lua_State *L) {
  lsdr_args(L);
  const sdr_image *img = lsdr_to_image(L, 2);
  if (!img)
    return lsdr_argerror(L, 1, "an open Image");
  lua_getglobal(L, "ImageFilter");
  lua_getfield(L, -1, "GaussianBlur");
  lua_pushvalue(L, 3);
  lua_call(L, 1, 1);
  return lsdr_push_filtered(L, img, lua_gettop(L));
}

static int l_numpy_to_pil(lua_State *L) {
  lsdr_args(L);
  lsdr_push_numpy_to_pil(L, lua_gettop(L));
  return 1;
}

/* ---- the object ---------------------------------------------------------------------- */

static int proc_properties(lua_State *L) {
  const lsdr_image_processor *p = check_proc(L);
  const char *k = lua_tostring(L, 2);
  if (!k || strcmp(k, "config") != 0)
    return 0;
  lua_createtable(L, 0, 7);
  int t = lua_gettop(L);
  lua_pushboolean(L, p->do_resize);
  lua_setfield(L, t, "do_resize");
  lsdr_set_int(L, t, "vae_scale_factor", p->vae_scale_factor);
  lsdr_set_str(L, t, "resample", "lanczos");
  lua_pushboolean(L, p->do_normalize);
  lua_setfield(L, t, "do_normalize");
  lua_pushboolean(L, p->do_binarize);
  lua_setfield(L, t, "do_binarize");
  lua_pushboolean(L, p->do_convert_rgb);
  lua_setfield(L, t, "do_convert_rgb");
  lua_pushboolean(L, p->do_convert_grayscale);
  lua_setfield(L, t, "do_convert_grayscale");
  return 1;
}

static int proc_gc(lua_State *L) {
  (void)L;
  return 0;
}

static int proc_tostring(lua_State *L) {
  const lsdr_image_processor *p = check_proc(L);
  lua_pushfstring(L, "<VaeImageProcessor vae_scale_factor=%d>", p->vae_scale_factor);
  return 1;
}

static int boolean_option(lua_State *L, int opts, const char *key, int dflt) {
  int r = lua_getfield(L, opts, key) == LUA_TNIL ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* VaeImageProcessor{...}: diffusers' __init__ arguments */
static int l_new(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 1);
  lua_getfield(L, 1, "vae_scale_factor");
  lua_Integer f = luaL_optinteger(L, -1, 8);
  lua_pop(L, 1);
  if (f < 1 || f > 4096)
    return lsdr_error(L, "option 'vae_scale_factor': a positive integer expected, got %d", (int)f);
  lua_getfield(L, 1, "resample");
  const char *rs = luaL_optstring(L, -1, "lanczos");
  if (strcmp(rs, "lanczos") != 0)
    return lsdr_error(
        L, "option 'resample': only \"lanczos\" (the default) is supported, not \"%s\"", rs);
  lua_pop(L, 1);
  lsdr_push_image_processor(L, (int)f);
  lsdr_image_processor *p = lua_touserdata(L, -1);
  p->do_resize = boolean_option(L, 1, "do_resize", 1);
  p->do_normalize = boolean_option(L, 1, "do_normalize", 1);
  p->do_convert_rgb = boolean_option(L, 1, "do_convert_rgb", 0);
  p->do_convert_grayscale = boolean_option(L, 1, "do_convert_grayscale", 0);
  p->do_binarize = boolean_option(L, 1, "do_binarize", 0);
  if (p->do_convert_rgb && p->do_convert_grayscale)
    return lsdr_error(L,
                      "`do_convert_rgb` and `do_convert_grayscale` can not both be set to `True`,"
                      " if you intended to convert the image into RGB format, please set "
                      "`do_convert_grayscale = False`.");
  return 1;
}

static const lsdr_param new_options[] = {
    {"do_resize", "boolean", "true", "resize to a multiple of vae_scale_factor"},
    {"vae_scale_factor", "integer", "8", "the VAE's downscaling (pipe.vae_scale_factor)"},
    {"resample", "string", "\"lanczos\"", "the resize filter"},
    {"do_normalize", "boolean", "true", "map [0, 1] to [-1, 1] and back"},
    {"do_binarize", "boolean", "false", "values to 0 below 0.5, else 1 (masks)"},
    {"do_convert_rgb", "boolean", "false", "convert pictures to RGB"},
    {"do_convert_grayscale", "boolean", "false", "convert pictures to L"},
    {0}};

static const lsdr_param pre_options[] = {
    {"height", "integer", "nil", "default: the first picture's, floored to the factor"},
    {"width", "integer", "nil", "default: the first picture's, floored to the factor"},
    {"resize_mode", "string", "\"default\"",
     "\"fill\" or \"crop\" keep the pictures' aspect ratio (pictures only)"},
    {"crops_coords", "table", "nil", "{x1, y1, x2, y2}: each picture cut to it first"},
    {0}};

static const lsdr_param post_options[] = {
    {"output_type", "string", "\"pil\"", "\"pil\", \"np\" (B, H, W, C), \"pt\" or \"latent\""},
    {"do_denormalize", "table", "nil",
     "per image: map [-1, 1] back to [0, 1] (default: do_normalize)"},
    {0}};

static const lsdr_func class_funcs[] = {
    {"VaeImageProcessor.new",
     l_new,
     "diffusers' VaeImageProcessor(...); VaeImageProcessor{...} does the same.",
     {{"opts", "table", "nil"}},
     new_options},
    {"VaeImageProcessor.numpy_to_pil",
     l_numpy_to_pil,
     "Pictures from an array in [0, 1] (batch, height, width, channels), as output_type = "
     "\"np\" gives: (x * 255).round() as bytes, each one an Image.",
     {{"images", "Tensor"}}},
    {0}};

static const lsdr_func methods[] = {
    {"VaeImageProcessor:preprocess",
     m_preprocess,
     "Pictures (or a tensor in [0, 1]) to a (B, C, H, W) float32 tensor in [-1, 1], sized to a "
     "multiple of vae_scale_factor.",
     {{"image", "any"}, {"opts", "table", "nil"}},
     pre_options},
    {"VaeImageProcessor:postprocess",
     m_postprocess,
     "A (B, C, H, W) tensor in [-1, 1] (the VAE's output) to pictures, an array or a tensor.",
     {{"image", "Tensor"}, {"opts", "table", "nil"}},
     post_options},
    {"VaeImageProcessor:blur",
     m_blur,
     "The picture through ImageFilter.GaussianBlur(blur_factor): a mask with soft edges, as "
     "diffusers' mask_processor.blur.",
     {{"image", "Image"}, {"blur_factor", "number", "4"}}},
    {"VaeImageProcessor:numpy_to_pil",
     l_numpy_to_pil,
     "Pictures from an array in [0, 1] (batch, height, width, channels), as "
     "VaeImageProcessor.numpy_to_pil.",
     {{"images", "Tensor"}}},
    {"VaeImageProcessor:get_crop_region",
     lsdr_proc_get_crop_region,
     "The box {x1, y1, x2, y2} around the mask's painted pixels, widened by pad and then to "
     "width:height's aspect ratio (inpainting's padding_mask_crop).",
     {{"mask", "Image"}, {"width", "integer"}, {"height", "integer"}, {"pad", "any", "0"}}},
    {"VaeImageProcessor:apply_overlay",
     lsdr_proc_apply_overlay,
     "The inpainted picture (of the box crop_coords) laid back into init_image where the mask "
     "is black, at the picture's size.",
     {{"mask", "Image"},
      {"init_image", "Image"},
      {"image", "Image"},
      {"crop_coords", "table", "nil"}}},
    {"VaeImageProcessor:resize",
     lsdr_proc_resize,
     "An Image resized (LANCZOS): \"default\" to the size, \"fill\" keeping its ratio and "
     "filling the bands by stretching its edges, \"crop\" keeping its ratio and cutting the "
     "excess.",
     {{"image", "Image"},
      {"height", "integer"},
      {"width", "integer"},
      {"resize_mode", "string", "\"default\""}}},
    {0}};

static int call_new(lua_State *L) {
  lua_remove(L, 1); /* the class table */
  lua_getfield(L, LUA_REGISTRYINDEX, "sdrepl.VaeImageProcessor.new");
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

void lsdr_open_image_processor(lua_State *L) {
  lsdr_model_metatable(L, LSDR_IMAGE_PROCESSOR, methods, proc_properties, proc_gc, proc_tostring);
  luaL_getmetatable(L, LSDR_IMAGE_PROCESSOR);
  lua_getfield(L, -1, "__fields");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "config");
  lua_pop(L, 2);
  lua_newtable(L);
  lsdr_register(L, -1, class_funcs);
  lua_getfield(L, -1, "new");
  lua_setfield(L, LUA_REGISTRYINDEX, "sdrepl.VaeImageProcessor.new");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, call_new);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setglobal(L, "VaeImageProcessor");
}
