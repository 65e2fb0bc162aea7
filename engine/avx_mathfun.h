/* engine/avx_mathfun.h — torch's AVX2 Box–Muller block (normal_fill_16_AVX2).
 *
 * torch's CPU kernels are compiled twice, plainly and with -mavx2 -mfma, and
 * ATen picks the AVX2 build at run time when the CPU has AVX2 and FMA. In that
 * build float32 randn of 16 or more values runs normal_fill_16_AVX2, whose log
 * and sincos (avx_mathfun.h, after Pommier's sse_mathfun) round differently
 * from libm, and whose multiply-adds GCC fused. This file repeats them with the
 * same instructions and the same fusions, so the bits agree.
 */
#ifndef SDR_ENGINE_AVX_MATHFUN_H
#define SDR_ENGINE_AVX_MATHFUN_H

/* Nonzero when this CPU has AVX2 and FMA (ATen: cpuinfo_has_x86_avx2 && _fma3). */
int sdr_cpu_has_avx2_fma(void);

/* normal_fill_16_AVX2: data[0..15] holds uniforms in [0, 1); becomes 16 normals.
 * Call only when sdr_cpu_has_avx2_fma() says so. */
void sdr_normal_fill_16_avx2(float *data, float mean, float std);

#endif
