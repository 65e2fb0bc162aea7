/* bindings/save_pretrained.c — save_pretrained(save_directory, {variant = ...}) of a pipeline
 * (diffusers' DiffusionPipeline.save_pretrained: engine/pipeline_save.h) and of one model
 * (ModelMixin's and transformers' PreTrainedModel's: engine/model_save.h). */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/controlnet.h" // lsdr_to_controlnet, lsdr_is_multi_controlnet
#include "bindings/json_lua.h"   // lsdr_push_json
#include "bindings/lsdr.h"
#include "bindings/model_common.h"      // lsdr_model_save_pretrained
#include "bindings/pipeline_internal.h" // lsdr_check_pipe, lsdr_push_pipe_parts, lsdr_model_owner
#include "bindings/scheduler.h"         // lsdr_to_scheduler
#include "bindings/t2i_adapter.h"       // lsdr_to_t2i_adapter, lsdr_is_multi_adapter
#include "engine/model_save.h"
#include "engine/pipeline_save.h"

/* The folder (user argument 1) and the options (the table at stack index 3, filled), after
 * lsdr_args and lsdr_options; *variant NULL or the variant's name. */
static const char *read_args(lua_State *L, const char **variant) {
  const char *dir = lua_tostring(L, 2);
  if (!dir[0])
    lsdr_argerror(L, 1, "a folder name");
  lua_getfield(L, 3, "safe_serialization");
  if (!lua_toboolean(L, -1))
    lsdr_error(L, "safe_serialization = false (PyTorch's .bin files) is not written here; "
                  ".safetensors files load everywhere diffusers runs");
  lua_getfield(L, 3, "push_to_hub");
  if (lua_toboolean(L, -1))
    lsdr_error(L, "push_to_hub: uploading is not done from here; save the folder, then upload "
                  "it with `huggingface-cli upload`");
  lua_getfield(L, 3, "variant");
  *variant = lua_tostring(L, -1);
  if (*variant && (!(*variant)[0] || strchr(*variant, '/')))
    lsdr_error(L, "option 'variant': a name such as \"fp16\" expected, got \"%s\"", *variant);
  lua_pop(L, 3); /* the variant's string stays alive in the options table */
  return dir;
}

enum { MAX_NETS = 16 };

/* What the pipeline at idx saves: its class, scheduler, parts and nets. What the pointers
 * point into stays on the stack (the parts table, the scheduler, the nets). */
typedef struct save_spec {
  sdr_pipeline_save_spec s;
  sdr_weights *nets[MAX_NETS];
} save_spec;

/* The nets of a ControlNet or T2I-Adapter pipeline (one model, or a Multi class's list) into
 * sp, named as diffusers names their classes. */
static void read_nets(lua_State *L, int parts, lsdr_pipe *pp, save_spec *sp) {
  const int cn = lsdr_pipe_controlnet(pp);
  if (!cn && !lsdr_kind_has_adapter(pp->kind))
    return;
  sp->s.nets_key = cn ? "controlnet" : "adapter";
  lua_getfield(L, parts, sp->s.nets_key);
  const int v = lua_gettop(L);
  const int multi = cn ? lsdr_is_multi_controlnet(L, v) : lsdr_is_multi_adapter(L, v);
  sp->s.nets_class = cn ? (multi ? LSDR_MULTI_CONTROLNET : LSDR_CONTROLNET)
                        : (multi ? LSDR_MULTI_ADAPTER : LSDR_T2I_ADAPTER);
  /* diffusers names the library of a class in its pipelines folder by that folder */
  sp->s.nets_library = cn && multi ? "controlnet" : "diffusers";
  if (multi)
    lua_getfield(L, v, cn ? "nets" : "adapters");
  else {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, v);
    lua_rawseti(L, -2, 1);
  }
  const int list = lua_gettop(L);
  const int n = (int)lua_rawlen(L, list);
  if (n > MAX_NETS)
    lsdr_error(L, "%d nets: at most %d are saved", n, MAX_NETS);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, list, i + 1);
    if (cn) {
      sdr_controlnet *c = lsdr_to_controlnet(L, -1);
      sp->nets[i] = c ? &c->base.weights : NULL;
    } else {
      sdr_t2i_adapter *a = lsdr_to_t2i_adapter(L, -1);
      sp->nets[i] = a ? &a->weights : NULL;
    }
    lua_pop(L, 1);
    if (!sp->nets[i])
      lsdr_error(L, "the pipeline's %s %d is closed", sp->s.nets_key, i + 1);
  }
  sp->s.nets = sp->nets;
  sp->s.nnets = n;
}

static void spec_of(lua_State *L, int idx, const char *variant, save_spec *sp) {
  lsdr_pipe *pp = lsdr_check_pipe(L, idx);
  lsdr_pipe_own_config(pp);
  memset(sp, 0, sizeof *sp);
  lsdr_push_pipe_parts(L, idx);
  const int parts = lua_gettop(L);
  lua_getfield(L, parts, "scheduler");
  sp->s = (sdr_pipeline_save_spec){lsdr_pipe_class_name(pp), lsdr_to_scheduler(L, -1),
                                   !pp->no_safety_checker, !pp->no_feature_extractor, variant};
  if (!sp->s.scheduler)
    lsdr_error(L, "the pipeline has no scheduler");
  read_nets(L, parts, pp, sp);
}

int lsdr_push_pipe_config(lua_State *L, int idx) {
  save_spec sp;
  spec_of(L, idx, NULL, &sp);
  char *text = sdr_pipeline_model_index(lsdr_pipeline_models(L, idx), &sp.s);
  if (!text)
    return lsdr_engine_error(L);
  lua_pushstring(L, text); /* Lua's copy: a malformed text raises without leaking ours */
  free(text);
  lsdr_push_json(L, lua_tostring(L, -1));
  return 1;
}

int lsdr_pipe_save_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  const char *variant;
  const char *dir = read_args(L, &variant);
  save_spec sp;
  spec_of(L, 1, variant, &sp);
  if (sdr_pipeline_save(p, &sp.s, dir) != 0)
    return lsdr_engine_error(L);
  return 0;
}

int lsdr_model_save_pretrained(lua_State *L, sdr_weights *w, const char *stem) {
  const char *variant;
  const char *dir = read_args(L, &variant);
  sdr_pipeline *owner = lsdr_model_owner(L, 1);
  if ((owner && sdr_pipeline_save_ready(owner) != 0) || sdr_model_save(w, dir, stem, variant) != 0)
    return lsdr_engine_error(L);
  return 0;
}

const lsdr_param lsdr_save_pretrained_options[] = {
    {"safe_serialization", "boolean", "true", ".safetensors files (false, .bin, is refused)"},
    {"variant", "string", "nil",
     "\"fp16\": weights named diffusion_pytorch_model.fp16.safetensors"},
    {"max_shard_size", "integer|string", "nil", "accepted; each model is one file"},
    {"push_to_hub", "boolean", "false", "refused: upload the folder yourself"},
    {0}};
