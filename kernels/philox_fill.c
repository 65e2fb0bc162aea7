/* kernels/philox_fill.c — torch's CUDA random kernel, one thread after another. */
#include "kernels/philox_fill.h"

#include "kernels/half.h"   // sdr_f32_to_f16, sdr_f32_to_bf16
#include "kernels/philox.h" // sdr_philox_init, sdr_philox_draw4

enum { BLOCK = 256, UNROLL = 4 /* curand4_engine_calls */ };

void sdr_philox_fill(uint64_t seed, uint64_t offset, uint64_t grid, int normal, sdr_dtype dtype,
                     void *out, size_t n) {
  if (n == 0 || grid == 0)
    return;
  const uint64_t stride = (uint64_t)BLOCK * grid, step = stride * UNROLL;
  const uint64_t rounded = ((n - 1) / step + 1) * step;
  const uint64_t threads = stride < n ? stride : n; /* threads past n write nothing */
  for (uint64_t idx = 0; idx < threads; idx++) {
    sdr_philox_state st;
    sdr_philox_init(&st, seed, idx, offset);
    for (uint64_t li0 = idx; li0 < rounded; li0 += step) {
      float r[4];
      sdr_philox_draw4(&st, normal, r);
      for (uint64_t k = 0; k < UNROLL; k++) {
        uint64_t li = li0 + k * stride;
        if (li >= n)
          continue;
        float v = r[k];
        if (dtype == SDR_F16)
          ((uint16_t *)out)[li] = sdr_f32_to_f16(v);
        else if (dtype == SDR_BF16)
          ((uint16_t *)out)[li] = sdr_f32_to_bf16(v);
        else
          ((float *)out)[li] = v;
      }
    }
  }
}
