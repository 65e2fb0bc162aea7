/* tests/unit/test_controlnet.c — ControlNetModel and the UNet given its residuals,
 * against diffusers 0.27.2.
 *
 * Reference: tests/reference/controlnet/call_* and tests/models/tiny-controlnet-*
 * (scripts/reference/make_controlnet_cases.py). For each of the three tiny nets (two
 * with their UNet's layout, one with pooled conditions and the "bgr" channel order), one
 * call on random inputs with conditioning_scale 0.7, without and with guess mode: every
 * down residual and the mid one within 1e-5 of the largest reference value, and the
 * UNet's prediction given them within 1e-5.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine/arena.h"            // sdr_arena
#include "engine/controlnet.h"       // sdr_controlnet
#include "engine/error.h"            // sdr_last_error
#include "engine/npy.h"              // sdr_npy_read
#include "kernels/cpu/cpu_backend.h" // sdr_cpu_backend_create

#define REF "tests/reference/controlnet/"

static int load(const char *name, sdr_npy *a) {
  char path[256];
  snprintf(path, sizeof path, REF "%s.npy", name);
  if (sdr_npy_read(path, a) != 0) {
    fprintf(stderr, "cannot read %s: %s\n", path, sdr_last_error());
    check_failures++;
    return -1;
  }
  return 0;
}

static sdr_tensor view(const sdr_npy *a) {
  return sdr_tensor_view(a->data, SDR_F32, SDR_DEVICE_CPU, a->ndim, a->shape);
}

/* max |got - want| within tol times the largest |want| */
static void close_to(const char *what, const sdr_tensor *got, const sdr_npy *want, double tol) {
  if (got->ndim != want->ndim || memcmp(got->shape, want->shape, sizeof(int64_t) * got->ndim)) {
    fprintf(stderr, "%s: shape differs from the reference\n", what);
    check_failures++;
    return;
  }
  const float *g = got->data, *w = want->data;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < want->count; i++) {
    double d = fabs((double)g[i] - w[i]);
    diff = !(d <= diff) ? (isnan(d) ? INFINITY : d) : diff;
    scale = fabs(w[i]) > scale ? fabs(w[i]) : scale;
  }
  if (!(diff <= tol * scale)) {
    fprintf(stderr, "%s: max difference %.3g (tolerance %.3g)\n", what, diff, tol * scale);
    check_failures++;
  }
}

static void net_case(sdr_backend *be, const char *net, const char *base) {
  char path[256], name[256];
  sdr_controlnet cn;
  sdr_unet unet;
  snprintf(path, sizeof path, "tests/models/%s", net);
  if (sdr_controlnet_load(&cn, be, path, NULL, -1) != 0) {
    fprintf(stderr, "load %s: %s\n", net, sdr_last_error());
    check_failures++;
    return;
  }
  snprintf(path, sizeof path, "tests/models/%s/unet", base);
  CHECK(sdr_unet_load(&unet, be, path, NULL, -1) == 0);
  sdr_npy in[3] = {{0}};
  static const char *const inputs[] = {"sample", "ehs", "cond"};
  int ok = 1;
  for (int i = 0; i < 3; i++) {
    snprintf(name, sizeof name, "call_%s_%s", net, inputs[i]);
    ok &= load(name, &in[i]) == 0;
  }
  sdr_arena a;
  sdr_arena_init(&a, be);
  for (int guess = 0; ok && guess < 2; guess++) {
    const char *tag = guess ? "_guess" : "";
    sdr_tensor x = view(&in[0]), ctx = view(&in[1]), cond = view(&in[2]), t, down[64], mid, out;
    const int n = sdr_controlnet_ndown(&cn);
    CHECK(sdr_arena_tensor(&a, &t, SDR_F32, 1, (int64_t[]){x.shape[0]}) == 0);
    CHECK(sdr_fill(be, &t, 501.0f) == 0);
    int rc = sdr_controlnet_forward(&cn, &a, down, &mid, &x, &t, &ctx, &cond, NULL, NULL,
                                    (sdr_controlnet_scale){0.7f, guess});
    if (rc != 0) {
      fprintf(stderr, "%s forward: %s\n", net, sdr_last_error());
      check_failures++;
      break;
    }
    for (int i = 0; i <= n; i++) {
      sdr_npy want;
      if (i < n)
        snprintf(name, sizeof name, "call_%s%s_down%d", net, tag, i);
      else
        snprintf(name, sizeof name, "call_%s%s_mid", net, tag);
      if (load(name, &want) == 0) {
        close_to(name, i < n ? &down[i] : &mid, &want, 1e-5);
        sdr_npy_free(&want);
      }
    }
    sdr_npy want;
    snprintf(name, sizeof name, "call_%s%s_unet", net, tag);
    if (load(name, &want) == 0) {
      CHECK(sdr_arena_tensor(&a, &out, SDR_F32, 4, x.shape) == 0);
      sdr_unet_residuals res = {down, n, &mid, 0};
      rc = sdr_unet_forward_residuals(&unet, &a, &out, &x, &t, &ctx, &res);
      if (rc != 0)
        fprintf(stderr, "%s unet: %s\n", net, sdr_last_error());
      CHECK(rc == 0);
      close_to(name, &out, &want, 1e-5);
      sdr_npy_free(&want);
    }
    /* a residual list of the wrong length is refused by name */
    sdr_unet_residuals short_list = {down, n - 1, &mid, 0};
    CHECK(sdr_unet_forward_residuals(&unet, &a, &out, &x, &t, &ctx, &short_list) != 0);
    CHECK(strstr(sdr_last_error(), "residuals") != NULL);
    CHECK(sdr_arena_reset(&a) == 0);
  }
  /* a control image of the wrong size says what it must be */
  if (ok) {
    sdr_tensor x = view(&in[0]), ctx = view(&in[1]), cond = view(&in[2]), t, down[64], mid;
    cond.shape[2] /= 2;
    CHECK(sdr_arena_tensor(&a, &t, SDR_F32, 1, (int64_t[]){x.shape[0]}) == 0);
    CHECK(sdr_controlnet_forward(&cn, &a, down, &mid, &x, &t, &ctx, &cond, NULL, NULL,
                                 (sdr_controlnet_scale){1.0f, 0}) != 0);
    CHECK(strstr(sdr_last_error(), "controlnet_cond") != NULL);
  }
  for (int i = 0; i < 3; i++)
    if (in[i].data)
      sdr_npy_free(&in[i]);
  sdr_arena_free(&a);
  sdr_unet_free(&unet);
  sdr_controlnet_free(&cn);
}

int main(void) {
  sdr_backend *be = sdr_cpu_backend_create();
  net_case(be, "tiny-controlnet-a", "tiny-sd-a");
  net_case(be, "tiny-controlnet-a2", "tiny-sd-a");
  net_case(be, "tiny-controlnet-b", "tiny-sd-b");
  sdr_cpu_backend_destroy(be);
  return check_exit();
}
