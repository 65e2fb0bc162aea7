/* engine/lora.h — LoRA adapters as diffusers 0.27 loads them through PEFT 0.10
 * (loaders/lora.py LoraLoaderMixin, utils/state_dict_utils.py, peft/tuners/lora/layer.py).
 *
 * An adapter is, for each linear or conv weight W (out, in...) it targets, a pair
 * down (r, in...) and up (out, r...), and PEFT's `scaling` for it (lora_alpha / r,
 * times set_adapters' weight and a call's scale). PEFT adds scaling * up(down(x))
 * to the layer's output; that is x through W + scaling * up @ down, so here the
 * sum is made into the weight itself (on the model's backend) whenever what is
 * active or how much changes: every step then runs at the speed of the model
 * without LoRA. The original weight stays where it was bound, and is the weight
 * again once nothing is added.
 *
 * PEFT's state is kept as PEFT keeps it, per layer: which adapters are active
 * (a second adapter loaded onto layers that already have one is not, until
 * set_adapters), whether adapters are disabled, what fuse_lora merged into the
 * base weight (and with which scaling; unfuse takes back the current one), so
 * every sequence of calls gives diffusers' weights.
 */
#ifndef SDR_ENGINE_LORA_H
#define SDR_ENGINE_LORA_H

#include <stdint.h>

#include "engine/clip_text_model.h" // sdr_clip_text_model
#include "engine/unet.h"            // sdr_unet

/* The models an adapter goes into; TEXT_ENCODER_2 is SDXL's second text encoder. */
typedef enum sdr_lora_part {
  SDR_LORA_UNET,
  SDR_LORA_TEXT_ENCODER,
  SDR_LORA_TEXT_ENCODER_2,
  SDR_LORA_NPARTS
} sdr_lora_part;

/* Each part's name as diffusers' state dicts and get_list_adapters spell it. */
extern const char *const sdr_lora_part_names[SDR_LORA_NPARTS];

/* One tensor of a LoRA file, as float32 values. */
typedef struct sdr_lora_entry {
  char *key;
  int ndim;
  int64_t shape[4];
  float *values;
} sdr_lora_entry;

/* A LoRA state dict: every tensor of a file, in the order diffusers sees them
 * (safetensors' keys sorted, a torch.save file's as stored). */
typedef struct sdr_lora_file {
  sdr_lora_entry *e;
  size_t n;
} sdr_lora_file;

int sdr_lora_file_read(const char *path, sdr_lora_file *f);
/* Keys in byte order, as safetensors' load_file gives them (also for a Lua table's, which
 * keeps no order). */
void sdr_lora_file_sort(sdr_lora_file *f);
/* Takes key (copied) and values (n floats, copied). */
int sdr_lora_file_add(sdr_lora_file *f, const char *key, int ndim, const int64_t *shape,
                      const float *values);
void sdr_lora_file_free(sdr_lora_file *f);

/* One targeted layer of one adapter. */
typedef struct sdr_lora_pair {
  int target; /* the weight it changes: index into sdr_lora.targets */
  int rank;
  int64_t rows, cols; /* W as a matrix: out x (in * kh * kw) */
  float *down, *up;   /* (rank, cols) and (rows, rank), float32 */
  double alpha;       /* lora_alpha as PEFT's config gives this layer */
  double scaling;     /* PEFT's scaling[adapter] */
  double fused;       /* what merge() added to the base weight, less what unmerge() took */
  int active, merged;
  double applied; /* the coefficient the weight holds now */
} sdr_lora_pair;

/* An adapter of one model (the UNet's and each text encoder's parts of a file are
 * apart, as PEFT keeps one config per model); name NULL: only what fuse_lora left in the
 * base weights after the adapter was unloaded or deleted. */
typedef struct sdr_lora_adapter {
  char *name;
  sdr_lora_part part;
  sdr_lora_pair *pairs;
  int npairs;
} sdr_lora_adapter;

/* A weight some adapter changes, and what it was bound to (never removed: pairs refer to
 * them by index). */
typedef struct sdr_lora_target {
  sdr_lora_part part;
  char *weight;    /* its name in its model: "...attn1.to_q.weight" */
  sdr_tensor orig; /* the bound tensor */
  void *buf;       /* the sum the model uses instead, or NULL */
  int stale;       /* recompute: the models moved, or a load */
  /* a UNet weight its forward uses before scale_lora_layers (the time and added
   * embeddings, conv_in): a call's cross_attention_kwargs scale never reaches it */
  int before_scale;
} sdr_lora_target;

typedef struct sdr_lora {
  sdr_lora_adapter *adapters;
  int nadapters;
  int disabled[SDR_LORA_NPARTS];
  sdr_lora_target *targets;
  int ntargets;
  /* the pipeline's lora_scale: the last scale a call gave (encode_prompt keeps it), which
   * load_lora_weights then puts on the text encoder's active layers (scale_lora_layers) */
  int has_last_scale;
  double last_scale;
  /* the names the last set_adapters gave, in order (PEFT's active_adapters keeps the names
   * as given, also those a layer has no pair of), less those deleted since */
  char **set_names;
  int nset;
} sdr_lora;

/* The models the adapters go into (each may be NULL where a pipeline has none). */
typedef struct sdr_lora_models {
  sdr_unet *unet;
  sdr_clip_text_model *text_encoder;
  sdr_clip_text_model *text_encoder_2;
  /* an SDXL pipeline's: its loader gives lora_state_dict the UNet's config, which maps
   * Kohya's SGM block names (input_blocks_4_1_...) onto diffusers' */
  int sdxl;
} sdr_lora_models;

/* The weights of the model part stands for, or NULL where there is none. */
sdr_weights *sdr_lora_models_weights(const sdr_lora_models *m, sdr_lora_part part);

/* _maybe_map_sgm_blocks_to_diffusers on one Kohya UNet name with its prefix gone
 * ("input_blocks_4_1_transformer_blocks_0_attn1_to_q", underscores for dots), and the
 * resnet and sampler names _convert_kohya_lora_to_diffusers then renames (in_layers_2:
 * conv1, emb_layers_1: time_emb_proj, out_layers_3: conv2, skip_connection: conv_shortcut,
 * op: conv), written to out as the model's name flattened the same way.
 * layers_per_block: the UNet config's. */
int sdr_lora_sgm_name(const char *flat, size_t len, int layers_per_block, char *out, size_t cap);

/* load_lora_weights: the file's UNet and text encoders' pairs become adapters named
 * name (NULL: "default_<n>", n the adapters the model's first LoRA layer has), in
 * diffusers' formats (PEFT's lora_A/lora_B, diffusers' lora.down/lora.up,
 * lora_linear_layer, the attention processors' to_q_lora, Kohya's lora_unet_/lora_te_
 * with alphas). Nothing changes on failure. *warning: what diffusers logs (keys no
 * layer takes), malloc'd, or NULL. */
int sdr_lora_load(sdr_lora *l, const sdr_lora_models *m, const sdr_lora_file *f, const char *name,
                  char **warning);

/* The weights made again for what the state says (only where it changed). */
int sdr_lora_apply(sdr_lora *l, const sdr_lora_models *m);
/* The same for one model's weights: what runs it calls this first, so a call's scale taken
 * off afterwards costs nothing until the model runs again (and nothing at all when the next
 * call asks for the same scale). */
int sdr_lora_apply_part(sdr_lora *l, const sdr_lora_models *m, sdr_lora_part part);
/* Every weight back to its bound tensor (before the models are freed or moved); the next
 * apply makes them again. */
void sdr_lora_release(sdr_lora *l, const sdr_lora_models *m);
void sdr_lora_free(sdr_lora *l, const sdr_lora_models *m);

/* PEFT's scale_layer(s) and unscale_lora_layers(s) on one model's layers: what a call's
 * cross_attention_kwargs["scale"] (lora_scale) does around the text encoder and the UNet
 * (for the UNet, the layers that ran before its forward scaled them are left out; the reset
 * of unscale_lora_layers(0) reaches every layer). */
void sdr_lora_scale(sdr_lora *l, sdr_lora_part part, double s);
void sdr_lora_unscale(sdr_lora *l, sdr_lora_part part, double s);

/* set_adapters(names, weights): those active with those weights, the others not; a name
 * no adapter of the UNet has is an error (as diffusers' UNet says), nothing changed. */
int sdr_lora_set_adapters(sdr_lora *l, const char *const *names, const double *weights, int n);
void sdr_lora_enable(sdr_lora *l, int enabled);
/* fuse_lora: parts[i] says whether part i is fused; names NULL: the active adapters. */
int sdr_lora_fuse(sdr_lora *l, const int *parts, double lora_scale, int safe_fusing,
                  const char *const *names, int n);
void sdr_lora_unfuse(sdr_lora *l, const int *parts);
int sdr_lora_delete(sdr_lora *l, const char *const *names, int n);
/* unload_lora_weights: every adapter goes; what was fused stays in the weights. */
void sdr_lora_unload(sdr_lora *l);

/* get_active_adapters: the names active on the UNet's first LoRA layer, NULL-terminated
 * (malloc'd array of borrowed names). */
const char **sdr_lora_active(const sdr_lora *l);

/* _best_guess_weight_name over a folder's or repo's files: the one LoRA file with that
 * extension ("scheduler", "optimizer", "checkpoint" in a name rule it out;
 * pytorch_lora_weights.* is preferred), index into files; -1 none, -2 more than one (an
 * error, sdr_fail'ed). */
int sdr_lora_best_guess(const char *const *files, size_t n, const char *ext);
/* lora_state_dict's choice with no weight_name: the .safetensors best guess, else the .bin
 * one (use_safetensors 1: only the first, 0: only the second, -1: both); the same results. */
int sdr_lora_choose_file(const char *const *files, size_t n, int use_safetensors);

#endif
