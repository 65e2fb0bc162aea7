/* engine/dtype.h — element types live with the kernels (the lowest layer); this
 * name stays for the engine code that already includes it. */
#ifndef SDR_ENGINE_DTYPE_H
#define SDR_ENGINE_DTYPE_H
#include "kernels/dtype.h" // sdr_dtype, sdr_dtype_size, sdr_dtype_name
#endif
