/* kernels/cpu/cpu_winograd.h — what cpu_winograd.c shares with its AVX2 stages
 * (cpu_winograd_avx2.c): the plan of one convolution and where its values sit. */
#ifndef SDR_KERNELS_CPU_WINOGRAD_H
#define SDR_KERNELS_CPU_WINOGRAD_H

#include <stdint.h>

#include "kernels/dtype.h" // sdr_dtype

typedef struct wino {
  int64_t B, C, H, W, Cout, Ho, Wo, pad;
  int64_t th, tw, nt; /* tiles down and across one image; in all (B * th * tw) */
  int64_t tc, mc;     /* tiles per chunk, output channels per block */
  int64_t nb;         /* width of V's column blocks: WINO_NB for our kernel, else the chunk */
  const float *x;     /* in (B, C, H, W) */
  float *y;           /* out (B, Cout, Ho, Wo) */
  const void *w;      /* (Cout, C, 3, 3) of dtype wt */
  sdr_dtype wt;
  const float *bias; /* (Cout) or NULL */
  float *U;          /* the block's m output channels: (36, m, C) */
  float *V;          /* (36, C, tcp) in column blocks of nb (v_off) */
  float *M;          /* (36, m, tcp) */
} wino;

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Where tile tl of a chunk of tcp (a multiple of 16) tiles sits in one V_xi, channel ci:
 * the chunk's tiles are cut into column blocks of nb, each block (C, width) row-major, so
 * the product kernel reads one block's rows one after another. */
static inline int64_t v_off(const wino *g, int64_t tcp, int64_t ci, int64_t tl) {
  int64_t b0 = tl / g->nb * g->nb, bw = min64(tcp - b0, g->nb);
  return b0 * g->C + ci * bw + (tl - b0);
}

/* Kernel (co0 + co, ci) of the weights into U, in plain C (cpu_winograd.c). */
void cpu_wino_weights_pair_c(const wino *g, int64_t co0, int64_t m, int64_t co, int64_t ci);

#if defined(__x86_64__) && defined(__GNUC__)
/* The stages on AVX2 (cpu_winograd_avx2.c), for CPUs without AVX-512: V for the chunk's
 * tiles t0.. t0 + n (tcp of them with the zero padding), U for output channels co0..
 * co0 + m, and the output from M. */
void cpu_wino_input_avx2(const wino *g, int64_t t0, int64_t n, int64_t tcp);
void cpu_wino_weights_avx2(const wino *g, int64_t co0, int64_t m);
void cpu_wino_output_avx2(const wino *g, int64_t co0, int64_t m, int64_t t0, int64_t n,
                          int64_t tcp);
#endif

#endif
