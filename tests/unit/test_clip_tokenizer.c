/* tests/unit/test_clip_tokenizer.c — the CLIP tokenizer against transformers' own answers.
 *
 * tests/fixtures/tokenizer/cases.json holds what transformers' CLIPTokenizer
 * (slow, with ftfy) and ftfy give for ~900 prompts, written by
 * scripts/reference/make_tokenizer_cases.py; the tokenizer folder it used is
 * copied beside it. Every case must match exactly; the first few mismatches
 * of each kind are printed with their prompt.
 */
#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "engine/clip_ftfy.h"      // sdr_ftfy_fix_text, sdr_ftfy_is_bad
#include "engine/clip_tokenizer.h" // sdr_clip_tokenizer_*
#include "engine/error.h"          // sdr_last_error
#include "engine/model_config.h"   // sdr_json_load
#include "engine/utf8.h"           // sdr_u32str

enum { SHOW = 5 }; /* mismatches printed per kind */

static char fixtures[PATH_MAX - 64]; /* room for the names joined to it */

/* A prompt for a message: C escapes for controls and quotes, UTF-8 kept. */
static void show_text(const char *s) {
  fputc('"', stderr);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(stderr, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7F)
      fprintf(stderr, "\\x%02x", *p);
    else
      fputc(*p, stderr);
  }
  fputc('"', stderr);
}

static void show_ids(const char *label, const int32_t *ids, size_t n) {
  fprintf(stderr, "    %s [", label);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, "%s%d", i ? ", " : "", (int)ids[i]);
  fprintf(stderr, "]\n");
}

/* A JSON array of integers as int32s (malloc'd). */
static int32_t *json_ids(const cJSON *a, size_t *n) {
  *n = (size_t)cJSON_GetArraySize(a);
  int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
  size_t i = 0;
  for (const cJSON *e = a ? a->child : NULL; e; e = e->next)
    v[i++] = (int32_t)e->valuedouble;
  return v;
}

static const char *str_field(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

typedef struct {
  const char *what;
  int total, bad;
} tally;

static void fail_case(tally *t) {
  t->bad++;
  check_failures++;
}

static void report(const tally *t) {
  printf("%-10s %4d/%d match\n", t->what, t->total - t->bad, t->total);
}

/* ---- ftfy and the text clean-up ------------------------------------------------ */

static char *fix_text_utf8(const char *s) {
  sdr_u32str in = {0}, out = {0};
  sdr_utf8_decode_replace((const uint8_t *)s, strlen(s), &in);
  char *r = sdr_ftfy_fix_text(in.v, in.n, &out) ? NULL : sdr_utf8_from_u32(out.v, out.n);
  sdr_u32_free(&in);
  sdr_u32_free(&out);
  return r;
}

static void test_strings(const cJSON *cases, const char *what, const char *in_key,
                         const char *out_key, char *(*fn)(const char *)) {
  tally t = {what, 0, 0};
  for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
    const char *in = str_field(c, in_key), *want = str_field(c, out_key);
    char *got = fn(in);
    t.total++;
    if (!got || strcmp(got, want) != 0) {
      if (t.bad < SHOW) {
        fprintf(stderr, "%s mismatch for ", what);
        show_text(in);
        fprintf(stderr, "\n    got  ");
        show_text(got ? got : "(error)");
        fprintf(stderr, "\n    want ");
        show_text(want);
        fprintf(stderr, "\n");
      }
      fail_case(&t);
    }
    free(got);
  }
  report(&t);
  CHECK(t.total > 0);
}

static void test_is_bad(const cJSON *cases) {
  tally t = {"is_bad", 0, 0};
  for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
    const char *text = str_field(c, "text");
    int want = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "bad"));
    sdr_u32str s = {0};
    sdr_utf8_decode_replace((const uint8_t *)text, strlen(text), &s);
    int got = sdr_ftfy_is_bad(s.v, s.n);
    sdr_u32_free(&s);
    t.total++;
    if (got != want) {
      if (t.bad < SHOW) {
        fprintf(stderr, "is_bad mismatch for ");
        show_text(text);
        fprintf(stderr, ": got %d, want %d\n", got, want);
      }
      fail_case(&t);
    }
  }
  report(&t);
  CHECK(t.total > 0);
}

/* ---- ids ------------------------------------------------------------------------ */

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
  return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* tok(text) and, with max_length=77, tok(text, padding="max_length", truncation=True). */
static void check_encode(const sdr_clip_tokenizer *tok, tally *t, const char *text,
                         const cJSON *want_json, int max_length, int pad_to) {
  size_t nwant, ngot = 0;
  int32_t *want = json_ids(want_json, &nwant), *got = NULL;
  t->total++;
  if (sdr_clip_tokenizer_encode(tok, text, max_length, &got, &ngot) == 0 && pad_to) {
    int32_t *p = realloc(got, (size_t)(ngot > (size_t)pad_to ? ngot : (size_t)pad_to) * sizeof *p);
    got = p;
    while (ngot < (size_t)pad_to)
      got[ngot++] = sdr_clip_tokenizer_pad_id(tok);
  }
  if (!got || !same_ids(got, ngot, want, nwant)) {
    if (t->bad < SHOW) {
      fprintf(stderr, "%s mismatch for ", t->what);
      show_text(text);
      fprintf(stderr, " (max_length %d)\n", max_length);
      if (got)
        show_ids("got ", got, ngot);
      else
        fprintf(stderr, "    error: %s\n", sdr_last_error());
      show_ids("want", want, nwant);
    }
    fail_case(t);
  }
  free(got);
  free(want);
}

static void test_encode(const sdr_clip_tokenizer *tok, const cJSON *cases, int pad_id) {
  tally plain = {"encode", 0, 0}, padded = {"encode77", 0, 0};
  for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
    const char *text = str_field(c, "text");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
    check_encode(tok, &plain, text, ids, 0, 0);
    /* Where truncation does not cut, the padded ids are the ids and pads. */
    const cJSON *ids77 = cJSON_GetObjectItemCaseSensitive(c, "ids77");
    cJSON *made = NULL;
    if (!ids77) {
      made = cJSON_Duplicate(ids, 1);
      while (cJSON_GetArraySize(made) < 77)
        cJSON_AddItemToArray(made, cJSON_CreateNumber(pad_id));
      ids77 = made;
    }
    check_encode(tok, &padded, text, ids77, 77, 77);
    cJSON_Delete(made);
  }
  report(&plain);
  report(&padded);
  CHECK(plain.total > 0);
}

static void test_truncate(const sdr_clip_tokenizer *tok, const cJSON *cases) {
  tally t = {"truncate", 0, 0};
  for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
    int m = (int)cJSON_GetObjectItemCaseSensitive(c, "max_length")->valuedouble;
    check_encode(tok, &t, str_field(c, "text"), cJSON_GetObjectItemCaseSensitive(c, "ids"), m, 0);
  }
  report(&t);
}

static void test_decode(const sdr_clip_tokenizer *tok, const cJSON *cases) {
  tally t = {"decode", 0, 0};
  for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
    size_t n;
    int32_t *ids = json_ids(cJSON_GetObjectItemCaseSensitive(c, "ids"), &n);
    int skip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "skip_special_tokens"));
    const char *want = str_field(c, "text");
    char *got = sdr_clip_tokenizer_decode(tok, ids, n, skip);
    t.total++;
    if (!got || strcmp(got, want) != 0) {
      if (t.bad < SHOW) {
        show_ids("decode mismatch for", ids, n);
        fprintf(stderr, "    got  ");
        show_text(got ? got : sdr_last_error());
        fprintf(stderr, "\n    want ");
        show_text(want);
        fprintf(stderr, "\n");
      }
      fail_case(&t);
    }
    free(got);
    free(ids);
  }
  report(&t);
}

/* ---- SD 2.x: the same vocabulary, pad token "!" -------------------------------------- */

static int write_json(const char *path, const cJSON *v) {
  char *s = cJSON_Print(v);
  FILE *f = fopen(path, "w");
  if (!f || !s) {
    free(s);
    if (f)
      fclose(f);
    return -1;
  }
  fputs(s, f);
  fclose(f);
  free(s);
  return 0;
}

/* Links two files of the clip-vit-large-patch14 fixture into dir. */
static void link_fixtures(const char *dir, const char *a, const char *b) {
  const char *names[] = {a, b};
  char path[PATH_MAX], src[PATH_MAX], abs[PATH_MAX];
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    snprintf(src, sizeof src, "%s/clip-vit-large-patch14/%s", fixtures, names[i]);
    CHECK(realpath(src, abs) != NULL);
    CHECK(symlink(abs, path) == 0);
  }
}

static void test_sd2(const cJSON *sd2) {
  char dir[] = "/tmp/sdrepl-tok-XXXXXX", path[PATH_MAX];
  CHECK(mkdtemp(dir) != NULL);
  link_fixtures(dir, "vocab.json", "merges.txt");
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  CHECK(write_json(path, cJSON_GetObjectItemCaseSensitive(sd2, "config")) == 0);
  snprintf(path, sizeof path, "%s/special_tokens_map.json", dir);
  CHECK(write_json(path, cJSON_GetObjectItemCaseSensitive(sd2, "special_tokens_map")) == 0);

  sdr_clip_tokenizer *tok = sdr_clip_tokenizer_load(dir);
  if (!tok)
    fprintf(stderr, "loading the SD 2.x folder: %s\n", sdr_last_error());
  CHECK(tok != NULL);
  if (tok) {
    CHECK(sdr_clip_tokenizer_pad_id(tok) ==
          (int32_t)cJSON_GetObjectItemCaseSensitive(sd2, "pad_token_id")->valuedouble);
    tally plain = {"sd2", 0, 0}, padded = {"sd2_77", 0, 0};
    for (const cJSON *c = cJSON_GetObjectItemCaseSensitive(sd2, "cases")->child; c; c = c->next) {
      const char *text = str_field(c, "text");
      check_encode(tok, &plain, text, cJSON_GetObjectItemCaseSensitive(c, "ids"), 0, 0);
      check_encode(tok, &padded, text, cJSON_GetObjectItemCaseSensitive(c, "ids77"), 77, 77);
    }
    report(&plain);
    report(&padded);
    sdr_clip_tokenizer_free(tok);
  }
  const char *files[] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                         "special_tokens_map.json"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* ---- the API around the ids ------------------------------------------------------------- */

static void test_api(const sdr_clip_tokenizer *tok) {
  CHECK(sdr_clip_tokenizer_model_max_length(tok) == 77);
  CHECK(sdr_clip_tokenizer_bos_id(tok) == 49406);
  CHECK(sdr_clip_tokenizer_eos_id(tok) == 49407);
  CHECK(sdr_clip_tokenizer_pad_id(tok) == 49407);
  CHECK(sdr_clip_tokenizer_unk_id(tok) == 49407);
  CHECK(sdr_clip_tokenizer_vocab_size(tok) == 49408);
  CHECK(sdr_clip_tokenizer_len(tok) == 49408);
  CHECK_STR(sdr_clip_tokenizer_special_token(tok, "pad"), "<|endoftext|>");
  CHECK_STR(sdr_clip_tokenizer_id_to_token(tok, 320), "a</w>");
  CHECK(sdr_clip_tokenizer_token_to_id(tok, "a</w>") == 320);
  CHECK(sdr_clip_tokenizer_token_to_id(tok, "no such token") == 49407);
  CHECK(sdr_clip_tokenizer_id_to_token(tok, 49408) == NULL);

  char **toks;
  size_t n;
  CHECK(sdr_clip_tokenizer_tokenize(tok, "A cat's  hat!!", &toks, &n) == 0);
  const char *want[] = {"a</w>", "cat</w>", "'s</w>", "hat</w>", "!!</w>"};
  CHECK(n == 5);
  for (size_t i = 0; i < n && i < 5; i++)
    CHECK_STR(toks[i], want[i]);
  sdr_clip_tokens_free(toks, n);

  int32_t *ids;
  CHECK(sdr_clip_tokenizer_encode_plain(tok, "", &ids, &n) == 0 && n == 0);
  free(ids);

  /* An id outside the vocabulary is an error that names it. */
  int32_t bad[] = {320, 60000};
  CHECK(sdr_clip_tokenizer_decode(tok, bad, 2, 0) == NULL);
  CHECK(strstr(sdr_last_error(), "60000") != NULL);
  char *s = sdr_clip_tokenizer_decode_ex(tok, (int32_t[]){320, 1929, 269}, 3, 0, 0);
  CHECK_STR(s, "a dog .");
  free(s);
}

/* ---- tokenizer.json alone (transformers 5 saves only it) ---------------------------- */

/* A folder with tokenizer.json made from the fixture's vocab.json and merges.txt
 * (merges alternately as "a b" strings and ["a", "b"] pairs, the two forms the
 * tokenizers library writes) and its config files: the same ids on every case. */
static void test_tokenizer_json(const cJSON *cases) {
  char dir[] = "/tmp/sdrepl-tokjson-XXXXXX", path[PATH_MAX], src[PATH_MAX];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(src, sizeof src, "%s/clip-vit-large-patch14/vocab.json", fixtures);
  sdr_json vocab;
  CHECK(sdr_json_load(&vocab, src) == 0);
  cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
  cJSON_AddStringToObject(model, "type", "BPE");
  cJSON_AddItemToObject(model, "vocab", cJSON_Duplicate(vocab.root, 1));
  cJSON *merges = cJSON_AddArrayToObject(model, "merges");
  snprintf(src, sizeof src, "%s/clip-vit-large-patch14/merges.txt", fixtures);
  FILE *f = fopen(src, "r");
  CHECK(f != NULL);
  char line[512];
  int n = 0;
  while (f && fgets(line, sizeof line, f) && n < 48894 + 1) {
    line[strcspn(line, "\r\n")] = 0;
    if (n++ == 0)
      continue; /* "#version: 0.2" */
    char *sp = strchr(line, ' ');
    if (!sp)
      continue;
    if (n % 2) {
      cJSON_AddItemToArray(merges, cJSON_CreateString(line));
    } else {
      *sp = 0;
      const char *pair[2] = {line, sp + 1};
      cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
    }
  }
  if (f)
    fclose(f);
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  CHECK(write_json(path, root) == 0);
  cJSON_Delete(root);
  sdr_json_free(&vocab);
  const char *links[] = {"tokenizer_config.json", "special_tokens_map.json"};
  link_fixtures(dir, links[0], links[1]);
  sdr_clip_tokenizer *tok = sdr_clip_tokenizer_load(dir);
  if (!tok)
    fprintf(stderr, "loading tokenizer.json: %s\n", sdr_last_error());
  CHECK(tok != NULL);
  if (tok) {
    test_encode(tok, cJSON_GetObjectItemCaseSensitive(cases, "encode"),
                (int)cJSON_GetObjectItemCaseSensitive(cases, "pad_token_id")->valuedouble);
    sdr_clip_tokenizer_free(tok);
  }
  /* A tokenizer.json that is not a BPE model says so. */
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    fputs("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", f);
    fclose(f);
  }
  CHECK(sdr_clip_tokenizer_load(dir) == NULL);
  CHECK(strstr(sdr_last_error(), "not a BPE tokenizer") != NULL);
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, links[i]);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  unlink(path);
  rmdir(dir);
}

static void test_load_errors(void) {
  CHECK(sdr_clip_tokenizer_load("/nonexistent/tokenizer") == NULL);
  CHECK(strstr(sdr_last_error(), "/nonexistent/tokenizer") != NULL);
  char dir[] = "/tmp/sdrepl-tok-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  CHECK(sdr_clip_tokenizer_load(dir) == NULL);
  CHECK(strstr(sdr_last_error(), dir) != NULL && strstr(sdr_last_error(), "vocab.json") != NULL);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/vocab.json", dir);
  FILE *f = fopen(path, "w");
  fputs("{\"a\": 0, \"b\": \"x\"}", f);
  fclose(f);
  CHECK(sdr_clip_tokenizer_load(dir) == NULL);
  CHECK(strstr(sdr_last_error(), "merges.txt") != NULL);
  char merges[PATH_MAX];
  snprintf(merges, sizeof merges, "%s/merges.txt", dir);
  f = fopen(merges, "w");
  fputs("#version: 0.2\na b\n", f);
  fclose(f);
  CHECK(sdr_clip_tokenizer_load(dir) == NULL); /* "b" has no integer id */
  CHECK(strstr(sdr_last_error(), "vocab.json") != NULL &&
        strstr(sdr_last_error(), "\"b\"") != NULL);
  unlink(path);
  unlink(merges);
  rmdir(dir);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
  const char *src = getenv("SDREPL_SOURCE_DIR");
  snprintf(fixtures, sizeof fixtures, "%s/tests/fixtures/tokenizer", src ? src : ".");
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/cases.json", fixtures);
  sdr_json cases;
  if (sdr_json_load(&cases, path)) {
    fprintf(stderr, "%s\n", sdr_last_error());
    return 1;
  }
  snprintf(path, sizeof path, "%s/clip-vit-large-patch14", fixtures);
  double t0 = now();
  sdr_clip_tokenizer *tok = sdr_clip_tokenizer_load(path);
  double t_load = now() - t0;
  if (!tok) {
    fprintf(stderr, "%s\n", sdr_last_error());
    return 1;
  }
  printf("loaded %s in %.1f ms\n", path, t_load * 1e3);

  test_strings(sdr_json_get(&cases, "fix_text"), "fix_text", "text", "fixed", fix_text_utf8);
  test_is_bad(sdr_json_get(&cases, "is_bad"));
  test_strings(sdr_json_get(&cases, "clean"), "clean", "text", "clean", sdr_clip_clean_text);
  test_encode(tok, sdr_json_get(&cases, "encode"),
              (int)sdr_json_get(&cases, "pad_token_id")->valuedouble);
  test_truncate(tok, sdr_json_get(&cases, "truncate"));
  test_decode(tok, sdr_json_get(&cases, "decode"));
  test_sd2(sdr_json_get(&cases, "sd2"));
  test_tokenizer_json(cases.root);
  test_api(tok);
  test_load_errors();

  /* The seed notebook's prompt, padded as the pipeline does: well under a millisecond. */
  const char *prompt = "electronic art   of an angry human by Leonardo da Vinci, highly detailed, "
                       "dramatic lighting, masterpiece, trending on artstation, 8k";
  int reps = 200;
  t0 = now();
  for (int i = 0; i < reps; i++) {
    int32_t *ids;
    size_t n;
    CHECK(sdr_clip_tokenizer_encode(tok, prompt, 77, &ids, &n) == 0);
    free(ids);
  }
  printf("encode: %.1f us per prompt\n", (now() - t0) / reps * 1e6);

  sdr_clip_tokenizer_free(tok);
  sdr_json_free(&cases);
  return check_exit();
}
