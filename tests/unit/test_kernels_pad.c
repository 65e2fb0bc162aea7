/* kernels: pad2d on the CPU against a plain reference; every output element written. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/error.h"

static void run_case(sdr_backend *be, int B, int C, int H, int W, int l, int r, int t, int b) {
  int OH = H + t + b, OW = W + l + r;
  float *x = malloc(sizeof(float) * B * C * H * W), *y = malloc(sizeof(float) * B * C * OH * OW);
  for (int i = 0; i < B * C * H * W; i++)
    x[i] = (float)(i % 97) - 48.5f;
  for (int i = 0; i < B * C * OH * OW; i++)
    y[i] = NAN; /* poisoned: an unwritten element fails */
  sdr_tensor in = sdr_tensor_view(x, SDR_F32, SDR_DEVICE_CPU, 4, (int64_t[]){B, C, H, W});
  sdr_tensor out = sdr_tensor_view(y, SDR_F32, SDR_DEVICE_CPU, 4, (int64_t[]){B, C, OH, OW});
  CHECK(sdr_pad2d(be, &out, &in, l, r, t, b) == 0);
  int bad = 0;
  for (int p = 0; p < B * C; p++)
    for (int i = 0; i < OH; i++)
      for (int j = 0; j < OW; j++) {
        int si = i - t, sj = j - l;
        float want = si >= 0 && si < H && sj >= 0 && sj < W ? x[(p * H + si) * W + sj] : 0.0f;
        bad += !(y[(p * OH + i) * OW + j] == want);
      }
  CHECK(bad == 0);
  free(x);
  free(y);
}

int main(void) {
  sdr_backend *be = sdr_cpu_backend_create();
  run_case(be, 1, 1, 1, 1, 0, 1, 0, 1);
  run_case(be, 2, 3, 8, 8, 0, 1, 0, 1); /* the VAE's downsampler */
  run_case(be, 1, 5, 7, 3, 2, 3, 1, 4);
  run_case(be, 1, 64, 64, 64, 1, 1, 1, 1);
  /* Wrong output shapes and negative padding are errors with messages. */
  float x[4], y[16];
  sdr_tensor in = sdr_tensor_view(x, SDR_F32, SDR_DEVICE_CPU, 4, (int64_t[]){1, 1, 2, 2});
  sdr_tensor out = sdr_tensor_view(y, SDR_F32, SDR_DEVICE_CPU, 4, (int64_t[]){1, 1, 4, 4});
  CHECK(sdr_pad2d(be, &out, &in, 0, 1, 0, 1) != 0);
  CHECK(sdr_pad2d(be, &out, &in, -1, 3, 1, 1) != 0 && strstr(sdr_last_error(), "negative"));
  sdr_cpu_backend_destroy(be);
  return check_exit();
}
