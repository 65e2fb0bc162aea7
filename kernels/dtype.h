/* kernels/dtype.h — element types, named as torch names them. */
#ifndef SDR_KERNELS_DTYPE_H
#define SDR_KERNELS_DTYPE_H

#include <stddef.h>

typedef enum sdr_dtype {
  SDR_F32 = 0,
  SDR_F16,
  SDR_BF16,
  SDR_F64,
  SDR_I64,
  SDR_I32,
  SDR_I16,
  SDR_I8,
  SDR_U8,
  SDR_BOOL,
  SDR_DTYPE_COUNT
} sdr_dtype;

size_t sdr_dtype_size(sdr_dtype t);
/* torch's names: "float32", "float16", "bfloat16", "float64", "int64", ... */
const char *sdr_dtype_name(sdr_dtype t);
/* Accepts torch's names and their aliases ("float", "half", "long", ...); -1 if unknown. */
int sdr_dtype_from_name(const char *name);
/* safetensors' names: "F32", "F16", "BF16", "F64", "I64", ...; -1 if unknown. */
int sdr_dtype_from_safetensors(const char *name);
/* n values from float32, float16 or bfloat16 into another of the three, through float32
 * (widening is exact; narrowing rounds to nearest even). */
void sdr_floats_convert(void *dst, sdr_dtype to, const void *src, sdr_dtype from, size_t n);

#endif
