/* tests/cuda/emu_backend.h — a backend that stands in for a GPU on the CPU, for tests.
 *
 * The engine's device path (weights uploaded, latents downloaded, activations in
 * float16 or bfloat16, ops recorded into a graph and replayed) otherwise runs
 * only on a GPU machine, which a session gets rarely and briefly. This backend
 * lets CI run that path on any machine:
 *
 *  - It says it is a CUDA device (SDR_DEVICE_CUDA) and computes activations in
 *    float32, float16 and bfloat16, as kernels/cuda does.
 *  - Its memory is host memory, but the addresses it hands out cannot be
 *    dereferenced by host code: a high tag bit makes them non-canonical on
 *    x86-64 (and kernel-half on AArch64), so engine code that reads or writes
 *    device memory directly faults at once (under ASan too), instead of
 *    corrupting the GPU machine's run. Every op, upload and download takes the
 *    tag off, and checks that each tensor lies inside one live allocation
 *    (a host address, a freed buffer or a view past its buffer is an error).
 *  - New allocations are filled with 0xff bytes (NaN in every float dtype), so
 *    reading memory nobody wrote shows up as NaN, as cudaMalloc's garbage might.
 *  - Each op widens float16/bfloat16 activations into float32 scratch, runs
 *    the CPU backend's op, and rounds the result to the activations' dtype
 *    (nearest even), as the CUDA kernels do: float32 arithmetic, output
 *    rounded. Weights, biases and norm parameters go to the CPU op in their own
 *    dtype. Layout ops that only move elements (permute, concat, cast, fill)
 *    run on the stored bytes of any dtype.
 *  - Graphs: between graph_begin and graph_end ops are recorded (their tensor
 *    descriptors and scalar arguments), not run; alloc, upload, download, sync
 *    and growing the workspace fail with a message, free is deferred to
 *    graph_end, as in kernels/cuda. graph_replay runs the recorded calls again
 *    (addresses are checked again at each replay).
 *
 * What it cannot find: timing and asynchrony (every op runs at once), and
 * anything specific to the GPU kernels' arithmetic (tests/cuda/test_cuda_ops.c
 * checks that on a GPU).
 */
#ifndef SDR_TESTS_CUDA_EMU_BACKEND_H
#define SDR_TESTS_CUDA_EMU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h" // sdr_backend

#ifdef __cplusplus
extern "C" {
#endif

/* A new emulated device over a CPU backend of its own; NULL and sdr_fail on failure. */
sdr_backend *sdr_emu_backend_create(void);
/* Frees the backend and whatever is still allocated on it. */
void sdr_emu_backend_destroy(sdr_backend *be);

typedef struct sdr_emu_stats {
  long long ops_run;       /* ops executed, replayed ones included */
  long long ops_f16;       /* of those, with float16 activations */
  long long ops_bf16;      /* with bfloat16 activations */
  long long ops_recorded;  /* ops recorded into graphs */
  long long graphs;        /* graphs ended (recorded) */
  long long graph_replays; /* graph_replay calls that ran */
  long long uploads, downloads, syncs;
  long long allocs, frees;
  long long live_allocs; /* allocations not yet freed */
  size_t live_bytes, peak_bytes;
} sdr_emu_stats;

void sdr_emu_backend_stats(const sdr_backend *be, sdr_emu_stats *s);
void sdr_emu_backend_reset_stats(sdr_backend *be);

/* Test knob: in the next recording, the op after after_ops recorded ones fails, and
 * sdr_graph_end then fails as a broken CUDA capture does. */
void sdr_emu_backend_refuse_recording(sdr_backend *be, long long after_ops);

/* The host address behind a device address of this backend, or NULL when p is
 * not inside a live allocation (for tests of the emulator itself). */
void *sdr_emu_host_address(const sdr_backend *be, const void *p);

#ifdef __cplusplus
}
#endif

#endif
