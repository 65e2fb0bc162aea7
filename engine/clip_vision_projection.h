/* engine/clip_vision_projection.h — transformers' CLIPVisionModelWithProjection
 * (models/clip/modeling_clip.py): the CLIP vision tower and its visual_projection, what
 * an IP-Adapter's image_encoder folder holds and encode_image runs.
 *
 * image_embeds is the pooled output (the class token through post_layernorm) times the
 * projection; IP-Adapter Plus and Full take hidden_states[-2] instead, the tower's
 * output one layer before the last. Config from config.json (a CLIPVisionConfig's, or a
 * CLIPConfig's vision part), weights "vision_model.*" and "visual_projection.weight".
 */
#ifndef SDR_ENGINE_CLIP_VISION_PROJECTION_H
#define SDR_ENGINE_CLIP_VISION_PROJECTION_H

#include "engine/clip_vision_model.h"

typedef struct sdr_clip_vision_projection {
  sdr_backend *be;
  sdr_weights weights;
  sdr_clip_vision_model vision;
  int projection_dim; /* P */
  sdr_tensor proj_w;  /* (P, D), no bias */
} sdr_clip_vision_projection;

/* dir holds config.json and model.safetensors (or pytorch_model.bin). keep_dtype as in
 * sdr_weights_open. */
int sdr_clip_vision_projection_load(sdr_clip_vision_projection *m, sdr_backend *be, const char *dir,
                                    int keep_dtype);
int sdr_clip_vision_projection_copy_to(sdr_clip_vision_projection *dst,
                                       const sdr_clip_vision_projection *src, sdr_backend *be,
                                       int keep_dtype);
void sdr_clip_vision_projection_free(sdr_clip_vision_projection *m);

/* pixels (B, C, S, S) host float32 (CLIPImageProcessor's) -> out, host float32: with back
 * 0 image_embeds (B, P); else hidden_states[-back] (B, T, D). */
int sdr_clip_vision_projection_run(sdr_clip_vision_projection *m, sdr_arena *a, float *out,
                                   const float *pixels, int64_t B, int64_t S, int back);
/* The number of floats run writes per picture. */
int64_t sdr_clip_vision_projection_size(const sdr_clip_vision_projection *m, int back);

#endif
