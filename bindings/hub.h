/* bindings/hub.h — the Hugging Face hub for Lua: login() and from_pretrained's repo ids.
 *
 *   login()                      notebook_login: asks for a token without echo,
 *   login{token = "hf_..."}      checks it at {HF_ENDPOINT}/api/whoami-v2 and
 *                                saves it to $HF_HOME/token, where huggingface_hub reads it
 *   X.from_pretrained("org/name", {revision = "fp16", token = ..., cache_dir = ...,
 *                                  local_files_only = true})
 */
#ifndef SDR_BINDINGS_HUB_H
#define SDR_BINDINGS_HUB_H

#include <lua.h>

#include "engine/hub.h" // sdr_hub_kind

/* The hub's options of every from_pretrained, to put in its lsdr_param list. */
#define LSDR_HUB_PARAMS                                                                            \
  {"revision", "string", "nil", "branch, tag or commit on the hub (default \"main\")"},            \
      {"cache_dir", "string", "nil", "hub cache folder (default $HF_HUB_CACHE)"},                  \
      {"token", "string|boolean", "nil",                                                           \
       "hub token; nil: HF_TOKEN or the one login() saved; false: none"},                          \
  {                                                                                                \
    "local_files_only", "boolean", "false", "only the cache, never the network"                    \
  }

/* Registers login and notebook_login as globals. */
void lsdr_open_hub(lua_State *L);

/* from_pretrained's first argument (at name_idx) as a local folder: itself
 * when it is a folder (a path that exists wins, as in diffusers) or not a
 * repo id; else the hub snapshot holding what `kind` needs, fetched as
 * needed. Reads revision, subfolder, variant, use_safetensors, cache_dir,
 * token and local_files_only from the options table at opts_idx (0: none).
 * Pushes the folder and returns it; raises a Lua error saying what to do. */
const char *lsdr_hub_resolve(lua_State *L, int name_idx, int opts_idx, sdr_hub_kind kind);

#endif
