/* engine/clip_tokenizer.c — loading a CLIP tokenizer folder as from_pretrained does.
 *
 * vocab.json and merges.txt make the BPE (tokenization_clip.py's __init__:
 * merges are lines 1 to 48894 of the stripped file, whatever its length);
 * tokenizer_config.json and special_tokens_map.json name the special tokens
 * and model_max_length (tokenization_utils_base.py's from_pretrained, where
 * the map's entries override the config's).
 */
#include "engine/clip_tokenizer_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/error.h"        // sdr_fail
#include "engine/model_config.h" // sdr_json_load, sdr_json_get
#include "engine/utf8_check.h"   // sdr_utf8_check

/* bpe_merges = merges.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1] */
enum { CLIP_MAX_MERGES = 49152 - 256 - 2 };

static const char *const SPECIAL_KEYS[CLIP_NSPECIAL] = {"bos_token", "eos_token", "unk_token",
                                                        "pad_token"};
/* CLIPTokenizer.__init__'s defaults. */
static const char *const SPECIAL_DEFAULTS[CLIP_NSPECIAL] = {"<|startoftext|>", "<|endoftext|>",
                                                            "<|endoftext|>", "<|endoftext|>"};

static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) {
    sdr_fail("out of memory");
    return NULL;
  }
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- vocab.json ---------------------------------------------------------- */

static int load_vocab(sdr_clip_tokenizer *tok, const char *path) {
  sdr_json j;
  if (sdr_json_load(&j, path))
    return -1;
  int rc = 0;
  for (const cJSON *c = j.root->child; c && rc == 0; c = c->next) {
    double v = c->valuedouble;
    if (!cJSON_IsNumber(c) || v != (double)(int32_t)v || v < 0)
      rc = sdr_fail("%s: \"%s\": expected a token id (an integer from 0), got something else", path,
                    c->string);
    else
      rc = sdr_clip_bpe_add_token(tok->bpe, c->string, strlen(c->string), (int32_t)v);
  }
  sdr_json_free(&j);
  return rc;
}

/* ---- merges.txt ---------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    sdr_fail("%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (cap - n < 65536) {
      cap = cap ? cap * 2 : 1 << 20;
      char *p = realloc(buf, cap + 1);
      if (!p) {
        free(buf);
        fclose(f);
        sdr_fail("out of memory");
        return NULL;
      }
      buf = p;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    sdr_fail("%s: read error", path);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

/* str.isspace() for the ASCII range: what strip() and split() drop from a merges file. */
static int space_byte(unsigned char c) {
  return c == ' ' || (c >= 9 && c <= 13) || (c >= 28 && c <= 31);
}

static int load_merges(sdr_clip_tokenizer *tok, const char *path) {
  size_t n;
  char *text = read_file(path, &n);
  if (!text)
    return -1;
  size_t bad = sdr_utf8_check(text, n);
  if (bad != n) {
    free(text);
    return sdr_fail("%s: not valid UTF-8 (byte %zu)", path, bad);
  }
  /* Text mode reads \r\n and \r as \n. */
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    if (text[i] == '\r') {
      text[w++] = '\n';
      if (i + 1 < n && text[i + 1] == '\n')
        i++;
    } else {
      text[w++] = text[i];
    }
  }
  n = w;
  size_t start = 0;
  while (start < n && space_byte((unsigned char)text[start]))
    start++;
  while (n > start && space_byte((unsigned char)text[n - 1]))
    n--;
  int rc = 0;
  long line = 0;
  for (size_t p = start; p <= n && rc == 0 && line <= CLIP_MAX_MERGES; line++) {
    size_t e = p;
    while (e < n && text[e] != '\n')
      e++;
    if (line >= 1) { /* line 0 is "#version: 0.2" */
      const char *part[3];
      size_t plen[3], np = 0;
      for (size_t i = p; i < e;) {
        while (i < e && space_byte((unsigned char)text[i]))
          i++;
        if (i == e)
          break;
        size_t s = i;
        while (i < e && !space_byte((unsigned char)text[i]))
          i++;
        if (np < 3) {
          part[np] = text + s;
          plen[np] = i - s;
        }
        np++;
      }
      /* A line that is not two symbols never matches a pair, but keeps its rank. */
      if (np == 2)
        rc =
            sdr_clip_bpe_add_merge(tok->bpe, part[0], plen[0], part[1], plen[1], (int32_t)line - 1);
    }
    p = e + 1;
  }
  free(text);
  return rc;
}

/* ---- tokenizer.json ---------------------------------------------------------- */

/* What the tokenizers library saves (transformers 5 writes only this): the
 * same BPE as its model's "vocab" object and "merges" list, each merge a "a b"
 * string or (tokenizers 0.20 on) a ["a", "b"] pair, ranked by position. */
static int load_tokenizer_json(sdr_clip_tokenizer *tok, const char *path) {
  sdr_json j;
  if (sdr_json_load(&j, path))
    return -1;
  int rc = 0;
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(j.root, "model");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
  const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
  const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
  if (!cJSON_IsObject(model) ||
      (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "BPE"))) ||
      !cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
    sdr_json_free(&j);
    return sdr_fail("%s: not a BPE tokenizer (\"model\" with \"vocab\" and \"merges\" expected)",
                    path);
  }
  for (const cJSON *c = vocab->child; c && rc == 0; c = c->next) {
    double v = c->valuedouble;
    if (!cJSON_IsNumber(c) || v != (double)(int32_t)v || v < 0)
      rc = sdr_fail("%s: vocab \"%s\": expected a token id (an integer from 0)", path, c->string);
    else
      rc = sdr_clip_bpe_add_token(tok->bpe, c->string, strlen(c->string), (int32_t)v);
  }
  int32_t rank = 0;
  for (const cJSON *m = merges->child; m && rc == 0; m = m->next, rank++) {
    if (rank >= CLIP_MAX_MERGES) /* CLIPTokenizer keeps only these, as from merges.txt */
      break;
    const char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    if (cJSON_IsString(m)) {
      const char *s = m->valuestring, *sp = strchr(s, ' ');
      if (sp && !strchr(sp + 1, ' ')) {
        a = s, alen = (size_t)(sp - s);
        b = sp + 1, blen = strlen(sp + 1);
      }
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
               cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
      a = cJSON_GetArrayItem(m, 0)->valuestring, alen = strlen(a);
      b = cJSON_GetArrayItem(m, 1)->valuestring, blen = strlen(b);
    }
    if (!a || !alen || !blen) {
      rc = sdr_fail("%s: merge %d is not a pair of symbols", path, (int)rank);
      break;
    }
    rc = sdr_clip_bpe_add_merge(tok->bpe, a, alen, b, blen, rank);
  }
  sdr_json_free(&j);
  return rc;
}

/* ---- tokenizer_config.json, special_tokens_map.json ---------------------- */

/* A token as a config writes it: "text", {"content": "text", ...} or null. */
static int token_value(const cJSON *v, const char *path, const char *key, char **out) {
  if (cJSON_IsObject(v))
    v = cJSON_GetObjectItemCaseSensitive(v, "content");
  free(*out);
  *out = NULL;
  if (cJSON_IsNull(v))
    return 0;
  if (!cJSON_IsString(v))
    return sdr_fail("%s: \"%s\": expected a token (a string or {\"content\": ...})", path, key);
  *out = strdup(v->valuestring);
  return *out ? 0 : sdr_fail("out of memory");
}

static int add_token(sdr_clip_tokenizer *tok, const char *text, int32_t id, int special) {
  for (size_t i = 0; i < tok->nadded; i++)
    if (strcmp(tok->added[i].text, text) == 0)
      return 0;
  clip_added_token *p = realloc(tok->added, (tok->nadded + 1) * sizeof *p);
  if (!p)
    return sdr_fail("out of memory");
  tok->added = p;
  p[tok->nadded].text = strdup(text);
  if (!p[tok->nadded].text)
    return sdr_fail("out of memory");
  p[tok->nadded].special = special;
  p[tok->nadded++].id = id;
  return 0;
}

static int load_config(sdr_clip_tokenizer *tok, const char *path, int is_map) {
  sdr_json j;
  if (sdr_json_load(&j, path))
    return -1;
  int rc = 0;
  for (int k = 0; k < CLIP_NSPECIAL && rc == 0; k++) {
    const cJSON *v = sdr_json_get(&j, SPECIAL_KEYS[k]);
    if (v)
      rc = token_value(v, path, SPECIAL_KEYS[k], &tok->special[k]);
  }
  if (!is_map && rc == 0) {
    const cJSON *v = sdr_json_get(&j, "model_max_length");
    if (v && cJSON_IsNumber(v))
      tok->model_max_length = v->valuedouble >= (double)INT_MAX ? INT_MAX : (int)v->valuedouble;
    v = sdr_json_get(&j, "clean_up_tokenization_spaces");
    if (v && cJSON_IsBool(v))
      tok->clean_up_tokenization_spaces = cJSON_IsTrue(v);
    /* Newer configs list the added tokens with their ids. */
    v = sdr_json_get(&j, "added_tokens_decoder");
    for (const cJSON *e = cJSON_IsObject(v) ? v->child : NULL; e && rc == 0; e = e->next) {
      const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
      char *end;
      long id = strtol(e->string, &end, 10);
      if (!cJSON_IsString(content) || *end || id < 0 || id > INT32_MAX)
        rc = sdr_fail("%s: added_tokens_decoder: entry \"%s\" is not an id with a content", path,
                      e->string);
      else
        rc = add_token(tok, content->valuestring, (int32_t)id,
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")));
    }
  }
  sdr_json_free(&j);
  return rc;
}

/* ---- the tokenizer ----------------------------------------------------------- */

int32_t clip_added_id(const sdr_clip_tokenizer *tok, const char *text, size_t len) {
  for (size_t i = 0; i < tok->nadded; i++)
    if (strlen(tok->added[i].text) == len && memcmp(tok->added[i].text, text, len) == 0)
      return tok->added[i].id;
  return -1;
}

/* PreTrainedTokenizer.__init__ adds the special tokens: a token the vocab
 * has keeps its id, a new one takes the next free id. */
static int add_special_tokens(sdr_clip_tokenizer *tok) {
  size_t vocab = sdr_clip_bpe_vocab_size(tok->bpe);
  size_t next = vocab;
  for (size_t i = 0; i < tok->nadded; i++)
    if (sdr_clip_bpe_token_id(tok->bpe, tok->added[i].text, strlen(tok->added[i].text)) < 0)
      next++;
  for (int k = 0; k < CLIP_NSPECIAL; k++) {
    const char *t = tok->special[k];
    if (!t || clip_added_id(tok, t, strlen(t)) >= 0)
      continue;
    int32_t id = sdr_clip_bpe_token_id(tok->bpe, t, strlen(t));
    if (id < 0)
      id = (int32_t)next++;
    if (add_token(tok, t, id, 1))
      return -1;
  }
  tok->len = next;
  for (int k = 0; k < CLIP_NSPECIAL; k++)
    tok->special_id[k] =
        tok->special[k] ? clip_added_id(tok, tok->special[k], strlen(tok->special[k])) : -1;
  return 0;
}

static int load_files(sdr_clip_tokenizer *tok, const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return sdr_fail("no folder '%s' (a CLIP tokenizer folder holds vocab.json and merges.txt)",
                    dir);
  static const char *const files[] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                                      "special_tokens_map.json"};
  /* Both required files are looked for before either is read, so that a
   * half-copied folder is reported as such; a folder with neither may hold
   * the tokenizers library's tokenizer.json instead. */
  int present[4];
  for (int f = 0; f < 4; f++) {
    char *path = join(dir, files[f]);
    if (!path)
      return -1;
    present[f] = is_file(path);
    free(path);
  }
  int from_json = 0;
  if (!present[0] && !present[1]) {
    char *path = join(dir, "tokenizer.json");
    if (!path)
      return -1;
    from_json = is_file(path);
    int rc = from_json ? load_tokenizer_json(tok, path) : 0;
    free(path);
    if (rc)
      return -1;
  }
  for (int f = 0; f < 2 && !from_json; f++)
    if (!present[f])
      return sdr_fail("folder '%s' has no %s (a CLIP tokenizer folder holds vocab.json and "
                      "merges.txt, or tokenizer.json)",
                      dir, files[f]);
  for (int f = 0; f < 4; f++) {
    if (!present[f] || (from_json && f < 2))
      continue;
    char *path = join(dir, files[f]);
    if (!path)
      return -1;
    int rc;
    if (f == 0) {
      rc = load_vocab(tok, path);
    } else if (f == 1) {
      rc = load_merges(tok, path);
    } else {
      rc = load_config(tok, path, f == 3);
    }
    free(path);
    if (rc)
      return -1;
  }
  return add_special_tokens(tok);
}

sdr_clip_tokenizer *sdr_clip_tokenizer_load(const char *dir) {
  sdr_clip_tokenizer *tok = calloc(1, sizeof *tok);
  if (!tok) {
    sdr_fail("out of memory");
    return NULL;
  }
  tok->model_max_length = INT_MAX;
  tok->clean_up_tokenization_spaces = 1;
  for (int k = 0; k < CLIP_NSPECIAL; k++) {
    tok->special[k] = strdup(SPECIAL_DEFAULTS[k]);
    if (!tok->special[k]) {
      sdr_clip_tokenizer_free(tok);
      sdr_fail("out of memory");
      return NULL;
    }
  }
  tok->bpe = sdr_clip_bpe_new();
  if (!tok->bpe || load_files(tok, dir)) {
    sdr_clip_tokenizer_free(tok);
    return NULL;
  }
  return tok;
}

void sdr_clip_tokenizer_free(sdr_clip_tokenizer *tok) {
  if (!tok)
    return;
  sdr_clip_bpe_free(tok->bpe);
  for (int k = 0; k < CLIP_NSPECIAL; k++)
    free(tok->special[k]);
  for (size_t i = 0; i < tok->nadded; i++)
    free(tok->added[i].text);
  free(tok->added);
  free(tok);
}

int sdr_clip_tokenizer_first_overlong(sdr_clip_tokenizer *tok, size_t n) {
  if (n <= (size_t)tok->model_max_length || tok->warned_overlong)
    return 0;
  tok->warned_overlong = 1;
  return 1;
}

int sdr_clip_tokenizer_model_max_length(const sdr_clip_tokenizer *tok) {
  return tok->model_max_length;
}
int32_t sdr_clip_tokenizer_bos_id(const sdr_clip_tokenizer *tok) {
  return tok->special_id[CLIP_BOS];
}
int32_t sdr_clip_tokenizer_eos_id(const sdr_clip_tokenizer *tok) {
  return tok->special_id[CLIP_EOS];
}
int32_t sdr_clip_tokenizer_pad_id(const sdr_clip_tokenizer *tok) {
  return tok->special_id[CLIP_PAD];
}
int32_t sdr_clip_tokenizer_unk_id(const sdr_clip_tokenizer *tok) {
  return tok->special_id[CLIP_UNK];
}
size_t sdr_clip_tokenizer_vocab_size(const sdr_clip_tokenizer *tok) {
  return sdr_clip_bpe_vocab_size(tok->bpe);
}
size_t sdr_clip_tokenizer_len(const sdr_clip_tokenizer *tok) { return tok->len; }

/* get_vocab()[text]: an added token's id, else the vocabulary's, else -1 */
static int32_t vocab_id(const sdr_clip_tokenizer *tok, const char *text) {
  int32_t id = clip_added_id(tok, text, strlen(text));
  return id >= 0 ? id : sdr_clip_bpe_token_id(tok->bpe, text, strlen(text));
}

int sdr_clip_tokenizer_is_added(const sdr_clip_tokenizer *tok, const char *text) {
  return clip_added_id(tok, text, strlen(text)) >= 0;
}

int sdr_clip_tokenizer_has_token(const sdr_clip_tokenizer *tok, const char *text) {
  return vocab_id(tok, text) >= 0;
}

int sdr_clip_tokenizer_add_token(sdr_clip_tokenizer *tok, const char *text, int special,
                                 int32_t *id) {
  if (!*text)
    return sdr_fail("add_tokens: an empty token");
  int32_t have = vocab_id(tok, text);
  if (have >= 0) { /* _add_tokens: added_tokens_encoder[content] = its vocabulary id */
    *id = have;
    return add_token(tok, text, have, special);
  }
  if (tok->len >= INT32_MAX)
    return sdr_fail("add_tokens: the vocabulary is full");
  if (add_token(tok, text, (int32_t)tok->len, special) != 0)
    return -1;
  *id = (int32_t)tok->len++;
  return 0;
}

const char *sdr_clip_tokenizer_special_token(const sdr_clip_tokenizer *tok, const char *which) {
  static const char *const names[CLIP_NSPECIAL] = {"bos", "eos", "unk", "pad"};
  for (int k = 0; k < CLIP_NSPECIAL; k++)
    if (strcmp(which, names[k]) == 0)
      return tok->special[k];
  return NULL;
}

const char *sdr_clip_tokenizer_id_to_token(const sdr_clip_tokenizer *tok, int32_t id) {
  for (size_t i = 0; i < tok->nadded; i++)
    if (tok->added[i].id == id)
      return tok->added[i].text;
  return sdr_clip_bpe_id_token(tok->bpe, id);
}

int32_t sdr_clip_tokenizer_token_to_id(const sdr_clip_tokenizer *tok, const char *token) {
  int32_t id = vocab_id(tok, token);
  if (id < 0 && tok->special[CLIP_UNK])
    id = sdr_clip_bpe_token_id(tok->bpe, tok->special[CLIP_UNK], strlen(tok->special[CLIP_UNK]));
  return id;
}

/* len(set(get_vocab())): the vocabulary and the added texts it lacks */
static size_t count_len(const sdr_clip_tokenizer *tok) {
  size_t n = sdr_clip_bpe_vocab_size(tok->bpe);
  for (size_t i = 0; i < tok->nadded; i++)
    n += sdr_clip_bpe_token_id(tok->bpe, tok->added[i].text, strlen(tok->added[i].text)) < 0;
  return n;
}

static int by_id(const void *a, const void *b) {
  int32_t x = ((const clip_added_token *)a)->id, y = ((const clip_added_token *)b)->id;
  return (x > y) - (x < y);
}

int sdr_clip_tokenizer_remove_added(sdr_clip_tokenizer *tok, const char *const *names, int n,
                                    int32_t *removed, int *nremoved, int32_t *last_special) {
  /* added_tokens_decoder is iterated in id order */
  qsort(tok->added, tok->nadded, sizeof *tok->added, by_id);
  int32_t last = -1;
  int k = 0;
  for (size_t i = 0; i < tok->nadded; i++) {
    if (tok->added[i].special) {
      last = tok->added[i].id;
      continue;
    }
    int wanted = n == 0;
    for (int j = 0; j < n && !wanted; j++)
      wanted = strcmp(names[j], tok->added[i].text) == 0;
    if (wanted)
      removed[k++] = tok->added[i].id;
  }
  if (k == 0)
    return sdr_fail("No tokens to remove found");
  /* out of both maps */
  size_t w = 0;
  for (size_t i = 0; i < tok->nadded; i++) {
    int gone = 0;
    for (int j = 0; j < k && !gone; j++)
      gone = !tok->added[i].special && tok->added[i].id == removed[j];
    if (gone)
      free(tok->added[i].text);
    else
      tok->added[w++] = tok->added[i];
  }
  tok->nadded = w;
  /* "Make all token ids sequential": each id past the last special one and past the next
   * free place moves there; one already in place keeps its id and the place does not
   * advance (so a later one can land on it, as diffusers' loop does). */
  int32_t key = 1;
  for (size_t i = 0; i < tok->nadded; i++)
    if (tok->added[i].id > last && tok->added[i].id > last + key)
      tok->added[i].id = last + key++;
  tok->len = count_len(tok);
  *nremoved = k;
  *last_special = last;
  return 0;
}

size_t sdr_clip_tokenizer_added_count(const sdr_clip_tokenizer *tok) { return tok->nadded; }
