/* tests/cuda/sdrepl_device.c — `sdrepl FILE.lua [args]` whose "cuda" is the emulated
 * GPU of emu_backend.h, so that notebooks run with pipe:to("cuda") through the Lua
 * API on any machine: the bindings' device paths (moving a pipeline and its
 * components, the default CUDA generator, tensors and images coming back from
 * the device) run in CI, not only on a GPU machine.
 *
 *   sdrepl_device FILE.lua [args]
 *
 * The emulated GPU answers torch.cuda.is_available() with true and
 * device_count() with 1, and lays out torch's CUDA random numbers for an
 * H100/H200 (132 multiprocessors of 2048 threads), as the CPU emulation does
 * without a GPU. The script also gets `emulated_gpu_stats()`: a table of what
 * the device did (ops_run, ops_f16, ops_bf16, graphs, graph_replays, uploads,
 * downloads, live_allocs), so a test can see that the work ran there.
 * Exit status: 0 when every cell ran, 1 otherwise.
 */
#include <stdio.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bindings/bindings.h"    // lsdr_open_all
#include "bindings/cuda_device.h" // lsdr_cuda_device_set
#include "emu_backend.h"          // sdr_emu_backend_create, sdr_emu_backend_stats
#include "repl/display.h"         // display_open
#include "repl/progress_bar.h"    // progress_bar_install
#include "repl/run.h"             // run_install_sigint
#include "repl/script.h"          // script_run_file

static sdr_backend *emulated; /* the one the bindings made, while it lives */

static int emu_count(void) { return 1; }
static const char *emu_reason(void) { return "an emulated GPU is always there"; }

static sdr_backend *emu_create(void) {
  emulated = sdr_emu_backend_create();
  return emulated;
}

static void emu_destroy(sdr_backend *be) {
  if (be == emulated)
    emulated = NULL;
  sdr_emu_backend_destroy(be);
}

static int emu_geometry(sdr_cuda_geometry *g) {
  g->sm_count = 132;
  g->max_threads_per_sm = 2048;
  return 0;
}

static const lsdr_cuda_device emu_gpu = {emu_count, emu_reason, emu_create, emu_destroy,
                                         emu_geometry};

static int stats(lua_State *L) {
  sdr_emu_stats s = {0};
  if (emulated)
    sdr_emu_backend_stats(emulated, &s);
  lua_createtable(L, 0, 8);
  const struct {
    const char *name;
    long long v;
  } f[] = {{"ops_run", s.ops_run},     {"ops_f16", s.ops_f16},
           {"ops_bf16", s.ops_bf16},   {"graphs", s.graphs},
           {"graph_replays", s.graph_replays}, {"uploads", s.uploads},
           {"downloads", s.downloads}, {"live_allocs", s.live_allocs}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    lua_pushinteger(L, f[i].v);
    lua_setfield(L, -2, f[i].name);
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sdrepl_device FILE.lua [args]\n");
    return 2;
  }
  lsdr_cuda_device_set(&emu_gpu);
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "sdrepl_device: cannot create the Lua state\n");
    return 1;
  }
  lsdr_open_all(L);
  display_open(L);
  progress_bar_install();
  run_install_sigint(L);
  lua_register(L, "emulated_gpu_stats", stats);
  /* arg as sdrepl builds it: arg[0] the script, arg[1..] what follows it */
  lua_createtable(L, argc - 2, 1);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  script_options opts = {NULL, 0};
  int status = script_run_file(L, argv[1], &opts);
  lua_close(L);
  return status;
}
