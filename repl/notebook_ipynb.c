/* repl/notebook_ipynb.c — a record as a Jupyter notebook (nbformat 4.5), outputs included.
 *
 * Code cells carry their execution_count and outputs: "stream" (stdout) for
 * printed text, "display_data" with image/png (base64) and text/plain for
 * images, "error" (ename "LuaError") with the traceback's lines. A cell's
 * title goes to its metadata "title", where jupytext keeps the text after
 * "# %%", so `jupytext --to lua:percent` gives back the script's markers.
 * The kernelspec names sdrepl, the language Lua.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/error.h"           // sdr_fail
#include "repl/notebook_internal.h" // nb_cell, nb_output, nb_buf, nb_write_file

/* Multi-line text as Jupyter writes it: a list of lines, each but the last
 * ending in "\n". */
static cJSON *lines_array(const char *s, size_t n) {
  cJSON *arr = cJSON_CreateArray();
  size_t start = 0;
  for (size_t i = 0; arr && i < n; i++) {
    if (s[i] != '\n' && i + 1 < n)
      continue;
    size_t len = i + 1 - start;
    char *line = malloc(len + 1);
    cJSON *item = NULL;
    if (line) {
      memcpy(line, s + start, len);
      line[len] = '\0';
      item = cJSON_CreateString(line);
      free(line);
    }
    if (!item || !cJSON_AddItemToArray(arr, item)) {
      cJSON_Delete(item);
      cJSON_Delete(arr);
      return NULL;
    }
    start = i + 1;
  }
  return arr;
}

/* Adds item to obj under key; deletes it and returns 0 when it is NULL or cannot be added. */
static int add(cJSON *obj, const char *key, cJSON *item) {
  if (!item)
    return 0;
  if (!cJSON_AddItemToObject(obj, key, item)) {
    cJSON_Delete(item);
    return 0;
  }
  return 1;
}

static int push(cJSON *arr, cJSON *item) {
  if (!item)
    return 0;
  if (!cJSON_AddItemToArray(arr, item)) {
    cJSON_Delete(item);
    return 0;
  }
  return 1;
}

static cJSON *stream_output(const nb_output *o) {
  cJSON *out = cJSON_CreateObject();
  if (out && add(out, "output_type", cJSON_CreateString("stream")) &&
      add(out, "name", cJSON_CreateString("stdout")) &&
      add(out, "text", lines_array(o->text, o->len)))
    return out;
  cJSON_Delete(out);
  return NULL;
}

static cJSON *image_output(const nb_output *o) {
  /* Containers are attached first, then filled: whatever fails, deleting
   * `out` frees everything. */
  cJSON *out = cJSON_CreateObject();
  if (!out)
    return NULL;
  cJSON *data = cJSON_CreateObject(), *meta = cJSON_CreateObject();
  int ok = add(out, "data", data);
  if (!ok)
    cJSON_Delete(meta);
  ok = ok && add(out, "metadata", meta) &&
       add(out, "output_type", cJSON_CreateString("display_data"));
  if (ok && o->png) {
    nb_buf b64 = {0};
    nb_put_base64(&b64, o->png, o->png_len);
    ok = !b64.oom && add(data, "image/png", cJSON_CreateString(b64.p ? b64.p : ""));
    nb_buf_free(&b64);
    cJSON *size = cJSON_CreateObject();
    ok = ok && add(meta, "image/png", size) && add(size, "width", cJSON_CreateNumber(o->width)) &&
         add(size, "height", cJSON_CreateNumber(o->height));
  }
  ok = ok && add(data, "text/plain", lines_array(o->text, o->len));
  if (ok)
    return out;
  cJSON_Delete(out);
  return NULL;
}

/* Lua's message is "file.lua:3: what went wrong\nstack traceback:\n\t...":
 * evalue is its first line, the traceback every line. */
static cJSON *error_output(const nb_output *o) {
  const char *nl = memchr(o->text, '\n', o->len);
  size_t first = nl ? (size_t)(nl - o->text) : o->len;
  char *evalue = malloc(first + 1);
  cJSON *out = cJSON_CreateObject(), *tb = cJSON_CreateArray();
  int ok = evalue && out && tb;
  if (ok) {
    memcpy(evalue, o->text, first);
    evalue[first] = '\0';
    ok = add(out, "output_type", cJSON_CreateString("error")) &&
         add(out, "ename", cJSON_CreateString("LuaError")) &&
         add(out, "evalue", cJSON_CreateString(evalue));
  }
  /* Jupyter joins traceback entries with newlines itself: no "\n" at their ends. */
  for (size_t start = 0, i = 0; ok && i <= o->len; i++) {
    if (i < o->len && o->text[i] != '\n')
      continue;
    char *line = malloc(i - start + 1);
    ok = line != NULL;
    if (ok) {
      memcpy(line, o->text + start, i - start);
      line[i - start] = '\0';
      ok = push(tb, cJSON_CreateString(line));
      free(line);
    }
    start = i + 1;
  }
  free(evalue);
  if (ok && add(out, "traceback", tb))
    return out;
  if (!ok)
    cJSON_Delete(tb);
  cJSON_Delete(out);
  return NULL;
}

static cJSON *cell_json(const nb_cell *c, int index) {
  cJSON *cell = cJSON_CreateObject();
  if (!cell)
    return NULL;
  char id[32];
  snprintf(id, sizeof id, "cell-%d", index + 1);
  int code = c->kind == NOTEBOOK_CODE;
  cJSON *meta = cJSON_CreateObject();
  int ok = add(cell, "cell_type", cJSON_CreateString(code ? "code" : "markdown")) &&
           add(cell, "id", cJSON_CreateString(id)) && add(cell, "metadata", meta);
  if (ok && c->title[0])
    ok = add(meta, "title", cJSON_CreateString(c->title));
  ok = ok && add(cell, "source", lines_array(c->source, strlen(c->source)));
  if (ok && code) {
    ok = add(cell, "execution_count",
             c->execution_count ? cJSON_CreateNumber(c->execution_count) : cJSON_CreateNull());
    cJSON *outputs = cJSON_CreateArray();
    ok = ok && add(cell, "outputs", outputs);
    for (int j = 0; ok && j < c->noutputs; j++) {
      const nb_output *o = &c->outputs[j];
      ok = push(outputs, o->type == NB_STREAM  ? stream_output(o)
                         : o->type == NB_IMAGE ? image_output(o)
                                               : error_output(o));
    }
  }
  if (ok)
    return cell;
  cJSON_Delete(cell);
  return NULL;
}

static cJSON *notebook_metadata(const notebook *nb) {
  cJSON *meta = cJSON_CreateObject();
  if (!meta)
    return NULL;
  cJSON *kernel = cJSON_CreateObject(), *lang = cJSON_CreateObject();
  int ok = add(meta, "kernelspec", kernel);
  if (!ok)
    cJSON_Delete(lang);
  ok = ok && add(meta, "language_info", lang) &&
       add(kernel, "name", cJSON_CreateString("sdrepl")) &&
       add(kernel, "display_name", cJSON_CreateString("Lua (sdrepl)")) &&
       add(kernel, "language", cJSON_CreateString("lua")) &&
       add(lang, "name", cJSON_CreateString("lua")) &&
       add(lang, "file_extension", cJSON_CreateString(".lua")) &&
       add(lang, "mimetype", cJSON_CreateString("text/x-lua"));
  if (ok && nb->title[0])
    ok = add(meta, "title", cJSON_CreateString(nb->title));
  if (ok)
    return meta;
  cJSON_Delete(meta);
  return NULL;
}

int nb_export_ipynb(const notebook *nb, const char *path) {
  cJSON *root = cJSON_CreateObject(), *cells = cJSON_CreateArray();
  int ok = root && add(root, "cells", cells);
  if (!root)
    cJSON_Delete(cells);
  for (int i = 0; ok && i < nb->ncells; i++)
    ok = push(cells, cell_json(&nb->cells[i], i));
  ok = ok && add(root, "metadata", notebook_metadata(nb)) &&
       add(root, "nbformat", cJSON_CreateNumber(4)) &&
       add(root, "nbformat_minor", cJSON_CreateNumber(5));
  char *text = ok ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  /* A final newline, as Jupyter writes it. */
  nb_buf b = {0};
  if (text) {
    nb_puts(&b, text);
    nb_puts(&b, "\n");
    cJSON_free(text);
  }
  int rc = !text || b.oom ? sdr_fail("writing %s: out of memory", path)
                          : nb_write_file(path, b.p, b.len);
  nb_buf_free(&b);
  return rc;
}
