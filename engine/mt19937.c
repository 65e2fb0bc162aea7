/* engine/mt19937.c — torch's mt19937_engine, word for word (MT19937RNGEngine.h). */
#include "engine/mt19937.h"

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UMASK 0x80000000u
#define MT_LMASK 0x7fffffffu

void sdr_mt19937_seed(uint32_t state[SDR_MT19937_N], int *index, uint64_t seed) {
  state[0] = (uint32_t)(seed & 0xffffffffu);
  for (uint32_t j = 1; j < SDR_MT19937_N; j++)
    state[j] = 1812433253u * (state[j - 1] ^ (state[j - 1] >> 30)) + j;
  *index = SDR_MT19937_N;
}

static uint32_t twist(uint32_t u, uint32_t v) {
  uint32_t mixed = (u & MT_UMASK) | (v & MT_LMASK);
  return (mixed >> 1) ^ ((v & 1u) ? MT_MATRIX_A : 0u);
}

/* mt19937_engine::next_state. */
static void next_state(uint32_t s[SDR_MT19937_N]) {
  int j = 0;
  for (; j < SDR_MT19937_N - MT_M; j++)
    s[j] = s[j + MT_M] ^ twist(s[j], s[j + 1]);
  for (; j < SDR_MT19937_N - 1; j++)
    s[j] = s[j + MT_M - SDR_MT19937_N] ^ twist(s[j], s[j + 1]);
  s[j] = s[j + MT_M - SDR_MT19937_N] ^ twist(s[j], s[0]);
}

uint32_t sdr_mt19937_next(uint32_t state[SDR_MT19937_N], int *index) {
  if (*index >= SDR_MT19937_N || *index < 0) {
    next_state(state);
    *index = 0;
  }
  uint32_t y = state[(*index)++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}
