/* bindings/model_common.h — what every model binding does the same way:
 * from_pretrained's folder and options, the userdata's metatable, config tables. */
#ifndef SDR_BINDINGS_MODEL_COMMON_H
#define SDR_BINDINGS_MODEL_COMMON_H

#include <stddef.h>

#include <lua.h>

#include "bindings/lsdr.h"  // lsdr_func, lsdr_param
#include "engine/arena.h"   // sdr_arena
#include "engine/weights.h" // sdr_weights

/* The options every from_pretrained takes: subfolder, torch_dtype, variant. */
extern const lsdr_param lsdr_from_pretrained_options[];

typedef struct lsdr_pretrained {
  char dir[4096];      /* path[/subfolder], checked to be a folder */
  int keep_dtype;      /* -1: as stored */
  const char *variant; /* NULL or e.g. "fp16"; points into the options table */
} lsdr_pretrained;

/* Reads from_pretrained(path, opts) after lsdr_args/lsdr_options: path at
 * user argument 1, the filled options table at 2. Raises a Lua error naming
 * the folder when it does not exist. */
void lsdr_pretrained_read(lua_State *L, lsdr_pretrained *p);

/* Makes the metatable `name` for a model userdata: __index looks in the
 * methods (registered from `methods`, which may hold a "Type:__call" entry that
 * becomes __call) and then calls index_extra(L) for properties; __gc and __close
 * call gc; __fields lists the methods for completion. Leaves nothing on the stack. */
void lsdr_model_metatable(lua_State *L, const char *name, const lsdr_func *methods,
                          lua_CFunction index_extra, lua_CFunction gc, lua_CFunction tostring);

/* A model userdata: the model it runs (its own, loaded by from_pretrained, or
 * one a pipeline holds, which the user value then keeps alive) and an arena
 * for its calls. */
typedef struct lsdr_model_box {
  void *model;
  sdr_backend *be;
  sdr_arena arena;
  int loaded;
  int tiling;                    /* AutoencoderKL:enable_tiling() */
  void (*free_own)(void *model); /* NULL when the model is a pipeline's */
  const int *owner_loaded;       /* a pipeline's model: whether the pipeline still holds it */
  void *own; /* malloc'd (Lua's userdata memory is only 8-byte aligned), or NULL */
} lsdr_model_box;

/* Pushes a box of type tname with `size` zeroed bytes for its own model; load
 * into b->own, then call lsdr_model_box_ready. */
lsdr_model_box *lsdr_model_box_new(lua_State *L, const char *tname, size_t size);
void lsdr_model_box_ready(lsdr_model_box *b, sdr_backend *be, void (*free_own)(void *model));
/* model:to{memory_format = torch.channels_last}, or to the device it is on: the model
 * itself (diffusers' speed-up lines); another device or a dtype is an error that says what
 * to do instead. For the models' method tables. */
int lsdr_model_to(lua_State *L);

/* Pushes a box running a model that the value at `owner` (a pipeline) holds. */
void lsdr_model_box_push_ref(lua_State *L, const char *tname, void *model, sdr_backend *be,
                             int owner);
/* A pipeline's model moved to another device (pipe:to): the box's scratch
 * follows it there. */
void lsdr_model_box_follow(lsdr_model_box *b, sdr_backend *be);
/* Whether the box's model can run: not closed, nor its pipeline. */
int lsdr_model_box_open(const lsdr_model_box *b);
/* The open box of type tname at idx; a Lua error when it or its pipeline was closed. */
lsdr_model_box *lsdr_model_box_check(lua_State *L, int idx, const char *tname);
/* X.from_pretrained(path, opts) for a model type: reads the folder and options
 * (lsdr_pretrained_read), loads with `load` into a new box, pushes it. */
typedef int (*lsdr_model_load_fn)(void *model, sdr_backend *be, const char *dir,
                                  const char *variant, int keep_dtype);
int lsdr_model_from_pretrained(lua_State *L, const char *tname, size_t size,
                               lsdr_model_load_fn load, void (*free_own)(void *model));
/* The same from a folder the caller names (a pipeline folder's component): pushes the box. */
void lsdr_model_push_loaded(lua_State *L, const char *tname, size_t size, lsdr_model_load_fn load,
                            void (*free_own)(void *model), const char *dir, const char *variant,
                            int keep_dtype);
/* model:save_pretrained(save_directory, opts) after lsdr_args and lsdr_options(L, 2): the
 * model's config and weights w into the folder, the file named stem ("diffusion_pytorch_model",
 * transformers' "model"); a pipeline's model only when the pipeline could be saved
 * (bindings/save_pretrained.c). The options, the pipelines' too: */
int lsdr_model_save_pretrained(lua_State *L, sdr_weights *w, const char *stem);
extern const lsdr_param lsdr_save_pretrained_options[];

/* __gc and __close of every model type. */
int lsdr_model_box_gc(lua_State *L);

/* A model's .dtype as torch shows it: its torch_dtype when one was given, else
 * torch.float32 (what diffusers and transformers load weights into by default). */
void lsdr_push_model_dtype(lua_State *L, const sdr_weights *w);

/* Sets t[key] = value for config tables. */
void lsdr_set_int(lua_State *L, int t, const char *key, lua_Integer v);
void lsdr_set_num(lua_State *L, int t, const char *key, lua_Number v);
void lsdr_set_str(lua_State *L, int t, const char *key, const char *v);
void lsdr_set_int_list(lua_State *L, int t, const char *key, const int *v, int n);

/* Makes the table at t an output of diffusers' or transformers' kind (BaseOutput,
 * ModelOutput): besides its named fields, out[k] is the k-th of `fields` (a NULL-ended
 * list, in the class's order) that is not nil, as Python's out[k - 1] and the tuple
 * return_dict=False gives; unet(...)[1] is the sample. tname names the kind
 * ("UNet2DConditionOutput"); one metatable per kind. */
void lsdr_output_kind(lua_State *L, int t, const char *tname, const char *const *fields);

#endif
