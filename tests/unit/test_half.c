/* engine/half: exhaustive round trips and rounding to nearest even. */
#include <math.h>

#include "check.h"
#include "kernels/dtype.h"
#include "kernels/half.h"

int main(void) {
  /* Every half converts to float and back to itself (NaNs stay NaN). */
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    float f = sdr_f16_to_f32((uint16_t)h);
    uint16_t back = sdr_f32_to_f16(f);
    if (isnan(f) ? !isnan(sdr_f16_to_f32(back)) : back != h)
      bad++;
  }
  CHECK(bad == 0);
  CHECK(sdr_f16_to_f32(0x3c00) == 1.0f);
  CHECK(sdr_f16_to_f32(0x0001) == ldexpf(1, -24));
  CHECK(sdr_f16_to_f32(0x7bff) == 65504.0f);
  /* Ties go to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10. */
  CHECK(sdr_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00);
  CHECK(sdr_f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02);
  CHECK(sdr_f32_to_f16(65520.0f) == 0x7c00); /* rounds up to infinity */
  CHECK(sdr_f32_to_f16(65519.0f) == 0x7bff);
  CHECK(sdr_f32_to_f16(ldexpf(1, -25)) == 0x0000);             /* tie to even (zero) */
  CHECK(sdr_f32_to_f16(ldexpf(1, -25) * 1.0001f) == 0x0001);   /* just above the tie */
  CHECK(sdr_f32_to_f16(-0.0f) == 0x8000);
  CHECK(sdr_f32_to_bf16(1.0f) == 0x3f80);
  CHECK(sdr_f32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80); /* tie to even */
  CHECK(sdr_f32_to_bf16(1.0f + 3 * ldexpf(1, -8)) == 0x3f82);
  CHECK(sdr_bf16_to_f32(0x3f80) == 1.0f);
  CHECK(isnan(sdr_bf16_to_f32(sdr_f32_to_bf16(NAN))));
  CHECK(sdr_dtype_size(SDR_BF16) == 2 && sdr_dtype_size(SDR_I64) == 8);
  CHECK(sdr_dtype_from_name("torch.float16") == SDR_F16 && sdr_dtype_from_name("half") == SDR_F16);
  CHECK(sdr_dtype_from_name("float8") == -1);
  CHECK(sdr_dtype_from_safetensors("BF16") == SDR_BF16);
  return check_exit();
}
