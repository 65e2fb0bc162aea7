/* repl/notebook.c — recording a run (cells and their outputs) and choosing the export format.
 *
 * Recording never fails loudly: the calls return nothing because the runner
 * has nothing better to do than go on. An allocation failure is remembered
 * instead, and the export then fails, so a record never silently lacks a part.
 */
#define _GNU_SOURCE
#include "repl/notebook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"           // sdr_fail, sdr_last_error
#include "repl/notebook_internal.h" // nb_cell, nb_output, nb_export_*

/* ---- the record -------------------------------------------------------- */

notebook *notebook_new(const char *title) {
  notebook *nb = calloc(1, sizeof *nb);
  if (!nb)
    return NULL;
  const char *t = title ? title : "";
  nb->title = nb_utf8_dup(t, strlen(t), NULL);
  if (!nb->title) {
    free(nb);
    return NULL;
  }
  return nb;
}

static void free_output(nb_output *o) {
  free(o->text);
  free(o->png);
}

void notebook_free(notebook *nb) {
  if (!nb)
    return;
  for (int i = 0; i < nb->ncells; i++) {
    nb_cell *c = &nb->cells[i];
    for (int j = 0; j < c->noutputs; j++)
      free_output(&c->outputs[j]);
    free(c->outputs);
    free(c->title);
    free(c->source);
  }
  free(nb->cells);
  free(nb->title);
  free(nb);
}

void notebook_set_flush(notebook *nb, notebook_flush_fn fn, void *ctx) {
  nb->flush = fn;
  nb->flush_ctx = ctx;
}

static nb_cell *add_cell(notebook *nb, int kind, const char *title, const char *source) {
  if (nb->ncells == nb->cap) {
    int cap = nb->cap ? nb->cap * 2 : 16;
    nb_cell *grown = realloc(nb->cells, (size_t)cap * sizeof *grown);
    if (!grown) {
      nb->out_of_memory = 1;
      return NULL;
    }
    nb->cells = grown;
    nb->cap = cap;
  }
  nb_cell *c = &nb->cells[nb->ncells];
  memset(c, 0, sizeof *c);
  c->kind = kind == NOTEBOOK_MARKDOWN ? NOTEBOOK_MARKDOWN : NOTEBOOK_CODE;
  title = title ? title : "";
  source = source ? source : "";
  c->title = nb_utf8_dup(title, strlen(title), NULL);
  c->source = nb_utf8_dup(source, strlen(source), NULL);
  if (!c->title || !c->source) {
    free(c->title);
    free(c->source);
    nb->out_of_memory = 1;
    return NULL;
  }
  nb->ncells++;
  return c;
}

void notebook_begin_cell(notebook *nb, int kind, const char *title, const char *source) {
  nb_cell *c = add_cell(nb, kind, title, source);
  if (c && c->kind == NOTEBOOK_CODE)
    c->execution_count = ++nb->executed;
}

void notebook_skip_cell(notebook *nb, int kind, const char *title, const char *source) {
  add_cell(nb, kind, title, source);
}

/* The cell outputs go to: the last one, or an untitled one made for them. */
static nb_cell *current_cell(notebook *nb) {
  if (nb->ncells == 0)
    notebook_begin_cell(nb, NOTEBOOK_CODE, "", "");
  return nb->ncells ? &nb->cells[nb->ncells - 1] : NULL;
}

static nb_output *add_output(notebook *nb, int type) {
  nb_cell *c = current_cell(nb);
  if (!c)
    return NULL;
  if (c->noutputs == c->cap) {
    int cap = c->cap ? c->cap * 2 : 4;
    nb_output *grown = realloc(c->outputs, (size_t)cap * sizeof *grown);
    if (!grown) {
      nb->out_of_memory = 1;
      return NULL;
    }
    c->outputs = grown;
    c->cap = cap;
  }
  nb_output *o = &c->outputs[c->noutputs++];
  memset(o, 0, sizeof *o);
  o->type = type;
  return o;
}

void notebook_add_stream(notebook *nb, const char *text, size_t len) {
  if (!nb || !text || len == 0)
    return;
  nb_cell *c = current_cell(nb);
  if (!c)
    return;
  /* Text right after text joins it (one stream output, as Jupyter merges
   * them), and is cleaned together, so a '\r' at the end of the earlier part
   * still rewrites its line. */
  nb_output *last = c->noutputs ? &c->outputs[c->noutputs - 1] : NULL;
  size_t before = last && last->type == NB_STREAM ? last->len : 0;
  char *joined = malloc(before + len + 1);
  if (!joined) {
    nb->out_of_memory = 1;
    return;
  }
  if (before)
    memcpy(joined, last->text, before);
  memcpy(joined + before, text, len);
  size_t n = nb_clean_stream(joined, before + len);
  size_t clean_len;
  char *clean = nb_utf8_dup(joined, n, &clean_len);
  free(joined);
  if (!clean) {
    nb->out_of_memory = 1;
    return;
  }
  if (before) {
    free(last->text);
    last->text = clean;
    last->len = clean_len;
    if (clean_len == 0) { /* all of it rewritten away */
      free(clean);
      c->noutputs--;
    }
    return;
  }
  if (clean_len == 0) {
    free(clean);
    return;
  }
  nb_output *o = add_output(nb, NB_STREAM);
  if (!o) {
    free(clean);
    return;
  }
  o->text = clean;
  o->len = clean_len;
}

void notebook_add_image(notebook *nb, const sdr_image *img) {
  if (!nb || !img)
    return;
  if (nb->flush)
    nb->flush(nb->flush_ctx);
  nb_output *o = add_output(nb, NB_IMAGE);
  if (!o)
    return;
  o->width = img->width;
  o->height = img->height;
  char plain[96];
  snprintf(plain, sizeof plain, "<Image %dx%d %s>", img->width, img->height,
           sdr_image_mode_name(img->channels));
  if (sdr_image_encode_png(img, &o->png, &o->png_len) != 0) {
    /* The record still says an image was shown, and why it is missing. */
    o->png = NULL;
    o->png_len = 0;
    snprintf(plain, sizeof plain, "<Image %dx%d %s: not encoded: %.40s>", img->width, img->height,
             sdr_image_mode_name(img->channels), sdr_last_error());
  }
  o->text = nb_utf8_dup(plain, strlen(plain), &o->len);
  if (!o->text)
    nb->out_of_memory = 1;
}

void notebook_add_error(notebook *nb, const char *message) {
  if (!nb)
    return;
  if (nb->flush)
    nb->flush(nb->flush_ctx);
  nb_output *o = add_output(nb, NB_ERROR);
  if (!o)
    return;
  const char *m = message ? message : "error";
  o->text = nb_utf8_dup(m, strlen(m), &o->len);
  if (!o->text)
    nb->out_of_memory = 1;
}

/* ---- export ------------------------------------------------------------ */

static const char *extension(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(path, '.');
  return dot && (!slash || dot > slash) ? dot : "";
}

int notebook_format_known(const char *out_path) {
  const char *ext = extension(out_path);
  if (strcasecmp(ext, ".html") == 0 || strcasecmp(ext, ".md") == 0 ||
      strcasecmp(ext, ".ipynb") == 0)
    return 1;
  sdr_fail("cannot export a notebook as '%s': the name must end in .html, .md or .ipynb", out_path);
  return 0;
}

int notebook_export(const notebook *nb, const char *out_path) {
  const char *ext = extension(out_path);
  if (!notebook_format_known(out_path))
    return -1;
  if (nb->out_of_memory)
    return sdr_fail("cannot export the notebook: out of memory while recording it");
  int rc;
  if (strcasecmp(ext, ".html") == 0)
    rc = nb_export_html(nb, out_path);
  else if (strcasecmp(ext, ".md") == 0)
    rc = nb_export_markdown(nb, out_path);
  else
    rc = nb_export_ipynb(nb, out_path);
  return rc;
}

/* ---- writing files ----------------------------------------------------- */

int nb_write_file(const char *path, const void *data, size_t len) {
  /* The temporary file sits in the same folder (rename works only within one
   * file system) and is hidden, so a crash leaves at most a dot file. */
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
  size_t n = strlen(path);
  char *tmp = malloc(n + 16);
  if (!tmp)
    return sdr_fail("writing %s: out of memory", path);
  snprintf(tmp, n + 16, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return sdr_fail("cannot write %s: %s", path, strerror(e));
  }
  /* mkstemp makes the file 0600; a record is an ordinary file (0666 less umask). */
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  const char *p = data;
  size_t left = len;
  int err = 0;
  while (left && !err) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      err = w < 0 ? errno : EIO;
    else
      p += w, left -= (size_t)w;
  }
  if (close(fd) != 0 && !err)
    err = errno;
  if (!err && rename(tmp, path) != 0)
    err = errno;
  if (err) {
    unlink(tmp);
    free(tmp);
    return sdr_fail("cannot write %s: %s", path, strerror(err));
  }
  free(tmp);
  return 0;
}
