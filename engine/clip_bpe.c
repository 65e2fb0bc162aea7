/* engine/clip_bpe.c — interned symbols, merge ranks, and CLIPTokenizer.bpe. */
#include "engine/clip_bpe.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"     // sdr_fail
#include "engine/interrupt.h" // sdr_interrupt_check
#include "engine/utf8.h"      // sdr_utf8_encode

int sdr_i32_push(sdr_i32vec *v, int32_t x) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 64;
    int32_t *p = realloc(v->v, cap * sizeof *p);
    if (!p)
      return sdr_fail("out of memory");
    v->v = p;
    v->cap = cap;
  }
  v->v[v->n++] = x;
  return 0;
}

void sdr_i32_free(sdr_i32vec *v) {
  free(v->v);
  v->v = NULL;
  v->n = v->cap = 0;
}

/* ---- bytes_to_unicode ------------------------------------------------------ */

/* Printable Latin-1 bytes stand for themselves; the others (controls, space,
 * 0x7F-0xA0, 0xAD) take U+0100 upwards in byte order. */
static int printable(unsigned b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t sdr_clip_byte_to_unicode(uint8_t b) {
  if (printable(b))
    return b;
  unsigned k = 0;
  for (unsigned x = 0; x < b; x++)
    k += !printable(x);
  return 0x100 + k;
}

int sdr_clip_unicode_to_byte(uint32_t cp) {
  if (cp < 0x100)
    return printable(cp) ? (int)cp : -1;
  unsigned k = cp - 0x100;
  for (unsigned x = 0; x < 256; x++)
    if (!printable(x) && k-- == 0)
      return (int)x;
  return -1;
}

/* ---- the tables -------------------------------------------------------------- */

typedef struct {
  uint32_t off, len; /* in the arena */
  int32_t id;        /* vocab id, or -1 */
} symbol;

typedef struct {
  uint64_t key; /* left << 32 | right, both symbols */
  int32_t rank, merged;
} merge;

struct sdr_clip_bpe {
  char *arena; /* symbol texts, each NUL-terminated */
  size_t arena_n, arena_cap;
  symbol *syms;
  size_t nsyms, syms_cap;
  int32_t *sym_slots; /* open addressing: symbol index, or -1 */
  size_t sym_slots_n;
  merge *merges; /* open addressing: key 0 is empty (symbol 0 is never a left side... see key()) */
  size_t merges_n, nmerges;
  int32_t *by_id; /* vocab id -> symbol */
  size_t by_id_n, vocab_size;
  int32_t byte_sym[256], byte_end_sym[256];
};

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h;
}

static uint64_t hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

/* Symbol keys are stored +1 so that 0 marks an empty merge slot. */
static uint64_t merge_key(int32_t l, int32_t r) {
  return ((uint64_t)(uint32_t)(l + 1) << 32) | (uint32_t)(r + 1);
}

static int32_t find_symbol(const sdr_clip_bpe *b, const char *s, size_t n) {
  size_t mask = b->sym_slots_n - 1;
  for (size_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
    int32_t k = b->sym_slots[i];
    if (k < 0)
      return -1;
    const symbol *y = &b->syms[k];
    if (y->len == n && memcmp(b->arena + y->off, s, n) == 0)
      return k;
  }
}

static int rehash_symbols(sdr_clip_bpe *b, size_t slots) {
  int32_t *t = malloc(slots * sizeof *t);
  if (!t)
    return sdr_fail("out of memory");
  memset(t, 0xFF, slots * sizeof *t);
  for (size_t k = 0; k < b->nsyms; k++) {
    const symbol *y = &b->syms[k];
    size_t i = hash_bytes(b->arena + y->off, y->len) & (slots - 1);
    while (t[i] >= 0)
      i = (i + 1) & (slots - 1);
    t[i] = (int32_t)k;
  }
  free(b->sym_slots);
  b->sym_slots = t;
  b->sym_slots_n = slots;
  return 0;
}

/* The symbol for a string, made when new. */
static int32_t intern(sdr_clip_bpe *b, const char *s, size_t n) {
  int32_t k = find_symbol(b, s, n);
  if (k >= 0)
    return k;
  if ((b->nsyms + 1) * 2 > b->sym_slots_n && rehash_symbols(b, b->sym_slots_n * 2))
    return -1;
  if (b->nsyms == b->syms_cap) {
    size_t cap = b->syms_cap * 2;
    symbol *p = realloc(b->syms, cap * sizeof *p);
    if (!p)
      return sdr_fail("out of memory");
    b->syms = p;
    b->syms_cap = cap;
  }
  if (b->arena_n + n + 1 > b->arena_cap) {
    size_t cap = b->arena_cap * 2;
    while (cap < b->arena_n + n + 1)
      cap *= 2;
    char *p = realloc(b->arena, cap);
    if (!p)
      return sdr_fail("out of memory");
    b->arena = p;
    b->arena_cap = cap;
  }
  memcpy(b->arena + b->arena_n, s, n);
  b->arena[b->arena_n + n] = 0;
  k = (int32_t)b->nsyms++;
  b->syms[k] = (symbol){(uint32_t)b->arena_n, (uint32_t)n, -1};
  b->arena_n += n + 1;
  size_t mask = b->sym_slots_n - 1, i = hash_bytes(s, n) & mask;
  while (b->sym_slots[i] >= 0)
    i = (i + 1) & mask;
  b->sym_slots[i] = k;
  return k;
}

static merge *merge_slot(const sdr_clip_bpe *b, uint64_t key) {
  size_t mask = b->merges_n - 1;
  for (size_t i = hash_u64(key) & mask;; i = (i + 1) & mask)
    if (b->merges[i].key == key || b->merges[i].key == 0)
      return &b->merges[i];
}

static int rehash_merges(sdr_clip_bpe *b, size_t slots) {
  merge *old = b->merges;
  size_t old_n = b->merges_n;
  b->merges = calloc(slots, sizeof *b->merges);
  if (!b->merges) {
    b->merges = old;
    return sdr_fail("out of memory");
  }
  b->merges_n = slots;
  for (size_t i = 0; i < old_n; i++)
    if (old[i].key)
      *merge_slot(b, old[i].key) = old[i];
  free(old);
  return 0;
}

sdr_clip_bpe *sdr_clip_bpe_new(void) {
  sdr_clip_bpe *b = calloc(1, sizeof *b);
  if (!b) {
    sdr_fail("out of memory");
    return NULL;
  }
  b->arena_cap = 1 << 16;
  b->syms_cap = 1024;
  b->arena = malloc(b->arena_cap);
  b->syms = malloc(b->syms_cap * sizeof *b->syms);
  b->sym_slots_n = 2048;
  b->sym_slots = malloc(b->sym_slots_n * sizeof *b->sym_slots);
  b->merges_n = 1024;
  b->merges = calloc(b->merges_n, sizeof *b->merges);
  if (!b->arena || !b->syms || !b->sym_slots || !b->merges) {
    sdr_clip_bpe_free(b);
    sdr_fail("out of memory");
    return NULL;
  }
  memset(b->sym_slots, 0xFF, b->sym_slots_n * sizeof *b->sym_slots);
  /* The starting symbols of every word: one per byte, and with "</w>" for the last. */
  for (int x = 0; x < 256; x++) {
    char s[8];
    uint8_t u[4];
    size_t n = sdr_utf8_encode(sdr_clip_byte_to_unicode((uint8_t)x), u);
    memcpy(s, u, n);
    memcpy(s + n, "</w>", 4);
    b->byte_sym[x] = intern(b, s, n);
    b->byte_end_sym[x] = intern(b, s, n + 4);
    if (b->byte_sym[x] < 0 || b->byte_end_sym[x] < 0) {
      sdr_clip_bpe_free(b);
      return NULL;
    }
  }
  return b;
}

void sdr_clip_bpe_free(sdr_clip_bpe *b) {
  if (!b)
    return;
  free(b->arena);
  free(b->syms);
  free(b->sym_slots);
  free(b->merges);
  free(b->by_id);
  free(b);
}

int sdr_clip_bpe_add_token(sdr_clip_bpe *b, const char *tok, size_t len, int32_t id) {
  if (id < 0)
    return sdr_fail("token id %d is negative", (int)id);
  int32_t k = intern(b, tok, len);
  if (k < 0)
    return -1;
  if ((size_t)id >= b->by_id_n) {
    size_t n = b->by_id_n ? b->by_id_n : 1024;
    while (n <= (size_t)id)
      n *= 2;
    int32_t *p = realloc(b->by_id, n * sizeof *p);
    if (!p)
      return sdr_fail("out of memory");
    memset(p + b->by_id_n, 0xFF, (n - b->by_id_n) * sizeof *p);
    b->by_id = p;
    b->by_id_n = n;
  }
  /* json.load keeps the last value of a repeated key; decoder = {v: k} the last key of an id. */
  if (b->syms[k].id < 0)
    b->vocab_size++;
  else if (b->by_id[b->syms[k].id] == k)
    b->by_id[b->syms[k].id] = -1;
  b->syms[k].id = id;
  b->by_id[id] = k;
  return 0;
}

int sdr_clip_bpe_add_merge(sdr_clip_bpe *b, const char *left, size_t llen, const char *right,
                           size_t rlen, int32_t rank) {
  if ((b->nmerges + 1) * 2 > b->merges_n && rehash_merges(b, b->merges_n * 2))
    return -1;
  int32_t l = intern(b, left, llen), r = intern(b, right, rlen);
  if (l < 0 || r < 0)
    return -1;
  char stack[256], *both = llen + rlen <= sizeof stack ? stack : malloc(llen + rlen);
  if (!both)
    return sdr_fail("out of memory");
  memcpy(both, left, llen);
  memcpy(both + llen, right, rlen);
  int32_t m = intern(b, both, llen + rlen);
  if (both != stack)
    free(both);
  if (m < 0)
    return -1;
  merge *slot = merge_slot(b, merge_key(l, r));
  if (!slot->key)
    b->nmerges++;
  *slot = (merge){merge_key(l, r), rank, m};
  return 0;
}

int32_t sdr_clip_bpe_token_id(const sdr_clip_bpe *b, const char *tok, size_t len) {
  int32_t k = find_symbol(b, tok, len);
  return k < 0 ? -1 : b->syms[k].id;
}

const char *sdr_clip_bpe_id_token(const sdr_clip_bpe *b, int32_t id) {
  if (id < 0 || (size_t)id >= b->by_id_n || b->by_id[id] < 0)
    return NULL;
  return b->arena + b->syms[b->by_id[id]].off;
}

size_t sdr_clip_bpe_vocab_size(const sdr_clip_bpe *b) { return b->vocab_size; }

int32_t sdr_clip_bpe_find_symbol(const sdr_clip_bpe *b, const char *s, size_t n) {
  return find_symbol(b, s, n);
}

int32_t sdr_clip_bpe_symbol_id(const sdr_clip_bpe *b, int32_t sym) { return b->syms[sym].id; }

const char *sdr_clip_bpe_symbol_text(const sdr_clip_bpe *b, int32_t sym) {
  return b->arena + b->syms[sym].off;
}

/* ---- bpe ------------------------------------------------------------------- */

static const merge *find_merge(const sdr_clip_bpe *b, int32_t l, int32_t r) {
  const merge *m = merge_slot(b, merge_key(l, r));
  return m->key ? m : NULL;
}

int sdr_clip_bpe_word(const sdr_clip_bpe *b, const uint8_t *word, size_t n, sdr_i32vec *syms) {
  if (n == 0)
    return 0;
  size_t base = syms->n;
  for (size_t i = 0; i < n; i++)
    if (sdr_i32_push(syms, i + 1 < n ? b->byte_sym[word[i]] : b->byte_end_sym[word[i]]))
      return -1;
  int32_t *w = syms->v + base;
  size_t len = n;
  /* Merge the lowest-ranked adjacent pair everywhere it occurs, left to right
   * without overlap, until no pair has a rank. */
  while (len > 1) {
    /* A merge pass is linear in the word, so a pasted word of thousands of
     * bytes takes long (as in Python): let Ctrl-C stop it. */
    if (len > 1024 && sdr_interrupt_check()) {
      syms->n = base;
      return -1;
    }
    const merge *best = NULL;
    for (size_t i = 0; i + 1 < len; i++) {
      const merge *m = find_merge(b, w[i], w[i + 1]);
      if (m && (!best || m->rank < best->rank))
        best = m;
    }
    if (!best)
      break;
    int32_t l = (int32_t)(best->key >> 32) - 1, r = (int32_t)(uint32_t)best->key - 1;
    size_t out = 0;
    for (size_t i = 0; i < len;) {
      if (i + 1 < len && w[i] == l && w[i + 1] == r) {
        w[out++] = best->merged;
        i += 2;
      } else {
        w[out++] = w[i++];
      }
    }
    len = out;
  }
  syms->n = base + len;
  return 0;
}
