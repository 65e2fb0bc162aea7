/* tests/unit/test_kernels_attention.c — attention on both CPU code paths against a full
 * softmax(q k^T * scale) v in double, heads laid out as (B, T, heads*Dh).
 *
 * Cases: one token; CLIP's causal self-attention (77 tokens, 12 heads of 64);
 * cross-attention to 77 text tokens (8 heads of 40); odd sizes; more query rows
 * than one block (several blocks per head, causal across blocks); Tq != Tk causal;
 * heads wider than 64 (SD 1.x's 80 and 160).
 * Tolerance: |error| <= 1e-5 * sum_j p_j |v_j| per output element (the scale of
 * the weighted sum), p in double.
 */
#include "test_kernels_util.h"

static void test_attention(sdr_backend *be, const char *isa, int64_t B, int64_t Tq, int64_t Tk,
                           int heads, int64_t Dh, int causal) {
  int64_t HD = heads * Dh;
  float scale = 1.0f / sqrtf((float)Dh);
  float *q = rand_floats(B * Tq * HD, -2, 2), *k = rand_floats(B * Tk * HD, -2, 2);
  float *v = rand_floats(B * Tk * HD, -1, 1), *out = poisoned(B * Tq * HD);
  double *ref = malloc(sizeof(double) * (size_t)(B * Tq * HD));
  double *mag = malloc(sizeof(double) * (size_t)(B * Tq * HD));
  double *p = malloc(sizeof(double) * (size_t)Tk);
  for (int64_t b = 0; b < B; b++)
    for (int h = 0; h < heads; h++)
      for (int64_t i = 0; i < Tq; i++) {
        int64_t nk = causal ? (i + 1 < Tk ? i + 1 : Tk) : Tk;
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < nk; j++) {
          double d = 0;
          for (int64_t e = 0; e < Dh; e++)
            d += (double)q[(b * Tq + i) * HD + h * Dh + e] * k[(b * Tk + j) * HD + h * Dh + e];
          p[j] = d * scale;
          m = fmax(m, p[j]);
        }
        for (int64_t j = 0; j < nk; j++)
          s += (p[j] = exp(p[j] - m));
        for (int64_t e = 0; e < Dh; e++) {
          double o = 0, a = 0;
          for (int64_t j = 0; j < nk; j++) {
            double vv = v[(b * Tk + j) * HD + h * Dh + e];
            o += p[j] / s * vv;
            a += p[j] / s * fabs(vv);
          }
          ref[(b * Tq + i) * HD + h * Dh + e] = o;
          mag[(b * Tq + i) * HD + h * Dh + e] = a;
        }
      }
  sdr_tensor to = T3(out, SDR_F32, B, Tq, HD), tq = T3(q, SDR_F32, B, Tq, HD);
  sdr_tensor tk = T3(k, SDR_F32, B, Tk, HD), tv = T3(v, SDR_F32, B, Tk, HD);
  OK(sdr_attention(be, &to, &tq, &tk, &tv, heads, scale, causal));
  char what[128];
  snprintf(what, sizeof what, "attention B%lld Tq%lld Tk%lld %dx%lld%s %s", (long long)B,
           (long long)Tq, (long long)Tk, heads, (long long)Dh, causal ? " causal" : "", isa);
  compare(what, out, ref, mag, B * Tq * HD, 1e-5, 1e-30);
  free(q);
  free(k);
  free(v);
  free(out);
  free(ref);
  free(mag);
  free(p);
}

static void test_errors(sdr_backend *be) {
  float buf[8] = {0};
  sdr_tensor q = T3(buf, SDR_F32, 2, 77, 768), k = T3(buf, SDR_F32, 2, 77, 768);
  sdr_tensor o = T3(buf, SDR_F32, 2, 77, 768);
  FAILS_WITH(sdr_attention(be, &o, &q, &k, &k, 10, 0.125f, 1),
             "sdr_attention: width 768 does not split into 10 heads");
  sdr_tensor k2 = T3(buf, SDR_F32, 2, 77, 640);
  FAILS_WITH(sdr_attention(be, &o, &q, &k2, &k2, 8, 0.125f, 0),
             "sdr_attention: q (2, 77, 768) and k (2, 77, 640): batch or width differ");
  /* scratch of one query row per thread no longer fits: an error, never an allocation */
  int64_t Tk = (int64_t)11 << 20; /* 44 MB of scores for one row: more than the default 40 MB */
  float *big = calloc((size_t)Tk, sizeof(float));
  sdr_tensor q1 = T3(big, SDR_F32, 1, 1, 1), kb = T3(big, SDR_F32, 1, Tk, 1);
  float one;
  sdr_tensor o1 = T3(&one, SDR_F32, 1, 1, 1);
  FAILS_LIKE(sdr_attention(be, &o1, &q1, &kb, &kb, 1, 1.0f, 0), "is too small for 11534336 keys");
  OK(sdr_reserve_workspace(be, (size_t)(Tk + 1) * sizeof(float) * 4)); /* up to 4 threads */
  OK(sdr_attention(be, &o1, &q1, &kb, &kb, 1, 1.0f, 0));
  CHECK(one == 0.0f); /* v is all zeros */
  free(big);
}

int main(void) {
  for (int generic = 0; generic < 3; generic++) {
    sdr_backend *be = cpu_backend(generic);
    const char *isa = isa_names[generic];
    test_attention(be, isa, 1, 1, 1, 1, 1, 0);
    test_attention(be, isa, 1, 1, 1, 1, 1, 1);
    test_attention(be, isa, 2, 77, 77, 12, 64, 1); /* CLIP */
    test_attention(be, isa, 2, 17, 77, 8, 40, 0);  /* UNet cross-attention */
    test_attention(be, isa, 1, 130, 130, 2, 8, 0);
    test_attention(be, isa, 1, 300, 300, 1, 5, 1);  /* two query blocks, causal */
    test_attention(be, isa, 1, 500, 600, 2, 16, 0); /* several blocks of 218 rows */
    test_attention(be, isa, 2, 5, 9, 3, 3, 1);      /* Tq < Tk, causal */
    test_attention(be, isa, 1, 9, 5, 1, 4, 1);      /* Tq > Tk, causal */
    test_attention(be, isa, 3, 3, 1, 2, 17, 0);     /* a single key */
    /* heads wider than the kernel's 64 columns: SD 1.x's 80 and 160, an odd 100, 260 */
    test_attention(be, isa, 2, 70, 77, 2, 80, 0);
    test_attention(be, isa, 1, 40, 33, 2, 160, 0);
    test_attention(be, isa, 1, 13, 20, 1, 100, 1);
    test_attention(be, isa, 1, 7, 9, 1, 260, 0); /* over 256: the OpenBLAS path */
    if (!generic)
      test_errors(be);
    sdr_cpu_backend_destroy(be);
  }
  return check_exit();
}
