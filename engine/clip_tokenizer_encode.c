/* engine/clip_tokenizer_encode.c — text to ids and back, as CLIPTokenizer (slow) does.
 *
 * PreTrainedTokenizer.tokenize first cuts the text at added tokens (the
 * special ones: "<|startoftext|>", "<|endoftext|>", and the pad token, which
 * is "!" for SD 2.x); each other piece goes through CLIPTokenizer._tokenize:
 *
 *   text = whitespace_clean(ftfy.fix_text(text)).lower()
 *   for token in re.findall(pat, text): bpe(byte_encode(token))
 *
 * and build_inputs_with_special_tokens puts BOS first and EOS last.
 */
#include "engine/clip_tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

#include "engine/clip_ftfy.h" // sdr_ftfy_fix_text
#include "engine/error.h"     // sdr_fail
#include "engine/unicode.h"   // sdr_uni_lower, sdr_uni_clip_class
#include "engine/utf8.h"      // sdr_u32str, sdr_utf8_decode_replace

/* ---- cleaning ------------------------------------------------------------------ */

/* whitespace_clean: re.sub(r"\s+", " ", text) with the regex module, then
 * str.strip() (whose whitespace is str.isspace's, a slightly different set). */
static int whitespace_clean(const uint32_t *s, size_t n, sdr_u32str *out) {
  size_t base = out->n;
  for (size_t i = 0; i < n;) {
    if (sdr_uni_re_isspace(s[i])) {
      while (i < n && sdr_uni_re_isspace(s[i]))
        i++;
      if (sdr_u32_push(out, ' '))
        return -1;
    } else if (sdr_u32_push(out, s[i++])) {
      return -1;
    }
  }
  size_t a = base, b = out->n;
  while (a < b && sdr_uni_py_isspace(out->v[a]))
    a++;
  while (b > a && sdr_uni_py_isspace(out->v[b - 1]))
    b--;
  if (b > a)
    memmove(out->v + base, out->v + a, (b - a) * sizeof *out->v);
  out->n = base + (b - a);
  return 0;
}

/* whitespace_clean(ftfy.fix_text(text)).lower() */
static int clean(const uint32_t *s, size_t n, sdr_u32str *out) {
  sdr_u32str fixed = {0}, ws = {0};
  int rc = sdr_ftfy_fix_text(s, n, &fixed) || whitespace_clean(fixed.v, fixed.n, &ws) ||
                   sdr_uni_lower(ws.v, ws.n, out)
               ? -1
               : 0;
  sdr_u32_free(&fixed);
  sdr_u32_free(&ws);
  return rc;
}

char *sdr_clip_clean_text(const char *text) {
  sdr_u32str in = {0}, out = {0};
  char *r = NULL;
  if (sdr_utf8_decode_replace((const uint8_t *)text, strlen(text), &in) == 0 &&
      clean(in.v, in.n, &out) == 0)
    r = sdr_utf8_from_u32(out.v, out.n);
  sdr_u32_free(&in);
  sdr_u32_free(&out);
  return r;
}

/* ---- the pre-tokenizer -------------------------------------------------------- */

/* Does the pattern's literal (ASCII) match at s[i], IGNORECASE as compiled? */
static int literal_at(const uint32_t *s, size_t n, size_t i, const char *lit) {
  for (; *lit; lit++, i++)
    if (i >= n || !sdr_uni_clip_literal(s[i], *lit))
      return 0;
  return 1;
}

/* Length of the findall match of
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * at s[i] (alternatives in order), or 0 where none matches (whitespace). */
static size_t pretoken_at(const uint32_t *s, size_t n, size_t i) {
  static const char *const literals[] = {
      "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  for (size_t k = 0; k < sizeof literals / sizeof *literals; k++)
    if (literal_at(s, n, i, literals[k]))
      return strlen(literals[k]);
  int c = sdr_uni_clip_class(s[i]);
  size_t j = i + 1;
  if (c & SDR_UNI_CLIP_LETTER) {
    while (j < n && (sdr_uni_clip_class(s[j]) & SDR_UNI_CLIP_LETTER))
      j++;
    return j - i;
  }
  if (c & SDR_UNI_CLIP_NUMBER)
    return 1;
  if (c & SDR_UNI_CLIP_OTHER) {
    while (j < n && (sdr_uni_clip_class(s[j]) & SDR_UNI_CLIP_OTHER))
      j++;
    return j - i;
  }
  return 0;
}

/* ---- text to tokens ------------------------------------------------------------- */

/* The tokens of a text, before ids: each is a BPE symbol (>= 0) or an added
 * token (-1 - its index in tok->added). */
static int added_item(size_t k) { return -1 - (int)k; }

/* _tokenize(piece): clean, split, byte-encode, bpe. */
static int tokenize_piece(const sdr_clip_tokenizer *tok, const uint32_t *s, size_t n,
                          sdr_i32vec *items) {
  sdr_u32str text = {0};
  sdr_bytes word = {0};
  int rc = -1;
  if (clean(s, n, &text))
    goto done;
  for (size_t i = 0; i < text.n;) {
    size_t len = pretoken_at(text.v, text.n, i);
    if (!len) {
      i++;
      continue;
    }
    word.n = 0;
    if (sdr_utf8_append(&word, text.v + i, len))
      goto done;
    i += len;
    /* bpe()'s cache starts with these two, which come out whole (byte-level
     * encoding leaves their ASCII as it is). */
    if ((word.n == 15 && memcmp(word.v, "<|startoftext|>", 15) == 0) ||
        (word.n == 13 && memcmp(word.v, "<|endoftext|>", 13) == 0)) {
      size_t k = 0;
      while (k < tok->nadded && !(strlen(tok->added[k].text) == word.n &&
                                  memcmp(tok->added[k].text, word.v, word.n) == 0))
        k++;
      int32_t sym = k < tok->nadded ? added_item(k)
                                    : sdr_clip_bpe_find_symbol(tok->bpe, (char *)word.v, word.n);
      /* (Neither an added token nor in the vocab, it would be looked up as
       * the unknown token; no CLIP vocabulary lacks both, so it goes to bpe.) */
      if (k < tok->nadded || sym >= 0) {
        if (sdr_i32_push(items, sym))
          goto done;
        continue;
      }
    }
    if (sdr_clip_bpe_word(tok->bpe, word.v, word.n, items))
      goto done;
  }
  rc = 0;
done:
  sdr_u32_free(&text);
  sdr_bytes_free(&word);
  return rc;
}

/* The added token whose text starts at s[i], longest first, or -1. */
static long added_at(const sdr_clip_tokenizer *tok, const sdr_u32str *added, const uint32_t *s,
                     size_t n, size_t i) {
  long best = -1;
  for (size_t k = 0; k < tok->nadded; k++) {
    const sdr_u32str *a = &added[k];
    if (a->n && a->n <= n - i && memcmp(s + i, a->v, a->n * sizeof *s) == 0 &&
        (best < 0 || a->n > added[best].n))
      best = (long)k;
  }
  return best;
}

/* tokenize(text): split at added tokens (tokens_trie.split), the rest by _tokenize. */
static int tokenize(const sdr_clip_tokenizer *tok, const char *text, sdr_i32vec *items) {
  sdr_u32str s = {0};
  sdr_u32str *added = calloc(tok->nadded ? tok->nadded : 1, sizeof *added);
  int rc = -1;
  if (!added) {
    sdr_fail("out of memory");
    goto done;
  }
  for (size_t k = 0; k < tok->nadded; k++)
    if (sdr_u32_append_utf8(&added[k], tok->added[k].text))
      goto done;
  if (sdr_utf8_decode_replace((const uint8_t *)text, strlen(text), &s))
    goto done;
  size_t piece = 0;
  for (size_t i = 0; i <= s.n; i++) {
    long k = i < s.n ? added_at(tok, added, s.v, s.n, i) : -1;
    if (k < 0 && i < s.n)
      continue;
    if (i > piece && tokenize_piece(tok, s.v + piece, i - piece, items))
      goto done;
    if (k >= 0) {
      if (sdr_i32_push(items, added_item((size_t)k)))
        goto done;
      i += added[k].n - 1;
    }
    piece = i + 1;
  }
  rc = 0;
done:
  for (size_t k = 0; added && k < tok->nadded; k++)
    sdr_u32_free(&added[k]);
  free(added);
  sdr_u32_free(&s);
  return rc;
}

static const char *item_text(const sdr_clip_tokenizer *tok, int32_t item) {
  return item >= 0 ? sdr_clip_bpe_symbol_text(tok->bpe, item) : tok->added[-1 - item].text;
}

/* _convert_token_to_id_with_added_voc: added tokens, then the vocab, then
 * the vocab's id of the unknown token. */
static int item_id(const sdr_clip_tokenizer *tok, int32_t item, int32_t *id) {
  if (item < 0) {
    *id = tok->added[-1 - item].id;
    return 0;
  }
  const char *t = sdr_clip_bpe_symbol_text(tok->bpe, item);
  *id = clip_added_id(tok, t, strlen(t));
  if (*id < 0)
    *id = sdr_clip_bpe_symbol_id(tok->bpe, item);
  if (*id < 0 && tok->special[CLIP_UNK])
    *id = sdr_clip_bpe_token_id(tok->bpe, tok->special[CLIP_UNK], strlen(tok->special[CLIP_UNK]));
  if (*id < 0)
    return sdr_fail("token '%s' is not in the vocabulary, and neither is the unknown token", t);
  return 0;
}

int sdr_clip_tokenizer_encode_plain(const sdr_clip_tokenizer *tok, const char *text, int32_t **ids,
                                    size_t *n) {
  sdr_i32vec items = {0};
  *ids = NULL;
  *n = 0;
  if (tokenize(tok, text, &items))
    goto fail;
  for (size_t i = 0; i < items.n; i++)
    if (item_id(tok, items.v[i], &items.v[i]))
      goto fail;
  size_t count = items.n;
  if (!items.v && sdr_i32_push(&items, 0)) /* a non-NULL empty list */
    goto fail;
  *ids = items.v;
  *n = count;
  return 0;
fail:
  sdr_i32_free(&items);
  return -1;
}

int sdr_clip_tokenizer_encode(const sdr_clip_tokenizer *tok, const char *text, int max_length,
                              int32_t **ids, size_t *n) {
  int32_t bos = tok->special_id[CLIP_BOS], eos = tok->special_id[CLIP_EOS];
  if (bos < 0 || eos < 0)
    return sdr_fail("the tokenizer has no %s token", bos < 0 ? "bos" : "eos");
  int32_t *plain;
  size_t m;
  if (sdr_clip_tokenizer_encode_plain(tok, text, &plain, &m))
    return -1;
  /* truncate_sequences (longest_first, one sequence): remove what exceeds
   * max_length from the end, before BOS and EOS are added; when that would
   * take every token, transformers logs an error and truncates nothing. */
  if (max_length > 0 && m + 2 > (size_t)max_length) {
    size_t remove = m + 2 - (size_t)max_length;
    if (m > remove)
      m -= remove;
  }
  int32_t *out = malloc((m + 2) * sizeof *out);
  if (!out) {
    free(plain);
    return sdr_fail("out of memory");
  }
  out[0] = bos;
  memcpy(out + 1, plain, m * sizeof *out);
  out[m + 1] = eos;
  free(plain);
  *ids = out;
  *n = m + 2;
  return 0;
}

void sdr_clip_tokens_free(char **tokens, size_t n) {
  for (size_t i = 0; tokens && i < n; i++)
    free(tokens[i]);
  free(tokens);
}

int sdr_clip_tokenizer_tokenize(const sdr_clip_tokenizer *tok, const char *text, char ***tokens,
                                size_t *n) {
  sdr_i32vec items = {0};
  *tokens = NULL;
  *n = 0;
  if (tokenize(tok, text, &items))
    return -1;
  char **t = calloc(items.n ? items.n : 1, sizeof *t);
  if (!t) {
    sdr_i32_free(&items);
    return sdr_fail("out of memory");
  }
  for (size_t i = 0; i < items.n; i++) {
    t[i] = strdup(item_text(tok, items.v[i]));
    if (!t[i]) {
      sdr_clip_tokens_free(t, i);
      sdr_i32_free(&items);
      return sdr_fail("out of memory");
    }
  }
  *tokens = t;
  *n = items.n;
  sdr_i32_free(&items);
  return 0;
}

/* ---- ids to text ------------------------------------------------------------------ */

static int is_special_id(const sdr_clip_tokenizer *tok, int32_t id) {
  for (int k = 0; k < CLIP_NSPECIAL; k++)
    if (tok->special[k] && tok->special_id[k] == id)
      return 1;
  return 0;
}

/* Replaces every `from` by `to` (no longer than from) in place: str.replace. */
static void replace_all(char *s, const char *from, const char *to) {
  size_t fl = strlen(from), tl = strlen(to);
  char *r = s, *w = s;
  while (*r) {
    if (strncmp(r, from, fl) == 0) {
      memmove(w, to, tl);
      w += tl;
      r += fl;
    } else {
      *w++ = *r++;
    }
  }
  *w = 0;
}

/* convert_tokens_to_string: the byte-level text back to bytes, decoded with
 * errors="replace", "</w>" -> " ", then strip(); _decode's
 * clean_up_tokenization after. */
char *sdr_clip_tokenizer_decode_ex(const sdr_clip_tokenizer *tok, const int32_t *ids, size_t n,
                                   int skip_special, int clean_up_spaces) {
  sdr_bytes bytes = {0};
  sdr_u32str token = {0}, text = {0};
  char *out = NULL;
  for (size_t i = 0; i < n; i++) {
    if (skip_special && is_special_id(tok, ids[i]))
      continue;
    const char *t = sdr_clip_tokenizer_id_to_token(tok, ids[i]);
    if (!t) {
      sdr_fail("id %ld is not in the vocabulary (0 to %zu)", (long)ids[i], tok->len - 1);
      goto done;
    }
    token.n = 0;
    if (sdr_u32_append_utf8(&token, t))
      goto done;
    for (size_t k = 0; k < token.n; k++) {
      int b = sdr_clip_unicode_to_byte(token.v[k]);
      if (b < 0) {
        sdr_fail("token '%s' (id %ld) holds a character that stands for no byte", t, (long)ids[i]);
        goto done;
      }
      if (sdr_bytes_push(&bytes, (uint8_t)b))
        goto done;
    }
  }
  if (sdr_utf8_decode_replace(bytes.v, bytes.n, &text))
    goto done;
  /* .replace("</w>", " ").strip() */
  size_t w = 0;
  for (size_t r = 0; r < text.n;) {
    static const uint32_t end_of_word[4] = {'<', '/', 'w', '>'};
    if (r + 4 <= text.n && memcmp(text.v + r, end_of_word, sizeof end_of_word) == 0) {
      text.v[w++] = ' ';
      r += 4;
    } else {
      text.v[w++] = text.v[r++];
    }
  }
  size_t a = 0;
  while (a < w && sdr_uni_py_isspace(text.v[a]))
    a++;
  while (w > a && sdr_uni_py_isspace(text.v[w - 1]))
    w--;
  out = sdr_utf8_from_u32(text.v + a, w - a);
  if (!out)
    goto done;
  if (clean_up_spaces < 0)
    clean_up_spaces = tok->clean_up_tokenization_spaces;
  if (clean_up_spaces) {
    static const char *const pairs[][2] = {
        {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++)
      replace_all(out, pairs[k][0], pairs[k][1]);
  }
done:
  sdr_bytes_free(&bytes);
  sdr_u32_free(&token);
  sdr_u32_free(&text);
  return out;
}

char *sdr_clip_tokenizer_decode(const sdr_clip_tokenizer *tok, const int32_t *ids, size_t n,
                                int skip_special) {
  return sdr_clip_tokenizer_decode_ex(tok, ids, n, skip_special, -1);
}

void sdr_clip_cut_texts_free(char **cut, int n) {
  for (int i = 0; cut && i < n; i++)
    free(cut[i]);
  free(cut);
}

int sdr_clip_tokenizer_cut_texts(const sdr_clip_tokenizer *tok, const char *const *texts, int n,
                                 int max_length, char ***cut, size_t *lengths) {
  *cut = NULL;
  int32_t **plain = calloc((size_t)n + 1, sizeof *plain);
  size_t *len = calloc((size_t)n + 1, sizeof *len);
  int rc = plain && len ? 0 : sdr_fail("out of memory");
  size_t longest = 0; /* with BOS and EOS */
  for (int i = 0; rc == 0 && i < n; i++) {
    rc = sdr_clip_tokenizer_encode_plain(tok, texts[i], &plain[i], &len[i]);
    longest = rc == 0 && len[i] + 2 > longest ? len[i] + 2 : longest;
    if (lengths)
      lengths[i] = len[i] + 2;
  }
  /* torch.equal of the two id tensors fails only when the longest row was cut */
  if (rc == 0 && max_length > 1 && longest > (size_t)max_length) {
    const int32_t pad = sdr_clip_tokenizer_pad_id(tok) >= 0 ? sdr_clip_tokenizer_pad_id(tok)
                                                            : sdr_clip_tokenizer_eos_id(tok);
    const size_t from = (size_t)max_length - 1, count = longest - 1 - from;
    int32_t *row = malloc(count * sizeof *row);
    *cut = calloc((size_t)n, sizeof **cut);
    rc = row && *cut ? 0 : sdr_fail("out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
      /* ids = [BOS] plain [EOS] pad...: positions from .. longest - 2 */
      for (size_t k = 0; k < count; k++) {
        size_t at = from + k;
        row[k] = at == 0            ? sdr_clip_tokenizer_bos_id(tok)
                 : at <= len[i]     ? plain[i][at - 1]
                 : at == len[i] + 1 ? sdr_clip_tokenizer_eos_id(tok)
                                    : pad;
      }
      (*cut)[i] = sdr_clip_tokenizer_decode_ex(tok, row, count, 0, -1);
      rc = (*cut)[i] ? 0 : -1;
    }
    free(row);
    if (rc != 0) {
      sdr_clip_cut_texts_free(*cut, n);
      *cut = NULL;
    }
  }
  for (int i = 0; plain && i < n; i++)
    free(plain[i]);
  free(plain);
  free(len);
  return rc;
}

int sdr_clip_tokenizer_encode_padded(const sdr_clip_tokenizer *tok, const char *const *texts, int n,
                                     int max_len, int64_t *ids) {
  for (int i = 0; i < n; i++) {
    int32_t *t = NULL;
    size_t len = 0;
    if (sdr_clip_tokenizer_encode(tok, texts[i], max_len, &t, &len) != 0)
      return -1;
    for (int k = 0; k < max_len; k++)
      ids[(size_t)i * max_len + k] = k < (int)len ? t[k] : sdr_clip_tokenizer_pad_id(tok);
    free(t);
  }
  return 0;
}
