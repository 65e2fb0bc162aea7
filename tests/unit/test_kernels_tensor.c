/* tests/unit/test_kernels_tensor.c — tensor values (kernels/tensor.c), broadcasting shapes,
 * and the checks every sdr_* wrapper makes before a backend runs (kernels/backend.c).
 */
#include "test_kernels_util.h"

static void test_views(void) {
  float data[24];
  int64_t shape[3] = {2, 3, 4};
  sdr_tensor t = sdr_tensor_view(data, SDR_F32, SDR_DEVICE_CPU, 3, shape);
  char buf[64];
  CHECK(t.ndim == 3 && sdr_tensor_numel(&t) == 24 && sdr_tensor_nbytes(&t) == 96);
  CHECK_STR(sdr_shape_str(&t, buf, sizeof buf), "(2, 3, 4)");
  sdr_tensor s = sdr_tensor_view(data, SDR_F16, SDR_DEVICE_CPU, 0, NULL);
  CHECK(sdr_tensor_numel(&s) == 1 && sdr_tensor_nbytes(&s) == 2);
  CHECK_STR(sdr_shape_str(&s, buf, sizeof buf), "()");
  char tiny[5];
  CHECK_STR(sdr_shape_str(&t, tiny, sizeof tiny), "(2, "); /* truncated, terminated */
  sdr_tensor bad =
      sdr_tensor_view(data, SDR_F32, SDR_DEVICE_CPU, 6, (int64_t[6]){1, 1, 1, 1, 1, 1});
  CHECK(bad.ndim == -1);
  CHECK_STR(sdr_device_name(SDR_DEVICE_CUDA), "cuda");

  sdr_tensor r;
  OK(sdr_tensor_reshape(&r, &t, 2, (int64_t[]){-1, 4}));
  CHECK(r.ndim == 2 && r.shape[0] == 6 && r.shape[1] == 4 && r.data == data);
  CHECK(sdr_tensor_same_shape(&r, &t) == 0);
  FAILS_WITH(sdr_tensor_reshape(&r, &t, 2, (int64_t[]){5, 5}),
             "reshape: (2, 3, 4) has 24 elements, (5, 5) has 25");
  FAILS_WITH(sdr_tensor_reshape(&r, &t, 2, (int64_t[]){-1, -1}),
             "reshape: only one dimension can be -1");
  FAILS_LIKE(sdr_tensor_reshape(&r, &t, 2, (int64_t[]){-1, 5}), "cannot become");

  sdr_tensor n;
  OK(sdr_tensor_narrow0(&n, &t, 1, 1));
  CHECK(n.shape[0] == 1 && n.data == data + 12 && n.shape[2] == 4);
  FAILS_WITH(sdr_tensor_narrow0(&n, &t, 1, 2), "narrow: rows [1, 3) outside (2, 3, 4)");
}

static void test_broadcast(void) {
  int nd;
  int64_t sh[SDR_MAX_DIMS];
  sdr_tensor a = T4(NULL, SDR_F32, 2, 320, 64, 64), b = T3(NULL, SDR_F32, 320, 1, 1);
  CHECK(sdr_broadcast_shape(&a, &b, &nd, sh) == 0);
  CHECK(nd == 4 && sh[0] == 2 && sh[1] == 320 && sh[2] == 64 && sh[3] == 64);
  sdr_tensor c = T2(NULL, SDR_F32, 3, 1), d = T3(NULL, SDR_F32, 2, 1, 4);
  CHECK(sdr_broadcast_shape(&c, &d, &nd, sh) == 0);
  CHECK(nd == 3 && sh[0] == 2 && sh[1] == 3 && sh[2] == 4);
  sdr_tensor e = T1(NULL, SDR_F32, 5);
  CHECK(sdr_broadcast_shape(&c, &e, &nd, sh) == 0 && nd == 2 && sh[0] == 3 && sh[1] == 5);
  sdr_tensor f = T1(NULL, SDR_F32, 3);
  CHECK(sdr_broadcast_shape(&d, &f, &nd, sh) == -1);
  sdr_tensor z = T2(NULL, SDR_F32, 0, 1);
  CHECK(sdr_broadcast_shape(&z, &e, &nd, sh) == 0 && sh[0] == 0 && sh[1] == 5);
}

static int fake_fill(sdr_backend *be, sdr_tensor *out, float v) {
  (void)be;
  (void)out;
  (void)v;
  return 0;
}

static void test_wrapper_checks(sdr_backend *be) {
  float buf[4] = {0};
  sdr_tensor t = T1(buf, SDR_F32, 4);
  FAILS_WITH(sdr_fill(NULL, &t, 0), "sdr_fill: no backend");
  /* a backend without the op */
  sdr_backend_ops ops = {.fill = fake_fill};
  sdr_backend partial = {.name = "test", .device = SDR_DEVICE_CPU, .ops = &ops};
  FAILS_WITH(sdr_unary(&partial, &t, &t, SDR_UNARY_EXP),
             "sdr_unary: the test backend has no such op");
  OK(sdr_fill(&partial, &t, 1.0f));
  sdr_tensor nodata = T1(NULL, SDR_F32, 4);
  FAILS_WITH(sdr_fill(be, &nodata, 0), "sdr_fill: out (4) has no data");
  sdr_tensor empty = T1(NULL, SDR_F32, 0);
  OK(sdr_fill(be, &empty, 0)); /* nothing to write is not an error */
  sdr_tensor neg = T1(buf, SDR_F32, -3);
  FAILS_WITH(sdr_fill(be, &neg, 0), "sdr_fill: out (-3) has a negative dimension");
  sdr_tensor i64 = T1(buf, SDR_I64, 2);
  FAILS_WITH(sdr_fill(be, &i64, 0),
             "sdr_fill: out has dtype int64, expected float32, float16 or bfloat16");
  sdr_tensor huge = T4(buf, SDR_F32, 1 << 20, 1 << 20, 1 << 20, 1 << 20);
  FAILS_WITH(sdr_fill(be, &huge, 0),
             "sdr_fill: out (1048576, 1048576, 1048576, 1048576) is too large");
  sdr_tensor gpu = t;
  gpu.device = SDR_DEVICE_CUDA;
  FAILS_WITH(sdr_fill(be, &gpu, 0), "sdr_fill: out is on cuda, the cpu backend on cpu");
  /* memory calls */
  void *p = sdr_alloc(be, 100);
  CHECK(p && ((uintptr_t)p & 63) == 0);
  OK(sdr_upload(be, p, buf, sizeof buf));
  float back[4] = {1, 1, 1, 1};
  OK(sdr_download(be, back, p, sizeof back));
  CHECK(back[0] == 0 && back[3] == 0);
  OK(sdr_sync(be));
  sdr_free(be, p);
  OK(sdr_reserve_workspace(be, 1 << 20)); /* smaller than reserved: nothing happens */
}

int main(void) {
  test_views();
  test_broadcast();
  sdr_backend *be = cpu_backend(0);
  CHECK_STR(be->name, "cpu");
  test_wrapper_checks(be);
  sdr_cpu_backend_destroy(be);
  return check_exit();
}
