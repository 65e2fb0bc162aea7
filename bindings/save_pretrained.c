/* bindings/save_pretrained.c — save_pretrained(save_directory, {variant = ...}) of a pipeline
 * (diffusers' DiffusionPipeline.save_pretrained: engine/pipeline_save.h) and of one model
 * (ModelMixin's and transformers' PreTrainedModel's: engine/model_save.h). */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings/json_lua.h" // lsdr_push_json
#include "bindings/lsdr.h"
#include "bindings/model_common.h"      // lsdr_model_save_pretrained
#include "bindings/pipeline_internal.h" // lsdr_check_pipe, lsdr_push_pipe_parts, lsdr_model_owner
#include "bindings/scheduler.h"         // lsdr_to_scheduler
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

/* The pipeline at idx as it is saved: its class, scheduler and parts. The scheduler stays on
 * the stack (pushed with the parts table). */
static sdr_pipeline_save_spec spec_of(lua_State *L, int idx, const char *variant) {
  lsdr_pipe *pp = lsdr_check_pipe(L, idx);
  lsdr_push_pipe_parts(L, idx);
  lua_getfield(L, -1, "scheduler");
  const sdr_pipeline_save_spec spec = {lsdr_pipe_class_name(pp), lsdr_to_scheduler(L, -1),
                                       !pp->no_safety_checker, !pp->no_feature_extractor, variant};
  if (!spec.scheduler)
    lsdr_error(L, "the pipeline has no scheduler");
  return spec;
}

int lsdr_push_pipe_config(lua_State *L, int idx) {
  lsdr_pipe *pp = lsdr_check_pipe(L, idx);
  const sdr_pipeline_save_spec spec = spec_of(L, idx, NULL);
  char *text = sdr_pipeline_model_index(lsdr_pipeline_models(L, idx), &spec);
  if (!text)
    return lsdr_engine_error(L);
  lua_pushstring(L, text); /* Lua's copy: a malformed text raises without leaking ours */
  free(text);
  lsdr_push_json(L, lua_tostring(L, -1));
  lua_remove(L, -2);
  /* the nets a ControlNet or T2I-Adapter pipeline holds: [library, class] as diffusers' */
  const char *nets = lsdr_pipe_controlnet(pp)          ? "controlnet"
                     : lsdr_kind_has_adapter(pp->kind) ? "adapter"
                                                       : NULL;
  if (nets) {
    lua_getfield(L, -3, nets); /* the parts table, under the scheduler */
    lua_createtable(L, 2, 0);
    lua_pushliteral(L, "diffusers");
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, lsdr_typename(L, -2));
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -3, nets);
    lua_pop(L, 1);
  }
  return 1;
}

int lsdr_pipe_save_pretrained(lua_State *L) {
  lsdr_args(L);
  lsdr_options(L, 2);
  lsdr_pipe *pp = lsdr_check_pipe(L, 1);
  sdr_pipeline *p = lsdr_pipeline_models(L, 1);
  const char *variant;
  const char *dir = read_args(L, &variant);
  if (lsdr_pipe_controlnet(pp) || lsdr_kind_has_adapter(pp->kind))
    return lsdr_error(L,
                      "a %s is not saved with its nets: save %s.from_pipe(pipe) and each net "
                      "with its own save_pretrained",
                      lsdr_pipe_class_name(pp), lsdr_kind_xl(pp->kind) ? LSDR_XL : LSDR_T2I);
  const sdr_pipeline_save_spec spec = spec_of(L, 1, variant);
  if (sdr_pipeline_save(p, &spec, dir) != 0)
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
