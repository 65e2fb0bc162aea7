/* tests/unit/test_notebook.c — a hand-built record exported as HTML, Markdown and ipynb
 * into a temporary folder, then read back: structure, escaping, images, order of outputs. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "check.h"
#include "engine/error.h"  // sdr_last_error
#include "engine/image.h"  // sdr_image_new
#include "repl/notebook.h" // notebook_*

static char dir[] = "/tmp/sdrepl-test-notebook-XXXXXX";

static char *path_in(const char *name) {
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  fclose(f);
  s[got] = '\0';
  if (len)
    *len = got;
  return s;
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

static const char png_signature[] = "\x89PNG\r\n\x1a\n";

/* A 4x3 RGB image with a red pixel, so the PNG is not trivial. */
static sdr_image *small_image(void) {
  sdr_image *img = sdr_image_new(4, 3, 3);
  img->pixels[0] = 255;
  return img;
}

static void add_text(notebook *nb, const char *s) { notebook_add_stream(nb, s, strlen(s)); }

static int flushes;
static void count_flush(void *ctx) {
  notebook *nb = ctx;
  flushes++;
  notebook_add_stream(nb, "flushed\n", 8);
}

/* Cells: markdown; code with text, image, text; code that failed; a cell not run. */
static notebook *build(void) {
  notebook *nb = notebook_new("Demo <record>");
  notebook_begin_cell(
      nb, NOTEBOOK_MARKDOWN, "",
      "# Heading & more\n\nSome **bold**, `x<y` and <script>alert(1)</script>.\n\n"
      "- one\n- two *em*\n\n[site](https://example.com) [bad](javascript:alert(1))");
  notebook_begin_cell(nb, NOTEBOOK_CODE, "Make <pictures>",
                      "local s = \"<b>&</b>\"\nprint(s)\nimg = Image.new('RGB', {4, 3})\nimg");
  add_text(nb, "<b>&</b>\n");
  add_text(nb, "progress 10%\rprogress 100%\n");
  add_text(nb, "\x1b[1mbold\x1b[0m\n");
  notebook_set_flush(nb, count_flush, nb);
  sdr_image *img = small_image();
  notebook_add_image(nb, img);
  notebook_set_flush(nb, NULL, NULL);
  notebook_add_image(nb, img);
  sdr_image_free(img);
  add_text(nb, "after\n");
  notebook_begin_cell(nb, NOTEBOOK_CODE, "", "error('boom')");
  add_text(nb, "bad utf8 \xff\n");
  notebook_add_error(nb, "demo.lua:7: boom\nstack traceback:\n\t[C]: in function 'error'\n"
                         "\tdemo.lua:7: in main chunk");
  notebook_skip_cell(nb, NOTEBOOK_CODE, "later", "print('never')");
  CHECK(flushes == 1);
  return nb;
}

static void test_html(const notebook *nb) {
  CHECK(notebook_export(nb, path_in("out.html")) == 0);
  char *html = slurp(path_in("out.html"), NULL);
  CHECK(html != NULL);
  if (!html)
    return;
  CHECK(strstr(html, "<!DOCTYPE html>") == html);
  CHECK(strstr(html, "<title>Demo &lt;record&gt;</title>"));
  CHECK(strstr(html, "In&nbsp;[1]:"));
  CHECK(strstr(html, "In&nbsp;[2]:"));
  CHECK(strstr(html, "In&nbsp;[&nbsp;]:"));
  CHECK(strstr(html, "local s = &quot;&lt;b&gt;&amp;&lt;/b&gt;&quot;"));
  CHECK(strstr(html, "Make &lt;pictures&gt;"));
  CHECK(!strstr(html, "<b>&</b>"));
  CHECK(strstr(html, "<pre>&lt;b&gt;&amp;&lt;/b&gt;\nprogress 100%\nbold\nflushed\n</pre>"));
  CHECK(!strstr(html, "progress 10%"));
  CHECK(!strstr(html, "\x1b"));
  CHECK(count(html, "src=\"data:image/png;base64,iVBORw0KGgo") == 2);
  CHECK(strstr(html, "width=\"4\" height=\"3\""));
  CHECK(strstr(html, "bad utf8 \xEF\xBF\xBD"));
  CHECK(strstr(html, "class=\"row output error\""));
  CHECK(strstr(html, "demo.lua:7: boom\nstack traceback:"));
  /* Markdown */
  CHECK(strstr(html, "<h1>Heading &amp; more</h1>"));
  CHECK(strstr(html, "<strong>bold</strong>"));
  CHECK(strstr(html, "<code>x&lt;y</code>"));
  CHECK(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
  CHECK(strstr(html, "<ul>\n<li>one</li>\n<li>two <em>em</em></li>\n</ul>"));
  CHECK(strstr(html, "<a href=\"https://example.com\">site</a>"));
  CHECK(!strstr(html, "href=\"javascript"));
  CHECK(count(html, "<script") == 0);
  /* The order of outputs in cell 1: text, image, image, text. */
  const char *text = strstr(html, "progress 100%"), *image = strstr(html, "data:image/png"),
             *after = strstr(html, "after\n");
  CHECK(text && image && after && text < image && image < after);
  free(html);
}

static void test_markdown(const notebook *nb) {
  CHECK(notebook_export(nb, path_in("out.md")) == 0);
  char *md = slurp(path_in("out.md"), NULL);
  CHECK(md != NULL);
  if (!md)
    return;
  CHECK(strstr(md, "# Heading & more\n"));
  CHECK(strstr(md, "```lua\nlocal s = \"<b>&</b>\"\nprint(s)\n"));
  CHECK(strstr(md, "```text\n<b>&</b>\nprogress 100%\nbold\nflushed\n```"));
  CHECK(strstr(md, "](out_files/cell2_1.png)"));
  CHECK(strstr(md, "](out_files/cell2_2.png)"));
  CHECK(strstr(md, "**Make <pictures>**"));
  CHECK(strstr(md, "demo.lua:7: boom"));
  CHECK(strstr(md, "print('never')"));
  free(md);
  for (int k = 1; k <= 2; k++) {
    char name[64];
    snprintf(name, sizeof name, "out_files/cell2_%d.png", k);
    size_t n;
    char *png = slurp(path_in(name), &n);
    CHECK(png != NULL);
    CHECK(png && n > 8 && memcmp(png, png_signature, 8) == 0);
    free(png);
  }
}

static const cJSON *item(const cJSON *o, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(o, key);
}

static const char *str(const cJSON *o, const char *key) {
  const cJSON *v = item(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Joins a list of lines (Jupyter's multi-line string). */
static char *joined(const cJSON *arr) {
  static char buf[4096];
  buf[0] = '\0';
  const cJSON *line;
  cJSON_ArrayForEach(line, arr) {
    if (cJSON_IsString(line))
      strncat(buf, line->valuestring, sizeof buf - strlen(buf) - 1);
  }
  return buf;
}

static void test_ipynb(const notebook *nb) {
  CHECK(notebook_export(nb, path_in("out.ipynb")) == 0);
  char *text = slurp(path_in("out.ipynb"), NULL);
  CHECK(text != NULL);
  cJSON *root = text ? cJSON_Parse(text) : NULL;
  free(text);
  CHECK(root != NULL);
  if (!root)
    return;
  CHECK(cJSON_GetNumberValue(item(root, "nbformat")) == 4);
  CHECK(cJSON_GetNumberValue(item(root, "nbformat_minor")) == 5);
  const cJSON *meta = item(root, "metadata");
  CHECK_STR(str(item(meta, "kernelspec"), "name"), "sdrepl");
  CHECK_STR(str(item(meta, "kernelspec"), "display_name"), "Lua (sdrepl)");
  CHECK_STR(str(item(meta, "kernelspec"), "language"), "lua");
  CHECK_STR(str(item(meta, "language_info"), "name"), "lua");
  CHECK_STR(str(item(meta, "language_info"), "file_extension"), ".lua");

  const cJSON *cells = item(root, "cells");
  CHECK(cJSON_GetArraySize(cells) == 4);
  const cJSON *md = cJSON_GetArrayItem(cells, 0), *c1 = cJSON_GetArrayItem(cells, 1),
              *c2 = cJSON_GetArrayItem(cells, 2), *c3 = cJSON_GetArrayItem(cells, 3);
  CHECK_STR(str(md, "cell_type"), "markdown");
  CHECK(item(md, "outputs") == NULL);
  CHECK(strncmp(joined(item(md, "source")), "# Heading & more\n", 17) == 0);
  CHECK_STR(str(c1, "cell_type"), "code");
  CHECK_STR(str(c1, "id"), "cell-2");
  CHECK_STR(str(item(c1, "metadata"), "title"), "Make <pictures>");
  CHECK(cJSON_GetNumberValue(item(c1, "execution_count")) == 1);
  const cJSON *src = item(c1, "source");
  CHECK(cJSON_GetArraySize(src) == 4);
  CHECK_STR(cJSON_GetArrayItem(src, 0)->valuestring, "local s = \"<b>&</b>\"\n");
  CHECK_STR(cJSON_GetArrayItem(src, 3)->valuestring, "img");

  const cJSON *outs = item(c1, "outputs");
  CHECK(cJSON_GetArraySize(outs) == 4);
  const cJSON *o0 = cJSON_GetArrayItem(outs, 0), *o1 = cJSON_GetArrayItem(outs, 1),
              *o3 = cJSON_GetArrayItem(outs, 3);
  CHECK_STR(str(o0, "output_type"), "stream");
  CHECK_STR(str(o0, "name"), "stdout");
  CHECK_STR(joined(item(o0, "text")), "<b>&</b>\nprogress 100%\nbold\nflushed\n");
  CHECK_STR(str(o1, "output_type"), "display_data");
  const char *b64 = str(item(o1, "data"), "image/png");
  CHECK(b64 && strncmp(b64, "iVBORw0KGgo", 11) == 0);
  CHECK_STR(joined(item(item(o1, "data"), "text/plain")), "<Image 4x3 RGB>");
  CHECK(cJSON_GetNumberValue(item(item(item(o1, "metadata"), "image/png"), "width")) == 4);
  CHECK_STR(str(cJSON_GetArrayItem(outs, 2), "output_type"), "display_data");
  CHECK_STR(joined(item(o3, "text")), "after\n");

  CHECK(cJSON_GetNumberValue(item(c2, "execution_count")) == 2);
  CHECK(item(item(c2, "metadata"), "title") == NULL);
  const cJSON *err = cJSON_GetArrayItem(item(c2, "outputs"), 1);
  CHECK_STR(str(err, "output_type"), "error");
  CHECK_STR(str(err, "ename"), "LuaError");
  CHECK_STR(str(err, "evalue"), "demo.lua:7: boom");
  const cJSON *tb = item(err, "traceback");
  CHECK(cJSON_GetArraySize(tb) == 4);
  CHECK_STR(cJSON_GetArrayItem(tb, 3)->valuestring, "\tdemo.lua:7: in main chunk");
  CHECK_STR(joined(item(cJSON_GetArrayItem(item(c2, "outputs"), 0), "text")),
            "bad utf8 \xEF\xBF\xBD\n");

  CHECK(cJSON_IsNull(item(c3, "execution_count")));
  CHECK(cJSON_GetArraySize(item(c3, "outputs")) == 0);
  cJSON_Delete(root);
}

static void test_errors_and_leftovers(const notebook *nb) {
  CHECK(notebook_export(nb, path_in("out.txt")) == -1);
  const char *msg = sdr_last_error();
  CHECK(strstr(msg, ".html") && strstr(msg, ".md") && strstr(msg, ".ipynb"));
  CHECK(notebook_export(nb, path_in("out")) == -1);
  CHECK(!notebook_format_known("x.txt") && notebook_format_known("x.IPYNB"));
  CHECK(notebook_export(nb, "/nonexistent-dir/x.html") == -1);
  CHECK(strstr(sdr_last_error(), "/nonexistent-dir/x.html") != NULL);
  CHECK(access(path_in("out.txt"), F_OK) != 0);

  /* Only the files asked for: no temporary file left behind. */
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
      continue;
    n++;
    CHECK(strcmp(e->d_name, "out.html") == 0 || strcmp(e->d_name, "out.md") == 0 ||
          strcmp(e->d_name, "out.ipynb") == 0 || strcmp(e->d_name, "out_files") == 0);
  }
  closedir(d);
  CHECK(n == 4);
  struct stat st;
  CHECK(stat(path_in("out.html"), &st) == 0 && (st.st_mode & 0444) == 0444);
}

static void test_empty(void) {
  notebook *nb = notebook_new(NULL);
  CHECK(notebook_export(nb, path_in("empty.ipynb")) == 0);
  CHECK(notebook_export(nb, path_in("empty.md")) == 0);
  CHECK(notebook_export(nb, path_in("empty.html")) == 0);
  CHECK(access(path_in("empty_files"), F_OK) != 0); /* no images, no folder */
  char *text = slurp(path_in("empty.ipynb"), NULL);
  cJSON *root = text ? cJSON_Parse(text) : NULL;
  CHECK(root && cJSON_GetArraySize(item(root, "cells")) == 0);
  cJSON_Delete(root);
  free(text);
  /* Output before any cell gets a cell of its own rather than vanishing. */
  notebook_add_stream(nb, "x", 1);
  CHECK(notebook_export(nb, path_in("empty.ipynb")) == 0);
  text = slurp(path_in("empty.ipynb"), NULL);
  CHECK(text && strstr(text, "\"x\""));
  free(text);
  notebook_free(nb);
  unlink(path_in("empty.ipynb"));
  unlink(path_in("empty.md"));
  unlink(path_in("empty.html"));
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_empty();
  notebook *nb = build();
  test_html(nb);
  test_markdown(nb);
  test_ipynb(nb);
  test_errors_and_leftovers(nb);
  notebook_free(nb);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (check_failures == 0 && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_exit();
}
