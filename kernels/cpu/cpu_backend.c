/* kernels/cpu/cpu_backend.c — the CPU backend: its table of ops, memory and workspace.
 *
 * Memory is ordinary host memory (64-byte aligned, for AVX-512 loads); upload and
 * download are copies, sync has nothing to wait for.
 *
 * OpenBLAS picks its kernels when it is loaded (AVX-512 ones where the CPU has
 * them) unless OPENBLAS_CORETYPE names a core; that choice is the user's and is
 * left alone. Threads: see cpu_internal.h.
 */
#include "kernels/cpu/cpu_backend.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/error.h"       // sdr_fail
#include "kernels/philox_fill.h" // sdr_philox_fill

int cpu_threads(void) { return omp_get_max_threads(); }

/* ---- memory ---- */

static void *cpu_alloc(sdr_backend *be, size_t bytes) {
  (void)be;
  size_t n = (bytes + 63) / 64 * 64;
  void *p = n >= bytes ? aligned_alloc(64, n ? n : 64) : NULL;
  if (!p)
    sdr_fail("out of memory allocating %zu bytes", bytes);
  return p;
}

static void cpu_free(sdr_backend *be, void *ptr) {
  (void)be;
  free(ptr);
}

static int cpu_copy(sdr_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  memmove(dst, src, bytes);
  return 0;
}

static int cpu_sync(sdr_backend *be) {
  (void)be;
  return 0;
}

/* Grows, never shrinks; the old contents are not kept (scratch holds nothing between ops). */
static int cpu_reserve_workspace(sdr_backend *be, size_t bytes) {
  cpu_state *st = cpu_state_of(be);
  if (bytes <= st->ws_bytes)
    return 0;
  void *p = cpu_alloc(be, bytes);
  if (!p)
    return sdr_fail_prefix("sdr_reserve_workspace: ");
  free(st->ws);
  st->ws = p;
  st->ws_bytes = bytes;
  return 0;
}

/* torch's CUDA randn on the host: what a CUDA generator draws for a CPU tensor. */
static int cpu_philox(sdr_backend *be, sdr_tensor *out, uint64_t seed, uint64_t offset,
                      uint64_t grid, int normal) {
  (void)be;
  sdr_philox_fill(seed, offset, grid, normal, out->dtype, out->data, (size_t)sdr_tensor_numel(out));
  return 0;
}

static const sdr_backend_ops cpu_ops = {
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .sync = cpu_sync,
    .reserve_workspace = cpu_reserve_workspace,
    .linear = cpu_linear,
    .bmm = cpu_bmm,
    .conv2d = cpu_conv2d,
    .group_norm = cpu_group_norm,
    .layer_norm = cpu_layer_norm,
    .attention = cpu_attention,
    .softmax = cpu_softmax,
    .unary = cpu_unary,
    .geglu = cpu_geglu,
    .binary = cpu_binary,
    .affine = cpu_affine,
    .upsample_nearest2x = cpu_upsample_nearest2x,
    .concat = cpu_concat,
    .permute = cpu_permute,
    .cast = cpu_cast,
    .embedding = cpu_embedding,
    .timestep_embedding = cpu_timestep_embedding,
    .fill = cpu_fill,
    .pad2d = cpu_pad2d,
    .philox = cpu_philox,
};

sdr_backend *sdr_cpu_backend_create(void) {
  cpu_vmath_init(); /* each time, so a test can switch paths with SDREPL_CPU_ISA */
  sdr_backend *be = calloc(1, sizeof *be);
  cpu_state *st = calloc(1, sizeof *st);
  if (!be || !st) {
    free(be);
    free(st);
    sdr_fail("sdr_cpu_backend_create: out of memory");
    return NULL;
  }
  be->name = "cpu";
  be->device = SDR_DEVICE_CPU;
  be->act_dtypes = 1u << SDR_F32;
  be->ops = &cpu_ops;
  be->impl = st;
  if (cpu_reserve_workspace(be, CPU_DEFAULT_WORKSPACE) < 0) {
    sdr_cpu_backend_destroy(be);
    return NULL;
  }
  return be;
}

void sdr_cpu_backend_destroy(sdr_backend *be) {
  if (!be)
    return;
  cpu_state *st = cpu_state_of(be);
  if (st)
    free(st->ws);
  free(st);
  free(be);
}
