/* engine/seed_sequence.h — numpy's SeedSequence (numpy/random/bit_generator.pyx), which
 * torchsde's Brownian tree asks for the seeds of its nodes: a pool of 32-bit words mixed
 * from the entropy and a spawn key, then as many words drawn from it as wanted. */
#ifndef SDR_ENGINE_SEED_SEQUENCE_H
#define SDR_ENGINE_SEED_SEQUENCE_H

#include <stdint.h>

enum { SDR_SEED_SEQUENCE_MAX_POOL = 64 };

/* SeedSequence(entropy, spawn_key=spawn_key[:n_spawn], pool_size=pool_size)
 * .generate_state(n_words) into out. pool_size 4 to SDR_SEED_SEQUENCE_MAX_POOL
 * (numpy's least is 4); n_spawn at most 8. */
void sdr_seed_sequence_state(uint64_t entropy, const uint64_t *spawn_key, int n_spawn,
                             int pool_size, uint32_t *out, int n_words);

#endif
