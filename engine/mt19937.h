/* engine/mt19937.h — torch's Mersenne Twister (aten/src/ATen/core/MT19937RNGEngine.h).
 *
 * The state is the generator's own array, so a generator stays one plain struct.
 * `index` counts words already handed out since the last twist; torch keeps
 * `left_` and `next_` instead, and left_ == 625 - next_ whenever both are live.
 * A fresh seed sets index to 624, so the first draw twists, as torch's left_ = 1 does.
 */
#ifndef SDR_ENGINE_MT19937_H
#define SDR_ENGINE_MT19937_H

#include <stdint.h>

#define SDR_MT19937_N 624

/* mt19937_engine::init_with_uint32: only the low 32 bits of the seed count. */
void sdr_mt19937_seed(uint32_t state[SDR_MT19937_N], int *index, uint64_t seed);
/* mt19937_engine::operator(): the next tempered 32-bit word. */
uint32_t sdr_mt19937_next(uint32_t state[SDR_MT19937_N], int *index);

#endif
