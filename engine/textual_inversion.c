/* engine/textual_inversion.c — load_textual_inversion and maybe_convert_prompt, as
 * diffusers 0.27.2's loaders/textual_inversion.py does them. */
#include "engine/textual_inversion.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"   // sdr_fail
#include "engine/weights.h" // sdr_weight_file_open

/* ---- reading ------------------------------------------------------------------------ */

int sdr_ti_from_values(const char *token, const float *values, int rows, int dim,
                       sdr_ti_embedding *e) {
  memset(e, 0, sizeof *e);
  if (rows < 1 || dim < 1)
    return sdr_fail("textual inversion: an embedding of %d x %d values", rows, dim);
  e->token = strdup(token);
  e->vectors = malloc((size_t)rows * dim * sizeof *e->vectors);
  if (!e->token || !e->vectors) {
    sdr_ti_embedding_free(e);
    return sdr_fail("out of memory");
  }
  memcpy(e->vectors, values, (size_t)rows * dim * sizeof *values);
  e->rows = rows;
  e->dim = dim;
  return 0;
}

int sdr_ti_read_file(const char *path, const char *token, sdr_ti_embedding *e) {
  memset(e, 0, sizeof *e);
  sdr_weight_file *f = sdr_weight_file_open(path);
  if (!f)
    return -1;
  int rc = -1;
  size_t n = sdr_weight_file_count(f);
  if (n != 1) {
    /* A1111's .pt holds {"string_to_param": {"*": tensor}, "name": ...}: nested, which the
     * restricted reader leaves out (it reads flat state dicts only). */
    sdr_fail("%s: %zu tensors; a textual inversion file holds one (diffusers' {token: "
             "embedding}, or A1111's safetensors) - A1111's .pt embeddings are not supported, "
             "convert them to safetensors",
             path, n);
    goto done;
  }
  const sdr_st_tensor *t = sdr_weight_file_at(f, 0);
  if (t->ndim < 1 || t->ndim > 2 ||
      (t->dtype != SDR_F32 && t->dtype != SDR_F16 && t->dtype != SDR_BF16)) {
    sdr_fail("%s: '%s' is a %d-dimensional %s tensor; an embedding is (dim) or (vectors, dim) "
             "of floats",
             path, t->name, t->ndim, sdr_dtype_name(t->dtype));
    goto done;
  }
  const int64_t r64 = t->ndim == 2 ? t->shape[0] : 1, d64 = t->shape[t->ndim - 1];
  if (r64 < 1 || d64 < 1 || r64 > 4096 || d64 > 65536) {
    sdr_fail("%s: an embedding of %lld x %lld values; textual inversions hold 1 to 4096 "
             "vectors of at most 65536",
             path, (long long)r64, (long long)d64);
    goto done;
  }
  const int rows = (int)r64, dim = (int)d64;
  float *v = malloc((size_t)(rows > 0 ? rows : 1) * (dim > 0 ? dim : 1) * sizeof *v);
  if (!v) {
    sdr_fail("out of memory");
    goto done;
  }
  sdr_floats_convert(v, SDR_F32, t->data, t->dtype, (size_t)rows * dim);
  /* the given token wins over the file's key (diffusers logs that, and goes on) */
  rc = sdr_ti_from_values(token ? token : t->name, v, rows, dim, e);
  free(v);
done:
  sdr_weight_file_release(f);
  return rc;
}

void sdr_ti_embedding_free(sdr_ti_embedding *e) {
  free(e->token);
  free(e->vectors);
  memset(e, 0, sizeof *e);
}

/* ---- loading ------------------------------------------------------------------------ */

/* "tok_i" (i >= 1), malloc'd */
static char *numbered(const char *token, int i) {
  size_t n = strlen(token) + 16;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s_%d", token, i);
  return s;
}

int sdr_ti_load(sdr_clip_tokenizer *tok, sdr_clip_text_model *te, sdr_generator *g,
                const sdr_ti_embedding *es, int n) {
  /* _retrieve_tokens_and_embeddings, then _extend_tokens_and_embeddings: all checks
   * before anything changes */
  int total = 0;
  for (int i = 0; i < n; i++) {
    if (sdr_clip_tokenizer_has_token(tok, es[i].token))
      return sdr_fail("Token %s already in tokenizer vocabulary. Please choose a different token "
                      "name or remove %s and embedding from the tokenizer and text encoder.",
                      es[i].token, es[i].token);
    for (int k = 0; k < i; k++)
      if (strcmp(es[k].token, es[i].token) == 0)
        return sdr_fail("You have passed a list of tokens that contains duplicates: %s",
                        es[i].token);
  }
  for (int i = 0; i < n; i++) {
    char *one = numbered(es[i].token, 1);
    if (!one)
      return sdr_fail("out of memory");
    int taken = sdr_clip_tokenizer_has_token(tok, one);
    free(one);
    if (taken)
      return sdr_fail("Multi-vector Token %s... already in tokenizer vocabulary. Please choose a "
                      "different token name or remove the tokens and embedding from the "
                      "tokenizer and text encoder.",
                      es[i].token);
    total += es[i].rows;
  }
  const int D = te->cfg.hidden_size;
  for (int i = 0; i < n; i++)
    if (es[i].dim != D)
      return sdr_fail("Loaded embeddings are of incorrect shape. Expected each textual inversion "
                      "embedding to be of shape %d, but are %d",
                      D, es[i].dim);

  const size_t len = sdr_clip_tokenizer_len(tok), grown = len + (size_t)total;
  if (grown > 0x7fffffff)
    return sdr_fail("textual inversion: %zu tokens are too many", grown);
  /* resize_token_embeddings(len(tokenizer) + the new tokens): of the drawn rows past the old
   * table, only those before the new tokens' ids keep their values (the tokens' own are set
   * below) */
  if (sdr_clip_text_resize_drawn(te, (int)grown, g, (int)len) != 0)
    return -1;
  /* add_tokens and the rows, one token at a time */
  for (int i = 0; i < n; i++)
    for (int r = 0; r < es[i].rows; r++) {
      char *name = r ? numbered(es[i].token, r) : strdup(es[i].token);
      int32_t id;
      int rc = name ? sdr_clip_tokenizer_add_token(tok, name, 0, &id) : sdr_fail("out of memory");
      free(name);
      if (rc == 0)
        rc = sdr_clip_text_set_token_embedding(te, id, es[i].vectors + (size_t)r * D);
      if (rc != 0)
        return -1;
    }
  return 0;
}

int sdr_ti_unload(sdr_clip_tokenizer *tok, sdr_clip_text_model *te, sdr_generator *cpu_g,
                  const char *const *names, int n) {
  const size_t cap = sdr_clip_tokenizer_added_count(tok) + 1;
  const int V = te->cfg.vocab_size, D = te->cfg.hidden_size;
  int32_t *removed = malloc(cap * sizeof *removed);
  int *keep = malloc((size_t)(V > 0 ? V : 1) * sizeof *keep);
  int nremoved = 0, nkeep = 0, rc = -1;
  int32_t last;
  if (!removed || !keep) {
    sdr_fail("out of memory");
    goto done;
  }
  if (sdr_clip_tokenizer_remove_added(tok, names, n, removed, &nremoved, &last) != 0)
    goto done;
  /* the rows up to the last special token's, then the others that stay, in order */
  for (int i = 0; i < V; i++) {
    int gone = 0;
    for (int k = 0; k < nremoved && !gone; k++)
      gone = removed[k] == i;
    if (i <= last || !gone)
      keep[nkeep++] = i;
  }
  /* nn.Embedding(rows, dim): float32 on the CPU, whatever the text encoder's device */
  if (sdr_generator_normal_tail(cpu_g, (size_t)nkeep * D, SDR_F32, 0, NULL) != 0) {
    sdr_fail("out of memory");
    goto done;
  }
  rc = sdr_clip_text_keep_rows(te, keep, nkeep);
done:
  free(removed);
  free(keep);
  return rc;
}

/* ---- prompts ------------------------------------------------------------------------ */

/* s with every `from` replaced by `to` (str.replace), malloc'd */
static char *replace_all(const char *s, const char *from, const char *to) {
  const size_t nf = strlen(from), nt = strlen(to);
  size_t count = 0;
  for (const char *p = strstr(s, from); p; p = strstr(p + nf, from))
    count++;
  char *out = malloc(strlen(s) + count * (nt > nf ? nt - nf : 0) + 1);
  if (!out)
    return NULL;
  char *o = out;
  const char *p = s;
  for (const char *hit; (hit = strstr(p, from)); p = hit + nf) {
    memcpy(o, p, (size_t)(hit - p));
    o += hit - p;
    memcpy(o, to, nt);
    o += nt;
  }
  strcpy(o, p);
  return out;
}

char *sdr_ti_convert_prompt(const sdr_clip_tokenizer *tok, const char *prompt) {
  char **tokens = NULL;
  size_t n = 0;
  char *out = strdup(prompt);
  if (!out) {
    sdr_fail("out of memory");
    return NULL;
  }
  if (sdr_clip_tokenizer_tokenize(tok, prompt, &tokens, &n) != 0) {
    free(out);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    int seen = 0; /* set(tokens): each once */
    for (size_t k = 0; k < i && !seen; k++)
      seen = strcmp(tokens[k], tokens[i]) == 0;
    if (seen || !sdr_clip_tokenizer_is_added(tok, tokens[i]))
      continue;
    size_t cap = strlen(tokens[i]) + 1, len = cap - 1;
    char *repl = malloc(cap);
    if (!repl)
      goto oom;
    strcpy(repl, tokens[i]);
    for (int k = 1;; k++) {
      char *next = numbered(tokens[i], k);
      if (!next) {
        free(repl);
        goto oom;
      }
      if (!sdr_clip_tokenizer_is_added(tok, next)) {
        free(next);
        break;
      }
      size_t add = strlen(next) + 1;
      char *grown = realloc(repl, len + add + 1);
      if (!grown) {
        free(next), free(repl);
        goto oom;
      }
      repl = grown;
      repl[len] = ' ';
      strcpy(repl + len + 1, next);
      len += add;
      free(next);
    }
    if (strcmp(repl, tokens[i]) != 0) {
      char *r = replace_all(out, tokens[i], repl);
      if (!r) {
        free(repl);
        goto oom;
      }
      free(out);
      out = r;
    }
    free(repl);
  }
  sdr_clip_tokens_free(tokens, n);
  return out;
oom:
  sdr_clip_tokens_free(tokens, n);
  free(out);
  sdr_fail("out of memory");
  return NULL;
}
