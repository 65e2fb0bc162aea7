/* engine/pickle.h — a restricted unpickler for what torch.save writes.
 *
 * torch.save pickles a state dict with protocol 2: dicts and OrderedDicts,
 * strings, integers, tuples, and tensors that torch._utils._rebuild_tensor_v2
 * rebuilds from storages named by persistent ids ('storage', torch.FloatStorage,
 * key, location, numel). This unpickler is a stack machine over those opcodes
 * (pickletools' names; the few of protocols 0 and 3-5 that Python may also
 * emit) that builds plain values and runs nothing. A GLOBAL is looked up in a
 * short table, a subset of what torch's own weights_only unpickler
 * (torch/_weights_only_unpickler.py) allows; any other global is refused at
 * once with its name: "refusing to load: the file asks for the Python global
 * os.system". REDUCE applies only the table's functions, and only to the
 * arguments torch gives them.
 *
 * Bounds: every length is checked against the bytes left; a memo index may
 * not run ahead of the memo entries made so far (Python numbers them from 0
 * as it writes them), so the memo never outgrows the pickle; all values come
 * from one pool freed at once, so cycles made through the memo cost nothing.
 * Nothing here recurses over a value; readers of the result bound their own
 * depth (a dict may contain itself).
 */
#ifndef SDR_ENGINE_PICKLE_H
#define SDR_ENGINE_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/dtype.h" // sdr_dtype

enum { SDR_PK_MAX_DIMS = 8 };

typedef enum sdr_pk_kind {
  SDR_PK_NONE,
  SDR_PK_BOOL,
  SDR_PK_INT,    /* fits in int64 */
  SDR_PK_BIGINT, /* a Python int of more than 8 bytes: its little-endian bytes */
  SDR_PK_FLOAT,
  SDR_PK_STR, /* the UTF-8 as stored (not NUL-terminated) */
  SDR_PK_BYTES,
  SDR_PK_TUPLE,
  SDR_PK_LIST,
  SDR_PK_DICT, /* dict and OrderedDict: pairs in insertion order */
  SDR_PK_GLOBAL,
  SDR_PK_STORAGE,
  SDR_PK_TENSOR,
} sdr_pk_kind;

/* Where a storage's bytes are; the container (zip record or legacy stream) fills in data. */
typedef struct sdr_pk_storage {
  sdr_dtype dtype;
  const char *key; /* the persistent id's key, as stored */
  size_t key_len;
  int64_t numel;             /* elements, as the persistent id says */
  const unsigned char *data; /* NULL until the container resolves it */
  uint64_t nbytes;           /* bytes at data */
  struct sdr_pk_storage *next;
} sdr_pk_storage;

/* A tensor as _rebuild_tensor_v2 describes it; strides are checked by the reader. */
typedef struct sdr_pk_tensor {
  sdr_pk_storage *storage;
  int64_t offset; /* in elements */
  int ndim;
  int64_t shape[SDR_PK_MAX_DIMS];
  int64_t stride[SDR_PK_MAX_DIMS];
} sdr_pk_tensor;

typedef struct sdr_pk_value sdr_pk_value;
struct sdr_pk_value {
  sdr_pk_kind kind;
  union {
    int64_t i; /* BOOL, INT */
    double f;  /* FLOAT */
    struct {
      const char *p;
      size_t len;
    } s; /* STR, BYTES, BIGINT */
    struct {
      sdr_pk_value **v;
      size_t n, cap;
    } seq;      /* TUPLE, LIST; DICT as key, value, key, value, ... */
    int global; /* GLOBAL: an index into the table (pickle.c) */
    sdr_pk_storage *storage;
    sdr_pk_tensor *tensor;
  } u;
};

typedef struct sdr_pickle sdr_pickle;

/* name is used in messages ("model.ckpt: data.pkl"). */
sdr_pickle *sdr_pickle_new(const char *name);
/* Frees every value any load made. */
void sdr_pickle_free(sdr_pickle *pk);

/* Runs one pickle from data (at most len bytes) up to its STOP and returns the
 * value it leaves, owned by pk; *used gets the bytes read. Strings point into
 * data, which must outlive pk. NULL on any error, with a message naming the
 * file, the byte offset and the problem. Several loads may share one pk (the
 * legacy format is a sequence of pickles); each has its own memo. */
const sdr_pk_value *sdr_pickle_load(sdr_pickle *pk, const void *data, size_t len, size_t *used);

/* Every storage the loads made, newest first, for the container to resolve. */
sdr_pk_storage *sdr_pickle_storages(const sdr_pickle *pk);

/* d[key] for a DICT with string keys (the last pair wins, as in Python), or NULL. */
const sdr_pk_value *sdr_pk_dict_get(const sdr_pk_value *d, const char *key);
/* "int", "str", "dict", ... for messages. */
const char *sdr_pk_kind_name(sdr_pk_kind kind);
/* The module and name of a GLOBAL value ("torch._utils", "_rebuild_tensor_v2"). */
const char *sdr_pk_global_module(const sdr_pk_value *v);
const char *sdr_pk_global_name(const sdr_pk_value *v);

#endif
