/* bindings/generator.c — torch.Generator and the default generators torch.manual_seed seeds. */
#include "bindings/generator.h"

#include <string.h>

#include <lauxlib.h>

#include "bindings/cuda_device.h" // lsdr_cuda_device_get
#include "bindings/lsdr.h"        // lsdr_register, lsdr_args
#include "bindings/tensor.h"      // lsdr_parse_device

static const char DEFAULTS_KEY[] = "sdrepl.default_generators"; /* {cpu=, cuda=} */

sdr_generator *lsdr_to_generator(lua_State *L, int idx) {
  return luaL_testudata(L, idx, LSDR_GENERATOR);
}

static sdr_generator *push_generator(lua_State *L, sdr_generator_device d) {
  sdr_generator *g = lua_newuserdatauv(L, sizeof *g, 0);
  sdr_generator_init(g, d);
  luaL_setmetatable(L, LSDR_GENERATOR);
  return g;
}

void lsdr_generator_fit_device(sdr_generator *g) {
  /* asked once: a GPU's launch geometry; without one the generator keeps an H100/H200's */
  static int known = -1;
  static sdr_cuda_geometry geometry;
  if (!g || g->device != SDR_GENERATOR_CUDA)
    return;
  if (known < 0) {
    const lsdr_cuda_device *gpu = lsdr_cuda_device_get();
    known = gpu && gpu->geometry(&geometry) == 0;
  }
  if (known)
    g->geometry = geometry;
}

/* Pushes the registry table {cpu = Generator, cuda = Generator}, made on first use. */
static void push_defaults(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, DEFAULTS_KEY) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_newtable(L);
  push_generator(L, SDR_GENERATOR_CPU);
  lua_setfield(L, -2, "cpu");
  push_generator(L, SDR_GENERATOR_CUDA);
  lua_setfield(L, -2, "cuda");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, DEFAULTS_KEY);
}

sdr_generator *lsdr_default_generator(lua_State *L, sdr_generator_device d) {
  push_defaults(L);
  lua_getfield(L, -1, d == SDR_GENERATOR_CPU ? "cpu" : "cuda");
  sdr_generator *g = lua_touserdata(L, -1); /* the registry keeps it alive */
  lua_pop(L, 2);
  return g;
}

/* torch.Generator(device="cpu") */
static int generator_new(lua_State *L) {
  lsdr_args(L);
  if (lua_istable(L, 1)) { /* torch.Generator{device = "cuda"}: the keyword spelled as Lua does */
    lua_getfield(L, 1, "device");
    lua_replace(L, 1);
    if (lua_isnil(L, 1)) {
      lua_pushliteral(L, "cpu");
      lua_replace(L, 1);
    }
  }
  int d = lsdr_parse_device(lua_tostring(L, 1));
  if (d < 0)
    return lsdr_argerror(L, 1, "\"cpu\" or \"cuda\"");
  push_generator(L, d == SDR_DEVICE_CPU ? SDR_GENERATOR_CPU : SDR_GENERATOR_CUDA);
  return 1;
}

static uint64_t check_seed(lua_State *L, int idx) {
  lua_Integer s = lua_tointeger(L, idx);
  /* torch takes any Python int and keeps it modulo 2^64 (negative seeds wrap). */
  return (uint64_t)s;
}

static int g_manual_seed(lua_State *L) {
  lsdr_args(L);
  sdr_generator_manual_seed(lsdr_to_generator(L, 1), check_seed(L, 2));
  lua_settop(L, 1);
  return 1;
}

static int g_initial_seed(lua_State *L) {
  lsdr_args(L);
  lua_pushinteger(L, (lua_Integer)lsdr_to_generator(L, 1)->seed);
  return 1;
}

static int g_tostring(lua_State *L) {
  sdr_generator *g = luaL_checkudata(L, 1, LSDR_GENERATOR);
  lua_pushfstring(L, "<torch.Generator device=%s seed=%I>",
                  g->device == SDR_GENERATOR_CPU ? "cpu" : "cuda", (lua_Integer)g->seed);
  return 1;
}

static int g_index(lua_State *L) {
  sdr_generator *g = luaL_checkudata(L, 1, LSDR_GENERATOR);
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__methods");
  if (lua_getfield(L, -1, luaL_checkstring(L, 2)) != LUA_TNIL)
    return 1;
  if (strcmp(lua_tostring(L, 2), "device") == 0) {
    lua_pushstring(L, g->device == SDR_GENERATOR_CPU ? "cpu" : "cuda");
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* torch.manual_seed(s): seeds every default generator (CPU and CUDA), as torch does. */
static int torch_manual_seed(lua_State *L) {
  lsdr_args(L);
  uint64_t s = check_seed(L, 1);
  sdr_generator_manual_seed(lsdr_default_generator(L, SDR_GENERATOR_CPU), s);
  sdr_generator_manual_seed(lsdr_default_generator(L, SDR_GENERATOR_CUDA), s);
  push_defaults(L);
  lua_getfield(L, -1, "cpu");
  return 1;
}

static int torch_initial_seed(lua_State *L) {
  lsdr_args(L);
  lua_pushinteger(L, (lua_Integer)lsdr_default_generator(L, SDR_GENERATOR_CPU)->seed);
  return 1;
}

static const lsdr_func generator_methods[] = {
    {"torch.Generator:manual_seed",
     g_manual_seed,
     "Seeds this generator; returns it.",
     {{"seed", "integer"}}},
    {"torch.Generator:initial_seed", g_initial_seed, "The seed it was last seeded with."},
    {0}};

static const lsdr_func torch_funcs[] = {
    {"torch.Generator",
     generator_new,
     "A random number generator for a device, as torch.Generator (seed it with :manual_seed).",
     {{"device", "string|table", "\"cpu\"", "or {device = ...}"}}},
    {"torch.manual_seed",
     torch_manual_seed,
     "Seeds the default generators of every device; returns the CPU one.",
     {{"seed", "integer"}}},
    {"torch.initial_seed", torch_initial_seed, "The seed of the default CPU generator."},
    {0}};

void lsdr_open_generator(lua_State *L, int torch_idx) {
  torch_idx = lua_absindex(L, torch_idx);
  if (luaL_newmetatable(L, LSDR_GENERATOR)) {
    lua_newtable(L);
    lsdr_register(L, -1, generator_methods);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__fields");
    lua_setfield(L, -2, "__methods");
    lua_pushcfunction(L, g_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, g_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lsdr_register(L, torch_idx, torch_funcs);
}
