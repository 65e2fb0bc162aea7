/* engine/half.h — half and bfloat16 conversions live with the kernels; this name
 * stays for the engine code that already includes it. */
#ifndef SDR_ENGINE_HALF_H
#define SDR_ENGINE_HALF_H
#include "kernels/half.h" // sdr_f16_to_f32, sdr_f32_to_f16, sdr_bf16_to_f32, sdr_f32_to_bf16
#endif
