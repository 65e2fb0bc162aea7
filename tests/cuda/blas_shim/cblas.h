/* tests/cuda/blas_shim/cblas.h — the one CBLAS call the CPU backend makes (cblas_sgemm),
 * for building the CUDA checks where OpenBLAS is not installed (the GPU machine's image:
 * scripts/device_check.sh). Same enum values as the reference CBLAS. */
#ifndef SDR_TESTS_CBLAS_SHIM_H
#define SDR_TESTS_CBLAS_SHIM_H

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M,
                 int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);

#endif
