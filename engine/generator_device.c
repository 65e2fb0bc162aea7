/* engine/generator_device.c — a generator's draw put into a tensor on any backend. */
#include "engine/generator_device.h"

#include <stdlib.h>

#include "engine/error.h"          // sdr_fail
#include "engine/generator_cuda.h" // sdr_cuda_launch_for
#include "kernels/half.h"          // sdr_f16_to_f32, sdr_bf16_to_f32, sdr_f32_to_f16

/* On the device: torch's kernel launched as torch launches it, the offset moved as
 * torch moves it. */
static int fill_on_device(sdr_generator *g, sdr_backend *be, sdr_tensor *dst, int normal) {
  size_t n = (size_t)sdr_tensor_numel(dst);
  if (n == 0)
    return 0;
  sdr_cuda_launch l = sdr_cuda_launch_for(&g->geometry, n);
  if (sdr_philox(be, dst, g->seed, g->philox_offset, l.grid, normal) != 0)
    return -1;
  g->philox_offset += l.advance;
  return 0;
}

/* On the host: drawn in dtype, held as out's dtype, uploaded. */
static int fill_on_host(sdr_generator *g, sdr_backend *be, sdr_tensor *out, sdr_dtype dtype,
                        int normal) {
  size_t n = (size_t)sdr_tensor_numel(out);
  float *f = malloc((n ? n : 1) * sizeof *f);
  uint16_t *h = dtype == SDR_F32 ? NULL : malloc((n ? n : 1) * sizeof *h);
  uint16_t *o = out->dtype == SDR_F32 ? NULL : malloc((n ? n : 1) * sizeof *o);
  int rc = -1;
  if (!f || (dtype != SDR_F32 && !h) || (out->dtype != SDR_F32 && !o)) {
    sdr_fail("out of memory for %zu random numbers", n);
    goto done;
  }
  if (!normal)
    sdr_generator_rand_f32(g, f, n);
  else if (dtype == SDR_F16)
    sdr_generator_randn_f16(g, h, n);
  else if (dtype == SDR_BF16)
    sdr_generator_randn_bf16(g, h, n);
  else
    sdr_generator_randn_f32(g, f, n);
  if (h)
    for (size_t i = 0; i < n; i++)
      f[i] = dtype == SDR_F16 ? sdr_f16_to_f32(h[i]) : sdr_bf16_to_f32(h[i]);
  if (o) /* exact when drawn in out's dtype; else rounded as torch's .to() rounds */
    for (size_t i = 0; i < n; i++)
      o[i] = out->dtype == SDR_F16 ? sdr_f32_to_f16(f[i]) : sdr_f32_to_bf16(f[i]);
  rc = sdr_upload(be, out->data, o ? (void *)o : (void *)f, sdr_tensor_nbytes(out));
done:
  free(f);
  free(h);
  free(o);
  return rc;
}

int sdr_generator_fill(sdr_generator *g, sdr_backend *be, sdr_arena *scratch, sdr_tensor *out,
                       sdr_dtype dtype, int normal) {
  if (!g)
    return sdr_fail("randn: no generator");
  if (dtype != SDR_F32 && dtype != SDR_F16 && dtype != SDR_BF16)
    return sdr_fail("randn: draws float32, float16 or bfloat16, not %s", sdr_dtype_name(dtype));
  if (!normal && dtype != SDR_F32)
    return sdr_fail("rand: draws float32 only, not %s", sdr_dtype_name(dtype));
  if (g->device != SDR_GENERATOR_CUDA || !sdr_philox_supported(be))
    return fill_on_host(g, be, out, dtype, normal);
  if (dtype == out->dtype)
    return fill_on_device(g, be, out, normal);
  if (!scratch)
    return sdr_fail("randn: drawing %s for a %s tensor needs scratch memory", sdr_dtype_name(dtype),
                    sdr_dtype_name(out->dtype));
  sdr_arena_mark m = sdr_arena_get_mark(scratch);
  sdr_tensor drawn;
  int rc = sdr_arena_tensor(scratch, &drawn, dtype, out->ndim, out->shape);
  if (rc == 0)
    rc = fill_on_device(g, be, &drawn, normal);
  if (rc == 0)
    rc = sdr_cast(be, out, &drawn);
  sdr_arena_release(scratch, m);
  return rc;
}

int sdr_generator_fill_batch(sdr_generator *const *gens, int ngens, sdr_backend *be,
                             sdr_arena *scratch, sdr_tensor *out, sdr_dtype dtype) {
  const int64_t B = out->ndim > 0 ? out->shape[0] : 1;
  const int each = ngens > 1 && ngens == B;
  for (int64_t b = 0; b < (each ? B : 1); b++) {
    sdr_tensor part = *out;
    if (each && sdr_tensor_narrow0(&part, out, b, 1) != 0)
      return -1;
    if (sdr_generator_fill(gens[each ? b : 0], be, scratch, &part, dtype, 1) != 0)
      return -1;
  }
  return 0;
}
