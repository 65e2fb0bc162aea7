/* kernels/cpu/cpu_backend.h — the CPU backend: C, OpenMP across cores, OpenBLAS for products. */
#ifndef SDR_KERNELS_CPU_BACKEND_H
#define SDR_KERNELS_CPU_BACKEND_H

#include "kernels/backend.h" // sdr_backend

/* A new CPU backend (its own workspace); free with sdr_cpu_backend_destroy. */
sdr_backend *sdr_cpu_backend_create(void);
void sdr_cpu_backend_destroy(sdr_backend *be);

#endif
