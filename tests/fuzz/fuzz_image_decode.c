/* tests/fuzz/fuzz_image_decode.c — sdr_image_decode on any bytes: an image or an
 * error message, never a crash, a leak or a read past the end; and what decodes
 * survives a PNG round trip (pixels and parameters text) unchanged.
 *
 *   CC=clang cmake -S . -B build-fuzz -DSDREPL_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_image_decode
 *   mkdir -p tests/fuzz/corpus-image   # seeded with the pictures in tests/fixtures/pil
 *   build-fuzz/tests/fuzz_image_decode -max_total_time=120 tests/fuzz/corpus-image
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_last_error
#include "engine/image.h" // sdr_image

/* Our decoder and PNG code, and stb_image itself, compiled into this target:
 * the libraries are built without -fsanitize=fuzzer, and libFuzzer needs the
 * coverage of the code it explores. A crash inside stb_image is a crash of
 * sdrepl on a hostile file, so it is explored too. (The linker then takes
 * neither object from the archive, and these stbi_ definitions come before
 * libstb's.) */
#include "engine/image_complete.c"
#include "engine/image_decode.c"
#include "engine/image_png.c"
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Weverything"
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#pragma clang diagnostic pop

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of exactly size bytes, so ASan sees any read past the end. */
  uint8_t *bytes = malloc(size ? size : 1);
  if (!bytes)
    return 0;
  if (size)
    memcpy(bytes, data, size);

  /* The text reader alone, on chunk streams stb would refuse. */
  free(sdr_png_read_parameters(bytes, size));

  sdr_clear_error();
  sdr_image *img = sdr_image_decode(bytes, size, "fuzz");
  free(bytes);
  if (!img) {
    if (!sdr_last_error()[0])
      __builtin_trap(); /* a failure always says why */
    return 0;
  }
  if (img->width < 1 || img->height < 1 || img->width > SDR_IMAGE_MAX_SIDE ||
      img->height > SDR_IMAGE_MAX_SIDE ||
      (img->channels != 1 && img->channels != 3 && img->channels != 4))
    __builtin_trap();
  if ((size_t)img->width * (size_t)img->height <= 64 * 64) {
    uint8_t *png;
    size_t len;
    if (sdr_image_encode_png(img, &png, &len) != 0) {
      /* Only text too long for a chunk may fail. */
      if (!img->parameters)
        __builtin_trap();
    } else {
      sdr_image *back = sdr_image_decode(png, len, "round trip");
      if (!back || back->width != img->width || back->height != img->height ||
          back->channels != img->channels ||
          memcmp(back->pixels, img->pixels, sdr_image_bytes(img)) != 0)
        __builtin_trap();
      /* Text with a NUL inside is cut there by C strings; compare what C holds. */
      if ((img->parameters == NULL) != (back->parameters == NULL) ||
          (img->parameters && strcmp(img->parameters, back->parameters) != 0))
        __builtin_trap();
      sdr_image_free(back);
      free(png);
    }
  }
  sdr_image_free(img);
  return 0;
}
