/* tests/cuda/simt/test_attention_simt.cpp — the CUDA backend's attention kernels
 * (kernels/cuda/cuda_attention.cuh: attn_simple, attn_flash; cuda_attention_mma.cuh:
 * attn_mma) run on the host by the simulation of simt.h, with the launch shapes and
 * shared memory the backend gives them on an H200, against softmax(q k^T * scale) v
 * computed in double from the same rounded inputs.
 *
 * Not a GPU check (tests/cuda/test_cuda_ops.c is, on a GPU): it runs the kernels'
 * own code, thread by thread, where there is no GPU, so that an index, a fragment
 * layout, a mask or a barrier that is wrong shows in CI before a GPU run.
 *
 * Every case runs twice, warps scheduled in ascending then descending order (simt.h),
 * so a missing barrier shows whichever warp it hurts. Every output is filled with NaN
 * first and must come back finite (every element written). Tolerances, relative L2 error against the double reference: float32
 * 1e-5 (summation order); float16 3e-3 (inputs are exact, the kernels round the
 * probabilities and the output to 2^-11: ~1e-3 measured); bfloat16 2.5e-2 (2^-8).
 * Exit status 0 when every case passes, 1 otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <vector>

#include "kernels/cuda/cuda_attention.cuh"
#include "kernels/cuda/cuda_attention_mma.cuh"

enum { H200_SMEM_OPTIN = 232448 }; /* cudaDevAttrMaxSharedMemoryPerBlockOptin on Hopper */

struct attn_case {
  int B, Tq, Tk, H, Dh, causal;
};

static const attn_case cases[] = {
    {1, 5, 7, 1, 8, 0},      {2, 77, 77, 2, 64, 1},   /* CLIP's causal self-attention */
    {1, 130, 77, 2, 40, 0},  /* SD's cross-attention width, ragged query tiles */
    {1, 64, 130, 1, 80, 0},  /* three key tiles, the last ragged */
    {1, 70, 70, 1, 160, 1},  /* the widest SD heads, causal */
    {1, 33, 40, 1, 512, 0},  /* the VAE's single 512-wide head */
    {1, 1, 77, 2, 40, 0},    /* one query */
    {2, 100, 64, 3, 24, 0},  {1, 20, 20, 1, 12, 1}, /* a width mma does not take */
    {1, 200, 200, 1, 40, 1}, /* causal over four key tiles */
};

static int failures;

static float f_of(float x) { return x; }
static float f_of(__half x) { return __half2float(x); }
static float f_of(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> static T t_of(float x);
template <> float t_of<float>(float x) { return x; }
template <> __half t_of<__half>(float x) { return __float2half_rn(x); }
template <> __nv_bfloat16 t_of<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

static const char *dname(const float *) { return "float32"; }
static const char *dname(const __half *) { return "float16"; }
static const char *dname(const __nv_bfloat16 *) { return "bfloat16"; }
static double tol(const float *) { return 1e-5; }
static double tol(const __half *) { return 3e-3; }
static double tol(const __nv_bfloat16 *) { return 2.5e-2; }

/* q (B, Tq, H*Dh), k and v (B, Tk, H*Dh) as the op takes them */
static std::vector<double> reference(const attn_case &c, const std::vector<float> &q,
                                     const std::vector<float> &k, const std::vector<float> &v,
                                     double scale) {
  const int64_t HD = (int64_t)c.H * c.Dh;
  std::vector<double> out((size_t)c.B * c.Tq * HD), s(c.Tk);
  for (int b = 0; b < c.B; b++)
    for (int h = 0; h < c.H; h++)
      for (int i = 0; i < c.Tq; i++) {
        double m = -INFINITY, l = 0;
        for (int j = 0; j < c.Tk; j++) {
          if (c.causal && j > i) {
            s[j] = -INFINITY;
            continue;
          }
          double d = 0;
          for (int e = 0; e < c.Dh; e++)
            d += (double)q[((size_t)b * c.Tq + i) * HD + h * c.Dh + e] *
                 k[((size_t)b * c.Tk + j) * HD + h * c.Dh + e];
          s[j] = d * scale;
          m = s[j] > m ? s[j] : m;
        }
        for (int j = 0; j < c.Tk; j++)
          l += s[j] == -INFINITY ? 0 : exp(s[j] - m);
        for (int e = 0; e < c.Dh; e++) {
          double o = 0;
          for (int j = 0; j < c.Tk; j++)
            if (s[j] != -INFINITY)
              o += exp(s[j] - m) * v[((size_t)b * c.Tk + j) * HD + h * c.Dh + e];
          out[((size_t)b * c.Tq + i) * HD + h * c.Dh + e] = o / l;
        }
      }
  return out;
}

template <typename T> struct inputs {
  std::vector<T> q, k, v, out;
  std::vector<float> qf, kf, vf; /* the rounded values, for the reference */
};

template <typename T> static inputs<T> make_inputs(const attn_case &c, unsigned seed) {
  inputs<T> in;
  const size_t nq = (size_t)c.B * c.Tq * c.H * c.Dh, nk = (size_t)c.B * c.Tk * c.H * c.Dh;
  srand(seed);
  auto fill = [](std::vector<T> &t, std::vector<float> &f, size_t n) {
    t.resize(n);
    f.resize(n);
    for (size_t i = 0; i < n; i++) {
      t[i] = t_of<T>(2.0f * rand() / RAND_MAX - 1.0f);
      f[i] = f_of(t[i]);
    }
  };
  fill(in.q, in.qf, nq);
  fill(in.k, in.kf, nk);
  fill(in.v, in.vf, nk);
  in.out.resize(nq);
  memset(in.out.data(), 0xff, nq * sizeof(T)); /* NaN: an element not written shows */
  return in;
}

template <typename T>
static void compare(const char *kernel, const attn_case &c, const inputs<T> &in, double scale) {
  std::vector<double> ref = reference(c, in.qf, in.kf, in.vf, scale);
  double num = 0, den = 0, worst = 0;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    double got = f_of(in.out[i]), d = got - ref[i];
    if (!isfinite(got))
      bad++;
    num += d * d;
    den += ref[i] * ref[i];
    worst = fabs(d) > worst ? fabs(d) : worst;
  }
  const double rel = sqrt(num / (den > 0 ? den : 1));
  const bool ok = bad == 0 && rel <= tol(in.out.data());
  printf("%-4s %-11s %-8s B=%d Tq=%-3d Tk=%-3d H=%d Dh=%-3d causal=%d: rel L2 %.2e, max abs %.2e%s\n",
         ok ? "ok" : "FAIL", kernel, dname(in.out.data()), c.B, c.Tq, c.Tk, c.H, c.Dh, c.causal,
         rel, worst, bad ? " (elements not finite)" : "");
  failures += !ok;
}

template <typename T> static void run_simple(const attn_case &c, unsigned seed) {
  inputs<T> in = make_inputs<T>(c, seed);
  const float scale = 1.0f / sqrtf((float)c.Dh);
  simt::launch(simple_grid(c.B, c.H, c.Tq, c.Dh), dim3(SA_ROWS * 32), simple_smem(c.Dh),
               attn_simple<T>, in.out.data(), (const T *)in.q.data(), (const T *)in.k.data(),
               (const T *)in.v.data(), c.Tq, c.Tk, c.H, c.Dh, scale, c.causal);
  compare("attn_simple", c, in, scale);
}

template <typename T> static void run_flash(const attn_case &c, unsigned seed) {
  const int Dp = (c.Dh + 15) / 16 * 16;
  int warps, BK;
  if (flash_pick(H200_SMEM_OPTIN, Dp, &warps, &BK) != 0)
    return;
  inputs<T> in = make_inputs<T>(c, seed);
  const float scale = 1.0f / sqrtf((float)c.Dh);
  simt::launch(flash_grid(c.B, c.H, c.Tq, warps), dim3(32 * warps), flash_smem(warps, BK, Dp),
               attn_flash<T>, in.out.data(), (const T *)in.q.data(), (const T *)in.k.data(),
               (const T *)in.v.data(), c.Tq, c.Tk, c.H, c.Dh, Dp, BK, scale * LOG2E, c.causal);
  compare("attn_flash", c, in, scale);
}

template <typename T, int DP> static void launch_mma(const attn_case &c, inputs<T> &in, float scale) {
  simt::launch(mma_grid(c.B, c.H, c.Tq), dim3(32 * MMA_WARPS), mma_smem<DP>(), attn_mma<T, DP>,
               in.out.data(), (const T *)in.q.data(), (const T *)in.k.data(),
               (const T *)in.v.data(), c.Tq, c.Tk, c.H, c.Dh, scale * MMA_LOG2E, c.causal);
}

/* the widths cuda_attention_mma takes: multiples of 8 up to 160 */
template <typename T> static void run_mma(const attn_case &c, unsigned seed) {
  if (c.Dh % 8 != 0 || c.Dh > 160)
    return;
  inputs<T> in = make_inputs<T>(c, seed);
  const float scale = 1.0f / sqrtf((float)c.Dh);
  switch ((c.Dh + 15) / 16 * 16) {
  case 16: launch_mma<T, 16>(c, in, scale); break;
  case 32: launch_mma<T, 32>(c, in, scale); break;
  case 48: launch_mma<T, 48>(c, in, scale); break;
  case 64: launch_mma<T, 64>(c, in, scale); break;
  case 80: launch_mma<T, 80>(c, in, scale); break;
  case 96: launch_mma<T, 96>(c, in, scale); break;
  case 112: launch_mma<T, 112>(c, in, scale); break;
  case 128: launch_mma<T, 128>(c, in, scale); break;
  case 144: launch_mma<T, 144>(c, in, scale); break;
  default: launch_mma<T, 160>(c, in, scale); break;
  }
  compare("attn_mma", c, in, scale);
}

int main() {
  for (int order = 0; order < 2; order++) {
    simt::set_warp_order(order);
    printf("warps in %s order\n", order ? "descending" : "ascending");
    unsigned seed = 1;
    for (const attn_case &c : cases) {
      run_simple<float>(c, seed);
      run_simple<__half>(c, seed);
      run_flash<__half>(c, seed);
      run_flash<__nv_bfloat16>(c, seed);
      run_mma<__half>(c, seed);
      run_mma<__nv_bfloat16>(c, seed);
      seed++;
    }
  }
  printf("%d case(s) failed\n", failures);
  return failures ? 1 : 0;
}
