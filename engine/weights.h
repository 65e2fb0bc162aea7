/* engine/weights.h — a component's weights, found by name and checked by shape.
 *
 * Weight names are paths in the model tree as diffusers and transformers save
 * them ("text_model.encoder.layers.0.self_attn.q_proj.weight"), so loading a
 * model is a walk over its layers asking for each name with the shape its
 * config implies. Problems are gathered, not stopped at: one error lists every
 * missing, mis-shaped and unexpected tensor by name.
 *
 * Files are .safetensors or what torch.save writes (.bin, .ckpt: read by the
 * restricted unpickler, never executed), told apart by their first bytes. A
 * table of views can stand in for a file's own names: a single-file
 * checkpoint stores "model.diffusion_model.input_blocks.0.0.weight" where a
 * loader asks for "conv_in.weight", and a view may also see a tensor with
 * another shape ((C, C, 1, 1) as (C, C)) or a slice of it (one third of a
 * fused q/k/v projection), all without a copy.
 *
 * On the CPU a tensor stored in the dtype we keep is used in place in the
 * mapped file (nothing copied) when it is aligned for its type; otherwise it
 * is converted or copied once on load. On other backends tensors are uploaded
 * once, into one device buffer per component.
 */
#ifndef SDR_ENGINE_WEIGHTS_H
#define SDR_ENGINE_WEIGHTS_H

#include "engine/safetensors.h" // sdr_safetensors, sdr_st_tensor
#include "kernels/backend.h"    // sdr_backend, sdr_tensor

/* An opened weight file of either format, shared by reference count (the
 * tensors bound in place point into its mapping). */
typedef struct sdr_weight_file sdr_weight_file;

/* One name a loader may ask for, seeing (part of) a file's tensor. */
typedef struct sdr_weight_view {
  const char *name;         /* the name asked for: diffusers' */
  const sdr_st_tensor *src; /* a tensor of the file */
  size_t offset;            /* bytes into src's data where the view begins */
  int ndim;                 /* the view's shape; its bytes must lie inside src's */
  int64_t shape[SDR_ST_MAX_DIMS];
} sdr_weight_view;

typedef struct sdr_weights_slot sdr_weights_slot;

/* A name bound, and where: see sdr_weights_owner. */
typedef struct sdr_weights_bound {
  char *name;
  int inside; /* in the owner's struct: at offset bytes from the sdr_weights */
  ptrdiff_t offset;
  sdr_tensor *slot; /* else here */
} sdr_weights_bound;

typedef struct sdr_weights {
  sdr_backend *be;
  int keep_dtype;          /* -1: as stored; else floating tensors are kept in this dtype */
  sdr_weight_file **files; /* held while the weights live */
  int nfiles;
  sdr_st_tensor *views; /* views made into tensors of their own names (names owned) */
  size_t nviews;
  const sdr_st_tensor **all; /* every tensor that may be asked for: files' own, then views */
  size_t ntensors;
  sdr_weights_slot *slots; /* name -> index into all; the first of a name wins */
  size_t mask;
  void **owned; /* backend buffers holding converted or uploaded tensors */
  size_t nowned, capowned;
  /* On a device, one buffer for all of them (one allocation, not a thousand):
   * sized for every tensor the files hold, handed out in order. */
  unsigned char *pool;
  size_t pool_used, pool_cap;
  unsigned char *used; /* per entry of all: asked for */
  /* problems found while binding, reported by sdr_weights_finish */
  char *problems;
  size_t problems_len;
  int nproblems;
  sdr_weights_bound *bound; /* every name bound, in order (what a LoRA may change) */
  size_t nbound, capbound;
  const void *owner; /* the model struct this is part of (sdr_weights_owner) */
  size_t owner_size;
  char *component;             /* for messages: "unet", "text_encoder" */
  const char *optional_prefix; /* static text; see sdr_weights_optional_prefix */
  char *config_text; /* the model's config.json as loaded, or NULL (sdr_weights_keep_config) */
} sdr_weights;

int sdr_weights_open(sdr_weights *w, sdr_backend *be, const char *component,
                     const char *const *paths, int npaths, int keep_dtype);
void sdr_weights_close(sdr_weights *w);
/* The same files (and views) opened again for binding on another backend or in
 * another dtype: what moving a model to a device does. */
int sdr_weights_reopen(sdr_weights *w, const sdr_weights *src, sdr_backend *be, int keep_dtype);

/* Binds *out to the tensor `name` with the expected shape; a missing or
 * mis-shaped tensor is recorded (and *out zeroed) and 0 is returned, so a
 * loader can go on and report everything at the end. -1 only on a hard
 * failure (out of memory). */
int sdr_weights_bind(sdr_weights *w, sdr_tensor *out, const char *name, int ndim,
                     const int64_t *shape);
/* The model struct w is a member of (size bytes): tensors bound inside it are found again
 * by sdr_weights_bound_slot after the struct is copied elsewhere, as models are moved by value. */
void sdr_weights_owner(sdr_weights *w, const void *owner, size_t size);
/* The model's tensor bound to name (its weights as the model uses them, which a LoRA
 * may point elsewhere), or NULL. */
sdr_tensor *sdr_weights_bound_slot(sdr_weights *w, const char *name);
size_t sdr_weights_nbound(const sdr_weights *w);
const char *sdr_weights_bound_name(const sdr_weights *w, size_t i);
/* The model's tensor of the i-th name bound (sdr_weights_bound_slot without the search). */
sdr_tensor *sdr_weights_bound_at(sdr_weights *w, size_t i);
/* Keeps the text of the model's config file, which save_pretrained writes back beside the
 * weights (engine/model_save.h); moves to another device keep it too. */
int sdr_weights_keep_config(sdr_weights *w, const char *path);
/* Like bind, with the name made by printf. */
int sdr_weights_bindf(sdr_weights *w, sdr_tensor *out, int ndim, const int64_t *shape,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Names asked for that begin with prefix are also found without it: transformers
 * 5 saves CLIPTextModel's "text_model.encoder..." as "encoder...". prefix must
 * outlive the weights (a string literal). */
void sdr_weights_optional_prefix(sdr_weights *w, const char *prefix);
/* Whether a tensor of that name is in the files (for layouts with two naming
 * schemes, such as the VAE's attention before and after diffusers 0.14). */
int sdr_weights_has(sdr_weights *w, const char *name);
/* Marks a tensor that may be in the files and is not needed (an old buffer
 * such as "text_model.embeddings.position_ids"), so it is not "unexpected". */
void sdr_weights_skip(sdr_weights *w, const char *name);
/* The same for every tensor whose name begins with prefix (the vision half of a
 * CLIPModel checkpoint that a CLIPTextModel is loaded from). */
void sdr_weights_skip_prefix(sdr_weights *w, const char *prefix);
/* After binding everything: fails with the list of problems, including the
 * tensors in the files that nobody asked for. */
int sdr_weights_finish(sdr_weights *w);

/* ---- files of either format ----------------------------------------------- */

/* Opens a .safetensors file, or a torch.save file (zip or legacy format),
 * whatever its name says: the first bytes decide. NULL with a message. */
sdr_weight_file *sdr_weight_file_open(const char *path);
sdr_weight_file *sdr_weight_file_retain(sdr_weight_file *f);
/* Drops one reference; the last one closes the file. */
void sdr_weight_file_release(sdr_weight_file *f);
size_t sdr_weight_file_count(const sdr_weight_file *f);
const sdr_st_tensor *sdr_weight_file_at(const sdr_weight_file *f, size_t i);
const sdr_st_tensor *sdr_weight_file_find(const sdr_weight_file *f, const char *name);
const char *sdr_weight_file_path(const sdr_weight_file *f);
int sdr_weight_file_is_safetensors(const sdr_weight_file *f);

/* ---- tensors under other names -------------------------------------------- */

/* Opens weights whose tensors are the n views into file (retained; the views
 * and their names are copied). Views that do not fit their tensor fail here. */
int sdr_weights_open_views(sdr_weights *w, sdr_backend *be, const char *component,
                           sdr_weight_file *file, const sdr_weight_view *views, size_t n,
                           int keep_dtype);

/* Until sdr_weights_redirect_end(path), sdr_weights_open given exactly `path`
 * takes these views instead of opening it. This lets a loader that finds its
 * config and weights in a folder (sdr_unet_load, ...) bind a converted
 * checkpoint: the folder holds the config and a placeholder file whose path is
 * redirected. Process-wide and thread-safe. */
int sdr_weights_redirect(const char *path, sdr_weight_file *file, const sdr_weight_view *views,
                         size_t n);
void sdr_weights_redirect_end(const char *path);

#endif
