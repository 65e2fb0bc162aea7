/* engine/seed_sequence.c — numpy's SeedSequence: mix_entropy, then generate_state.
 * Every value is a uint32 and every product wraps, as numpy's are and do. */
#include "engine/seed_sequence.h"

#define INIT_A 0x43b0d7e5u
#define MULT_A 0x931e8875u
#define INIT_B 0x8b51f9ddu
#define MULT_B 0x58f38dedu
#define MIX_MULT_L 0xca01f9ddu
#define MIX_MULT_R 0x4973f715u
#define XSHIFT 16

static uint32_t hashmix(uint32_t value, uint32_t *hash_const) {
  value ^= *hash_const;
  *hash_const *= MULT_A;
  value *= *hash_const;
  return value ^ (value >> XSHIFT);
}

static uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t r = MIX_MULT_L * x - MIX_MULT_R * y;
  return r ^ (r >> XSHIFT);
}

/* _int_to_uint32_array: the low word first; 0 is one word. */
static int int_words(uint64_t v, uint32_t *out) {
  int n = 0;
  do {
    out[n++] = (uint32_t)v;
    v >>= 32;
  } while (v);
  return n;
}

void sdr_seed_sequence_state(uint64_t entropy, const uint64_t *spawn_key, int n_spawn,
                             int pool_size, uint32_t *out, int n_words) {
  /* get_assembled_entropy: the entropy's words, padded with zeros to the pool's size when
   * a spawn key follows, then the spawn key's words */
  uint32_t words[SDR_SEED_SEQUENCE_MAX_POOL + 2 * 8 + 2];
  int n = int_words(entropy, words);
  if (n_spawn > 0)
    while (n < pool_size)
      words[n++] = 0;
  for (int i = 0; i < n_spawn && i < 8; i++)
    n += int_words(spawn_key[i], words + n);

  uint32_t pool[SDR_SEED_SEQUENCE_MAX_POOL], hash_const = INIT_A;
  for (int i = 0; i < pool_size; i++)
    pool[i] = hashmix(i < n ? words[i] : 0, &hash_const);
  for (int src = 0; src < pool_size; src++)
    for (int dst = 0; dst < pool_size; dst++)
      if (src != dst)
        pool[dst] = mix(pool[dst], hashmix(pool[src], &hash_const));
  for (int src = pool_size; src < n; src++)
    for (int dst = 0; dst < pool_size; dst++)
      pool[dst] = mix(pool[dst], hashmix(words[src], &hash_const));

  uint32_t out_const = INIT_B;
  for (int i = 0; i < n_words; i++) {
    uint32_t v = pool[i % pool_size] ^ out_const;
    out_const *= MULT_B;
    v *= out_const;
    out[i] = v ^ (v >> XSHIFT);
  }
}
