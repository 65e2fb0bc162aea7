/* engine/clip_image_processor.h — transformers' CLIPImageProcessor (the pipeline's
 * feature_extractor, which makes the safety checker's input).
 *
 * Mirrors image_processing_clip.py's preprocess: convert to RGB, resize with Pillow
 * (the shortest edge to size, the other keeping the aspect ratio and truncated, or to
 * height x width), center_crop (padding with zeros where the picture is smaller),
 * rescale (uint8 times rescale_factor in float64, then float32), normalize ((x - mean)
 * / std in float32). Settings from preprocessor_config.json, CLIPImageProcessor's
 * defaults for what it leaves out.
 */
#ifndef SDR_ENGINE_CLIP_IMAGE_PROCESSOR_H
#define SDR_ENGINE_CLIP_IMAGE_PROCESSOR_H

#include "engine/image.h" // sdr_image

typedef struct sdr_clip_image_processor {
  int do_convert_rgb;
  int do_resize;
  int shortest_edge; /* > 0: size {"shortest_edge"}; else size_h x size_w */
  int size_h, size_w;
  int resample; /* Pillow's filter number (3: bicubic) */
  int do_center_crop;
  int crop_h, crop_w;
  int do_rescale;
  double rescale_factor;
  int do_normalize;
  double mean[3], std[3];
} sdr_clip_image_processor;

/* CLIPImageProcessor() as constructed with no arguments (OpenAI CLIP's 224 settings). */
void sdr_clip_image_processor_default(sdr_clip_image_processor *p);
int sdr_clip_image_processor_load(sdr_clip_image_processor *p, const char *config_json);

/* preprocess of n pictures -> pixel_values (n, 3, H, W) float32, malloc'd into *out.
 * Every picture must come out the same size (transformers stacks them). */
int sdr_clip_image_processor_run(const sdr_clip_image_processor *p, const sdr_image *const *imgs,
                                 int n, float **out, int *height, int *width);

#endif
