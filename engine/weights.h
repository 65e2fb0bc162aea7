/* engine/weights.h — a component's weights, found by name and checked by shape.
 *
 * Weight names are paths in the model tree as diffusers and transformers save
 * them ("text_model.encoder.layers.0.self_attn.q_proj.weight"), so loading a
 * model is a walk over its layers asking for each name with the shape its
 * config implies. Problems are gathered, not stopped at: one error lists every
 * missing, mis-shaped and unexpected tensor by name.
 *
 * On the CPU a tensor stored in the dtype we keep is used in place in the
 * mapped file (nothing copied); otherwise it is converted once on load. On
 * other backends tensors are uploaded once.
 */
#ifndef SDR_ENGINE_WEIGHTS_H
#define SDR_ENGINE_WEIGHTS_H

#include "engine/safetensors.h" // sdr_safetensors
#include "kernels/backend.h"    // sdr_backend, sdr_tensor

typedef struct sdr_weights {
  sdr_backend *be;
  int keep_dtype; /* -1: as stored; else floating tensors are kept in this dtype */
  sdr_safetensors **files;
  int nfiles;
  void **owned; /* backend buffers holding converted or uploaded tensors */
  size_t nowned, capowned;
  unsigned char *used; /* per tensor of each file, flattened: asked for */
  size_t ntensors;
  /* problems found while binding, reported by sdr_weights_finish */
  char *problems;
  size_t problems_len;
  int nproblems;
  char *component; /* for messages: "unet", "text_encoder" */
} sdr_weights;

int sdr_weights_open(sdr_weights *w, sdr_backend *be, const char *component,
                     const char *const *paths, int npaths, int keep_dtype);
void sdr_weights_close(sdr_weights *w);

/* Binds *out to the tensor `name` with the expected shape; a missing or
 * mis-shaped tensor is recorded (and *out zeroed) and 0 is returned, so a
 * loader can go on and report everything at the end. -1 only on a hard
 * failure (out of memory). */
int sdr_weights_bind(sdr_weights *w, sdr_tensor *out, const char *name, int ndim,
                     const int64_t *shape);
/* Like bind, with the name made by printf. */
int sdr_weights_bindf(sdr_weights *w, sdr_tensor *out, int ndim, const int64_t *shape,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Whether a tensor of that name is in the files (for layouts with two naming
 * schemes, such as the VAE's attention before and after diffusers 0.14). */
int sdr_weights_has(sdr_weights *w, const char *name);
/* Marks a tensor that may be in the files and is not needed (an old buffer
 * such as "text_model.embeddings.position_ids"), so it is not "unexpected". */
void sdr_weights_skip(sdr_weights *w, const char *name);
/* After binding everything: fails with the list of problems, including the
 * tensors in the files that nobody asked for. */
int sdr_weights_finish(sdr_weights *w);

#endif
