/* kernels/dtype.c — element types: sizes, names, and float conversions between the three float
 * widths. */
#include "kernels/dtype.h"

#include <stdint.h>
#include <string.h>

#include "kernels/half.h" // sdr_f16_to_f32, sdr_f32_to_f16, ...

static const struct {
  size_t size;
  const char *torch, *safetensors;
} info[SDR_DTYPE_COUNT] = {
    [SDR_F32] = {4, "float32", "F32"},    [SDR_F16] = {2, "float16", "F16"},
    [SDR_BF16] = {2, "bfloat16", "BF16"}, [SDR_F64] = {8, "float64", "F64"},
    [SDR_I64] = {8, "int64", "I64"},      [SDR_I32] = {4, "int32", "I32"},
    [SDR_I16] = {2, "int16", "I16"},      [SDR_I8] = {1, "int8", "I8"},
    [SDR_U8] = {1, "uint8", "U8"},        [SDR_BOOL] = {1, "bool", "BOOL"},
};

size_t sdr_dtype_size(sdr_dtype t) { return (unsigned)t < SDR_DTYPE_COUNT ? info[t].size : 0; }

const char *sdr_dtype_name(sdr_dtype t) {
  return (unsigned)t < SDR_DTYPE_COUNT ? info[t].torch : "unknown";
}

int sdr_dtype_from_name(const char *name) {
  static const struct {
    const char *alias;
    sdr_dtype t;
  } aliases[] = {{"float", SDR_F32}, {"half", SDR_F16}, {"double", SDR_F64},
                 {"long", SDR_I64},  {"int", SDR_I32},  {"short", SDR_I16}};
  if (!name)
    return -1;
  if (strncmp(name, "torch.", 6) == 0)
    name += 6;
  for (int t = 0; t < SDR_DTYPE_COUNT; t++)
    if (strcmp(name, info[t].torch) == 0)
      return t;
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcmp(name, aliases[i].alias) == 0)
      return (int)aliases[i].t;
  return -1;
}

int sdr_dtype_from_safetensors(const char *name) {
  for (int t = 0; t < SDR_DTYPE_COUNT; t++)
    if (name && strcmp(name, info[t].safetensors) == 0)
      return t;
  return -1;
}

static float load_f(const void *src, sdr_dtype t, size_t i) {
  switch (t) {
  case SDR_F16:
    return sdr_f16_to_f32(((const uint16_t *)src)[i]);
  case SDR_BF16:
    return sdr_bf16_to_f32(((const uint16_t *)src)[i]);
  default:
    return ((const float *)src)[i];
  }
}

void sdr_floats_convert(void *dst, sdr_dtype to, const void *src, sdr_dtype from, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = load_f(src, from, i);
    if (to == SDR_F32)
      ((float *)dst)[i] = x;
    else if (to == SDR_F16)
      ((uint16_t *)dst)[i] = sdr_f32_to_f16(x);
    else
      ((uint16_t *)dst)[i] = sdr_f32_to_bf16(x);
  }
}
