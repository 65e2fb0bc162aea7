/* tests/cuda/simt/simt_runtime.cpp — the CUDA runtime and cuBLAS calls of kernels/cuda,
 * for the host simulation: with these, the backend's own .cu files (compiled as C++
 * with simt.h) run whole on the CPU, launches and all, so test_cuda_ops and
 * test_cuda_models exercise the CUDA backend where there is no GPU.
 *
 * One simulated GPU (an "H200" with 2 multiprocessors, so grids stay small), its
 * memory the host's. Work on a stream runs when enqueued, in order; while a stream
 * is captured it is recorded instead, and what CUDA refuses during a capture
 * (allocation, freeing, waiting, copies from host memory) fails and breaks the
 * capture, as on the GPU. Launch configurations the GPU refuses (more than 1024
 * threads, grid.y or grid.z over 65535, more shared memory than a block gets) fail
 * the launch. New device memory is filled with 0xff bytes (NaN), as cudaMalloc's
 * garbage might be.
 *
 * cuBLAS: GemmEx and GemmStridedBatchedEx, column-major as its documentation
 * defines them, computed by the CPU's sgemm on the operands widened to float32, C
 * not read when beta is 0; dimensions and leading dimensions checked as cuBLAS
 * checks them.
 */
#include <cublas_v2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "simt.h"

struct CUstream_st {
  int capturing, broken;
  CUgraph_st *graph;
};
struct CUgraph_st {
  std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
  std::vector<std::function<void()>> ops;
};
struct CUevent_st {
  double ms;
};
struct cublasContext {
  cudaStream_t stream;
};

enum { SIM_SMS = 2, SIM_SMEM_OPTIN = 232448 };
static const size_t SIM_MEMORY = (size_t)8 << 30;

static cudaError_t last_error = cudaSuccess;
static int captures; /* streams being captured */
static size_t allocated;
static CUstream_st null_stream;

static cudaError_t fail_with(cudaError_t e) {
  last_error = e;
  return e;
}

static CUstream_st *stream_of(cudaStream_t s) { return s ? s : &null_stream; }

/* What a capture refuses: it breaks every capture under way (thread-local mode, one thread). */
static cudaError_t refused_in_capture() {
  if (captures == 0)
    return cudaSuccess;
  return fail_with(cudaErrorStreamCaptureUnsupported);
}

static void enqueue(cudaStream_t s, std::function<void()> op) {
  CUstream_st *st = stream_of(s);
  if (st->capturing)
    st->graph->ops.push_back(std::move(op));
  else
    op();
}

/* SIMT_PROFILE=1: host seconds per kernel, printed at exit (where the simulation's
 * time goes, to keep the tests that use it short) */
static std::map<std::string, double> profile;
static void print_profile() {
  std::vector<std::pair<double, std::string>> v;
  for (auto &p : profile)
    v.push_back({p.second, p.first});
  std::sort(v.rbegin(), v.rend());
  for (auto &p : v)
    fprintf(stderr, "simt: %8.2f s %s\n", p.first, p.second.c_str());
}
static bool profiling() {
  static int on = -1;
  if (on < 0) {
    const char *e = getenv("SIMT_PROFILE");
    on = e && strcmp(e, "1") == 0;
    if (on)
      atexit(print_profile);
  }
  return on;
}

namespace simt {
void launch_on(cudaStream_t stream, dim3 grid, dim3 block, size_t smem,
               std::function<void()> body, const char *kernel) {
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
      grid.z == 0 || grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu) {
    fail_with(cudaErrorInvalidConfiguration);
    if (stream_of(stream)->capturing)
      stream_of(stream)->broken = 1;
    return;
  }
  if (smem > SIM_SMEM_OPTIN) {
    fail_with(cudaErrorInvalidValue);
    return;
  }
  if (profiling()) {
    std::string name = kernel;
    enqueue(stream, [=] {
      auto t0 = std::chrono::steady_clock::now();
      run(grid, block, smem, body);
      profile[name] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
    return;
  }
  enqueue(stream, [=] { run(grid, block, smem, body); });
}
} // namespace simt

/* ---- devices, errors ---- */

cudaError_t cudaGetLastError(void) {
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess:
    return "no error";
  case cudaErrorMemoryAllocation:
    return "out of memory";
  case cudaErrorInvalidValue:
    return "invalid argument";
  case cudaErrorInvalidConfiguration:
    return "invalid configuration argument";
  case cudaErrorStreamCaptureUnsupported:
    return "operation not permitted when stream is capturing";
  case cudaErrorStreamCaptureInvalidated:
    return "operation failed due to a previous error during capture";
  default:
    return "an error of the simulated CUDA runtime";
  }
}

cudaError_t cudaGetDeviceCount(int *n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : fail_with(cudaErrorInvalidDevice); }
cudaError_t cudaRuntimeGetVersion(int *v) {
  *v = 13000;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
  if (d != 0)
    return fail_with(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "NVIDIA H200 (simulated on the host)");
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = SIM_SMS;
  p->maxThreadsPerMultiProcessor = 2048;
  p->sharedMemPerBlockOptin = SIM_SMEM_OPTIN;
  p->totalGlobalMem = SIM_MEMORY;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int d) {
  if (d != 0)
    return fail_with(cudaErrorInvalidDevice);
  switch (a) {
  case cudaDevAttrComputeCapabilityMajor:
    *v = 9;
    break;
  case cudaDevAttrComputeCapabilityMinor:
    *v = 0;
    break;
  case cudaDevAttrMultiProcessorCount:
    *v = SIM_SMS;
    break;
  case cudaDevAttrMaxThreadsPerMultiProcessor:
    *v = 2048;
    break;
  case cudaDevAttrMaxSharedMemoryPerBlockOptin:
    *v = SIM_SMEM_OPTIN;
    break;
  default:
    return fail_with(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize && (value < 0 || value > SIM_SMEM_OPTIN))
    return fail_with(cudaErrorInvalidValue);
  return cudaSuccess;
}

/* ---- memory ---- */

cudaError_t cudaMalloc(void **p, size_t bytes) {
  *p = NULL;
  if (refused_in_capture() != cudaSuccess)
    return cudaErrorStreamCaptureUnsupported;
  if (bytes > SIM_MEMORY - allocated)
    return fail_with(cudaErrorMemoryAllocation);
  size_t n = (bytes + 255) / 256 * 256 + 256;
  unsigned char *b = (unsigned char *)aligned_alloc(256, n);
  if (!b)
    return fail_with(cudaErrorMemoryAllocation);
  memset(b, 0xff, n);
  memcpy(b, &n, sizeof n); /* the size, in the first 256 bytes before the block */
  allocated += n;
  *p = b + 256;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (refused_in_capture() != cudaSuccess)
    return cudaErrorStreamCaptureUnsupported;
  if (!p)
    return cudaSuccess;
  unsigned char *b = (unsigned char *)p - 256;
  size_t n;
  memcpy(&n, b, sizeof n);
  allocated -= n;
  free(b);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  *free_bytes = SIM_MEMORY - allocated;
  *total = SIM_MEMORY;
  return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
  memset(a, 0, sizeof *a);
  a->type = cudaMemoryTypeUnregistered; /* ordinary host memory and device memory alike */
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s) {
  CUstream_st *st = stream_of(s);
  if (st->capturing && kind != cudaMemcpyDeviceToDevice) { /* host memory in a graph */
    st->broken = 1;
    return fail_with(cudaErrorStreamCaptureUnsupported);
  }
  enqueue(s, [=] { memmove(dst, src, n); });
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
  enqueue(s, [=] { memset(p, v, n); });
  return cudaSuccess;
}

/* ---- streams, events, graphs ---- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
  *s = new CUstream_st();
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  CUstream_st *st = stream_of(s);
  if (st->capturing) {
    st->broken = 1;
    return fail_with(cudaErrorStreamCaptureUnsupported);
  }
  return cudaSuccess; /* everything already ran */
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  CUstream_st *st = stream_of(s);
  if (!s || st->capturing)
    return fail_with(cudaErrorIllegalState);
  st->capturing = 1;
  st->broken = 0;
  st->graph = new CUgraph_st();
  captures++;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
  CUstream_st *st = stream_of(s);
  *g = NULL;
  if (!st->capturing)
    return fail_with(cudaErrorIllegalState);
  st->capturing = 0;
  captures--;
  if (st->broken || last_error == cudaErrorStreamCaptureUnsupported) {
    delete st->graph;
    st->graph = NULL;
    return fail_with(cudaErrorStreamCaptureInvalidated);
  }
  *g = st->graph;
  st->graph = NULL;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags) {
  *e = new CUgraphExec_st{g->ops};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
  for (auto &op : e->ops)
    enqueue(s, op);
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
  delete g;
  return cudaSuccess;
}

static double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
cudaError_t cudaEventCreate(cudaEvent_t *e) {
  *e = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  enqueue(s, [=] { e->ms = now_ms(); });
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = (float)(b->ms - a->ms);
  return cudaSuccess;
}

/* ---- cuBLAS ---- */

cublasStatus_t cublasCreate(cublasHandle_t *h) {
  *h = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}

static float ld_elem(const void *p, cudaDataType t, size_t i) {
  if (t == CUDA_R_32F)
    return ((const float *)p)[i];
  if (t == CUDA_R_16F)
    return __half2float(((const __half *)p)[i]);
  return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
}
static void st_elem(void *p, cudaDataType t, size_t i, float v) {
  if (t == CUDA_R_32F)
    ((float *)p)[i] = v;
  else if (t == CUDA_R_16F)
    ((__half *)p)[i] = __float2half_rn(v);
  else
    ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
}

/* cuBLAS's own checks of a product's arguments */
static bool gemm_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda,
                    int ldb, int ldc, cudaDataType at, cudaDataType bt, cudaDataType ct,
                    cublasComputeType_t comp) {
  auto ok_op = [](cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T; };
  auto ok_type = [](cudaDataType t) {
    return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF;
  };
  return ok_op(ta) && ok_op(tb) && m >= 0 && n >= 0 && k >= 0 &&
         lda >= std::max(1, ta == CUBLAS_OP_N ? m : k) &&
         ldb >= std::max(1, tb == CUBLAS_OP_N ? k : n) && ldc >= std::max(1, m) && at == bt &&
         bt == ct && ok_type(at) && comp == CUBLAS_COMPUTE_32F;
}

/* the CPU's sgemm (OpenBLAS, or tests/cuda/blas_shim), linked with sdrepl_kernels */
extern "C" void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta,
                            float *C, int ldc);
enum { COL_MAJOR = 102, NO_TRANS = 111, TRANS = 112 };

/* The elements of a column-major matrix of `cols` columns of `rows` in storage of
 * leading dimension ld, widened to float (the same layout). */
static std::vector<float> widen(const void *p, cudaDataType t, int rows, int cols, int ld) {
  std::vector<float> f(cols > 0 ? (size_t)ld * (cols - 1) + rows : 0);
  for (int j = 0; j < cols; j++)
    for (int i = 0; i < rows; i++)
      f[(size_t)j * ld + i] = ld_elem(p, t, (size_t)j * ld + i);
  return f;
}

/* C = alpha op(A) op(B) + beta C in float32 (products of 16-bit values are exact in it,
 * as on the tensor cores), C rounded once to its type; C not read when beta is 0. */
static void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                 const void *A, int lda, const void *B, int ldb, float beta, void *C, int ldc,
                 cudaDataType t) {
  if (m == 0 || n == 0)
    return;
  std::vector<float> a = widen(A, t, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda);
  std::vector<float> b = widen(B, t, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb);
  std::vector<float> c = beta == 0.0f ? std::vector<float>((size_t)ldc * (n - 1) + m, 0.0f)
                                      : widen(C, t, m, n, ldc);
  if (k > 0)
    cblas_sgemm(COL_MAJOR, ta == CUBLAS_OP_N ? NO_TRANS : TRANS,
                tb == CUBLAS_OP_N ? NO_TRANS : TRANS, m, n, k, alpha, a.data(), lda, b.data(),
                ldb, beta, c.data(), ldc);
  else
    for (auto &x : c)
      x *= beta;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++)
      st_elem(C, t, (size_t)j * ldc + i, c[(size_t)j * ldc + i]);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at,
                                          int lda, long long sa, const void *B, cudaDataType bt,
                                          int ldb, long long sb, const void *beta, void *C,
                                          cudaDataType ct, int ldc, long long sc, int batch,
                                          cublasComputeType_t comp, cublasGemmAlgo_t algo) {
  if (!gemm_ok(ta, tb, m, n, k, lda, ldb, ldc, at, bt, ct, comp) || batch < 0)
    return CUBLAS_STATUS_INVALID_VALUE;
  const float al = *(const float *)alpha, be = *(const float *)beta;
  const size_t es = at == CUDA_R_32F ? 4 : 2;
  enqueue(h->stream, [=] {
    for (int b = 0; b < batch; b++)
      gemm(ta, tb, m, n, k, al, (const char *)A + (size_t)(b * sa) * es, lda,
           (const char *)B + (size_t)(b * sb) * es, ldb, be, (char *)C + (size_t)(b * sc) * es,
           ldc, at);
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t comp,
                            cublasGemmAlgo_t algo) {
  return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta,
                                    C, ct, ldc, 0, 1, comp, algo);
}
