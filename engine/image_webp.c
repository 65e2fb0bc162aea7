/* engine/image_webp.c — WebP decoding through libwebp's animation decoder, as Pillow's. */
#include "engine/image_webp.h"

#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "engine/error.h" // sdr_fail

int sdr_webp_is(const uint8_t *data, size_t len) {
  return len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0;
}

int sdr_webp_info(const uint8_t *data, size_t len, const char *name, int *width, int *height,
                  int *channels) {
  /* RIFF's size counts what follows its first 8 bytes: a download cut short has less */
  const size_t riff =
      (size_t)data[4] | (size_t)data[5] << 8 | (size_t)data[6] << 16 | (size_t)data[7] << 24;
  if (riff + 8 > len)
    return sdr_fail("%s: image file is truncated (%zu bytes expected, %zu present)", name, riff + 8,
                    len);
  WebPBitstreamFeatures f;
  if (WebPGetFeatures(data, len, &f) != VP8_STATUS_OK)
    return sdr_fail("%s: cannot identify image file (not a WebP libwebp can read)", name);
  WebPData in = {data, len};
  WebPDemuxer *demux = WebPDemux(&in);
  if (!demux)
    return sdr_fail("%s: cannot identify image file (a damaged WebP container)", name);
  *width = (int)WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH);
  *height = (int)WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT);
  WebPDemuxDelete(demux);
  /* PIL's mode: RGBA when the first frame's bitstream has alpha, else RGB */
  *channels = f.has_alpha ? 4 : 3;
  return 0;
}

int sdr_webp_read(const uint8_t *data, size_t len, const char *name, sdr_image *img) {
  WebPData in = {data, len};
  WebPAnimDecoder *dec = WebPAnimDecoderNew(&in, NULL); /* RGBA, as PIL's (no options) */
  if (!dec)
    return sdr_fail("%s: cannot decode image (could not create decoder object)", name);
  WebPAnimInfo info;
  uint8_t *canvas = NULL;
  int timestamp = 0;
  if (!WebPAnimDecoderGetInfo(dec, &info) || (int)info.canvas_width != img->width ||
      (int)info.canvas_height != img->height || !WebPAnimDecoderGetNext(dec, &canvas, &timestamp)) {
    WebPAnimDecoderDelete(dec);
    return sdr_fail("%s: cannot decode image (failed to decode the first frame)", name);
  }
  const size_t n = (size_t)img->width * (size_t)img->height;
  if (img->channels == 4) {
    memcpy(img->pixels, canvas, n * 4);
  } else {
    for (size_t i = 0; i < n; i++)
      memcpy(img->pixels + 3 * i, canvas + 4 * i, 3);
  }
  WebPAnimDecoderDelete(dec);
  return 0;
}
