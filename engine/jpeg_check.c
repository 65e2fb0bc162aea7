/* engine/jpeg_check.c — walks a JPEG's segments as stb_image's marker loop does and
 * checks each DHT (define Huffman table) segment. */
#include "engine/jpeg_check.h"

#include "engine/error.h" // sdr_fail

/* A byte as stb_image reads it: past the end of the data it reads 0. */
static unsigned at(const uint8_t *data, size_t len, size_t i) { return i < len ? data[i] : 0; }

/* The tables of one DHT segment, bytes [p, seg_end) of data (which may end first). */
static int check_dht(const uint8_t *data, size_t len, size_t p, size_t seg_end,
                     const char *name) {
  while (p < seg_end) {
    int n = 0;
    for (size_t i = 1; i <= 16; i++)
      n += (int)at(data, len, p + i);
    if (n > 256)
      return sdr_fail("%s: corrupt JPEG (a Huffman table claims %d codes; at most 256 exist)",
                      name, n);
    p += 17 + (size_t)n;
  }
  return 0;
}

int sdr_jpeg_check_huffman(const uint8_t *data, size_t len, const char *name) {
  /* Start of image: 0xFF, any number of 0xFF fill bytes, 0xD8 (stbi__get_marker). */
  size_t pos = 0;
  if (len < 2 || data[0] != 0xFF)
    return 0;
  while (pos < len && data[pos] == 0xFF)
    pos++;
  if (pos >= len || data[pos] != 0xD8)
    return 0;
  pos++;
  while (pos + 1 < len) {
    if (data[pos] != 0xFF) {
      pos++; /* stray bytes between segments: stb reads past them too */
      continue;
    }
    uint8_t m = data[pos + 1];
    if (m == 0xFF) { /* fill byte */
      pos++;
      continue;
    }
    if (m == 0xD9) /* end of image */
      break;
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* no length */
      pos += 2;
      continue;
    }
    size_t seg = (at(data, len, pos + 2) << 8) | at(data, len, pos + 3);
    /* A segment may claim more than the file holds: stb then reads zeros. */
    if (m == 0xC4 && seg >= 2 && check_dht(data, len, pos + 4, pos + 2 + seg, name) != 0)
      return -1;
    if (seg < 2)
      break;
    pos += 2 + seg;
    if (m == 0xDA) {
      /* Entropy-coded data up to the next marker: an 0xFF there is followed by 0x00
       * (a stuffed byte) or a restart marker; anything else is the next segment. */
      while (pos + 1 < len && !(data[pos] == 0xFF && data[pos + 1] != 0x00 &&
                                !(data[pos + 1] >= 0xD0 && data[pos + 1] <= 0xD7)))
        pos++;
    }
  }
  return 0;
}
