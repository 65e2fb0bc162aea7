/* engine/error.h — the error values of every layer live with the kernels (the
 * lowest layer, so ops can report too); this name is what engine code includes. */
#ifndef SDR_ENGINE_ERROR_H
#define SDR_ENGINE_ERROR_H
#include "kernels/error.h" // sdr_fail, sdr_fail_prefix, sdr_last_error, sdr_clear_error
#endif
