/* engine/torch_zip.h — the zip container torch.save writes (torch >= 1.6).
 *
 * PyTorchStreamWriter (caffe2/serialize/inline_container.cc) writes a zip of
 * uncompressed ("stored") records under one folder named after the file:
 * <name>/data.pkl (the pickle), <name>/data/<key> (one per storage, aligned to
 * 64 bytes), <name>/version, and in newer versions <name>/byteorder and
 * <name>/.data/serialization_id. Files over 4 GB (an fp32 SD checkpoint) use
 * the ZIP64 extensions. Records are read in place: nothing is copied or
 * inflated, and a compressed or encrypted record is an error.
 *
 * Every offset and size from the central directory and the local headers is
 * checked against the buffer; a truncated or hostile archive is an error
 * naming the file and the problem, never a read out of bounds.
 */
#ifndef SDR_ENGINE_TORCH_ZIP_H
#define SDR_ENGINE_TORCH_ZIP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdr_zip_record {
  const char *name; /* NUL-terminated copy, without the archive's folder */
  const unsigned char *data;
  uint64_t size;
  uint32_t crc32; /* as the central directory says */
} sdr_zip_record;

typedef struct sdr_torch_zip {
  char *folder; /* "archive", or the file's stem as older torch names it */
  sdr_zip_record *records;
  size_t count;
} sdr_torch_zip;

/* Whether the bytes begin like a zip archive ("PK\3\4"). */
int sdr_torch_zip_sniff(const void *data, size_t len);
/* Reads the central directory of buf; name is for messages. */
int sdr_torch_zip_open(sdr_torch_zip *z, const void *buf, size_t len, const char *name);
void sdr_torch_zip_close(sdr_torch_zip *z);
/* A record by its name inside the folder ("data.pkl", "data/0"), or NULL. */
const sdr_zip_record *sdr_torch_zip_find(const sdr_torch_zip *z, const char *name);

#endif
