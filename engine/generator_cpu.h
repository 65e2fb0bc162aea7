/* engine/generator_cpu.h — torch's CPU distributions over mt19937 (internal to
 * engine/generator*.c; the public calls are in engine/generator.h). */
#ifndef SDR_ENGINE_GENERATOR_CPU_H
#define SDR_ENGINE_GENERATOR_CPU_H

#include "engine/generator.h" // sdr_generator

void sdr_cpu_randn_f32(sdr_generator *g, float *out, size_t n);
void sdr_cpu_randn_f16(sdr_generator *g, uint16_t *out, size_t n);
void sdr_cpu_randn_bf16(sdr_generator *g, uint16_t *out, size_t n);
void sdr_cpu_rand_f32(sdr_generator *g, float *out, size_t n);

#endif
