/* engine/clip_vision_projection.c — CLIPVisionModelWithProjection (transformers'
 * modeling_clip.py). */
#include "engine/clip_vision_projection.h"

#include <string.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

static int bind_all(sdr_clip_vision_projection *m) {
  sdr_weights *w = &m->weights;
  const int64_t P = m->projection_dim, D = m->vision.cfg.hidden_size;
  const sdr_dtype act = sdr_backend_act_dtype(m->be, w->keep_dtype);
  TRY(sdr_clip_vision_bind(&m->vision, w, "vision_model.", act, "image_encoder"));
  TRY(sdr_weights_bind(w, &m->proj_w, "visual_projection.weight", 2, (int64_t[]){P, D}));
  /* a CLIPModel's checkpoint also holds the text tower; the vision model ignores it */
  sdr_weights_skip_prefix(w, "text_model.");
  sdr_weights_skip(w, "text_projection.weight");
  sdr_weights_skip(w, "logit_scale");
  return sdr_weights_finish(w);
fail:
  return -1;
}

int sdr_clip_vision_projection_load(sdr_clip_vision_projection *m, sdr_backend *be, const char *dir,
                                    int keep_dtype) {
  memset(m, 0, sizeof *m);
  m->be = be;
  if (sdr_clip_vision_open(&m->vision.cfg, &m->projection_dim, &m->weights, be, dir, NULL,
                           "image_encoder", keep_dtype) != 0)
    return -1;
  if (bind_all(m) != 0) {
    sdr_clip_vision_projection_free(m);
    return -1;
  }
  return 0;
}

int sdr_clip_vision_projection_copy_to(sdr_clip_vision_projection *dst,
                                       const sdr_clip_vision_projection *src, sdr_backend *be,
                                       int keep_dtype) {
  memset(dst, 0, sizeof *dst);
  dst->be = be;
  dst->vision.cfg = src->vision.cfg;
  dst->projection_dim = src->projection_dim;
  if (sdr_weights_reopen(&dst->weights, &src->weights, be, keep_dtype) != 0)
    return -1;
  if (bind_all(dst) != 0) {
    sdr_clip_vision_projection_free(dst);
    return -1;
  }
  return 0;
}

void sdr_clip_vision_projection_free(sdr_clip_vision_projection *m) {
  sdr_clip_vision_free(&m->vision);
  sdr_weights_close(&m->weights);
  memset(m, 0, sizeof *m);
}

int64_t sdr_clip_vision_projection_size(const sdr_clip_vision_projection *m, int back) {
  const sdr_clip_vision_config *c = &m->vision.cfg;
  const int64_t g = c->image_size / c->patch_size;
  return back ? (g * g + 1) * c->hidden_size : m->projection_dim;
}

int sdr_clip_vision_projection_run(sdr_clip_vision_projection *m, sdr_arena *a, float *out,
                                   const float *pixels, int64_t B, int64_t S, int back) {
  const sdr_clip_vision_config *c = &m->vision.cfg;
  const int64_t D = c->hidden_size, P = m->projection_dim, g = S / c->patch_size;
  const sdr_dtype act = m->vision.act;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor res, f;
  if (back) {
    TRY(sdr_arena_tensor(a, &res, SDR_F32, 3, (int64_t[]){B, g * g + 1, D}));
    TRY(sdr_clip_vision_hidden(&m->vision, a, &res, pixels, B, S, back));
  } else {
    sdr_tensor pooled;
    TRY(sdr_arena_tensor(a, &pooled, act, 2, (int64_t[]){B, D}));
    TRY(sdr_clip_vision_forward(&m->vision, a, &pooled, pixels, B, S));
    TRY(sdr_arena_tensor(a, &f, act, 2, (int64_t[]){B, P}));
    TRY(sdr_linear(m->be, &f, &pooled, &m->proj_w, NULL));
    TRY(sdr_arena_as(a, &res, &f, SDR_F32));
  }
  TRY(sdr_download(m->be, out, res.data, sdr_tensor_nbytes(&res)));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}
