/* tests/cuda/simt/mma.h — the host simulation's nvcuda::wmma (CUDA's <mma.h>, found
 * first on the include path of tests/cuda/simt/), 16x16x16 with float accumulators:
 * what the kernels may rely on, per CUDA's documentation, and nothing more.
 *
 * A fragment's layout across the warp is unspecified (a kernel can only pass
 * fragments to these functions), so here lane 0's copy holds the whole tile and
 * does the work for the warp; each operation is collective (the warp waits before
 * and after it, so memory is read and written at one point, as on the GPU). The rules WMMA sets are
 * checked: pointers 256-bit (32-byte) aligned, ldm a multiple of 8 elements for
 * 16-bit types and of 4 for float.
 */
#ifndef SDR_TESTS_CUDA_SIMT_MMA_H
#define SDR_TESTS_CUDA_SIMT_MMA_H

#include <stdint.h>

#include "simt.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "only 16x16x16 is simulated");
  float v[16][16];
  enum { num_elements = 256 };
};

inline void check_ptr(const void *p, unsigned ldm, size_t es) {
  if ((uintptr_t)p & 31)
    simt::fail("WMMA pointer %p is not 32-byte aligned", p);
  if (ldm % (16 / es))
    simt::fail("WMMA ldm %u is not a multiple of %zu elements", ldm, 16 / es);
}

inline float wf(float x) { return x; }
inline float wf(__half x) { return __half2float(x); }
inline float wf(__nv_bfloat16 x) { return __bfloat162float(x); }

/* A tile's element (r, c) at p, rows ldm apart (by_cols: columns). */
template <typename T> inline T &at(T *p, unsigned ldm, bool by_cols, int r, int c) {
  return by_cols ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}

/* The collective around a fragment's load or store: lane 0 moves the tile. */
template <typename T, typename F> void collective(const T *p, unsigned ldm, F move) {
  check_ptr(p, ldm, sizeof(T));
  simt::warp_sync();
  if (simt::lane() == 0)
    for (int r = 0; r < 16; r++)
      for (int c = 0; c < 16; c++)
        move(r, c);
  simt::warp_sync();
}

template <typename Use, typename T, typename L>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
  const bool by_cols = __is_same(L, col_major);
  collective(p, ldm, [&](int r, int c) { f.v[r][c] = wf(at(p, ldm, by_cols, r, c)); });
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p,
                             unsigned ldm, layout_t layout) {
  const bool by_cols = layout == mem_col_major;
  collective(p, ldm, [&](int r, int c) { f.v[r][c] = at(p, ldm, by_cols, r, c); });
}

inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f,
                              unsigned ldm, layout_t layout) {
  const bool by_cols = layout == mem_col_major;
  collective(p, ldm, [&](int r, int c) { at(p, ldm, by_cols, r, c) = f.v[r][c]; });
}

template <typename Use, typename T, typename L>
void fill_fragment(fragment<Use, 16, 16, 16, T, L> &f, float x) {
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++)
      f.v[r][c] = x;
}

/* d = a b + c: products of the inputs (exact in float32 from 16-bit values), sums in
 * double rounded once (the tensor cores' order is unspecified; float32 or better). */
template <typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
              const fragment<matrix_a, 16, 16, 16, T, LA> &a,
              const fragment<matrix_b, 16, 16, 16, T, LB> &b,
              const fragment<accumulator, 16, 16, 16, float> &c) {
  simt::warp_sync();
  if (simt::lane() == 0) {
    float out[16][16];
    for (int r = 0; r < 16; r++)
      for (int n = 0; n < 16; n++) {
        double s = c.v[r][n];
        for (int k = 0; k < 16; k++)
          s += (double)a.v[r][k] * (double)b.v[k][n];
        out[r][n] = (float)s;
      }
    memcpy(d.v, out, sizeof out);
  }
  simt::warp_sync();
}

} // namespace wmma
} // namespace nvcuda

#endif
