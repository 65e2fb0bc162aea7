/* repl/notebook_markdown.c — a record as Markdown, images as PNG files beside it.
 *
 *   out.md
 *   out_files/cell3_1.png     the first image cell 3 showed
 *
 * Code in ```lua fences, printed text and errors in plain fences, Markdown
 * cells as they are. The images are written before the page, so the page
 * never links to a file that is not there yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/error.h"           // sdr_fail
#include "repl/notebook_internal.h" // nb_buf, nb_write_file

/* A fence longer than any run of backticks in the text, so the text cannot close it. */
static void put_fenced(nb_buf *b, const char *info, const char *s, size_t n) {
  size_t longest = 0, run = 0;
  for (size_t i = 0; i < n; i++) {
    run = s[i] == '`' ? run + 1 : 0;
    if (run > longest)
      longest = run;
  }
  size_t fence = longest < 3 ? 3 : longest + 1;
  for (size_t i = 0; i < fence; i++)
    nb_put(b, "`", 1);
  nb_puts(b, info);
  nb_puts(b, "\n");
  nb_put(b, s, n);
  if (n && s[n - 1] != '\n')
    nb_puts(b, "\n");
  for (size_t i = 0; i < fence; i++)
    nb_put(b, "`", 1);
  nb_puts(b, "\n\n");
}

/* A path as a Markdown link target: unreserved characters kept, others %-encoded. */
static void put_url(nb_buf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~/", c))
      nb_put(b, s, 1);
    else
      nb_printf(b, "%%%02X", c);
  }
}

typedef struct images_dir {
  char *dir;  /* where the files go: "<path without .md>_files" */
  char *link; /* how the page names it: "<name>_files" */
  int made;
} images_dir;

static int images_dir_init(images_dir *d, const char *path) {
  size_t n = strlen(path) - 3; /* without ".md" */
  const char *slash = strrchr(path, '/');
  size_t base = slash ? (size_t)(slash - path) + 1 : 0;
  d->made = 0;
  d->dir = malloc(n + 8);
  d->link = malloc(n - base + 8);
  if (!d->dir || !d->link)
    return sdr_fail("writing %s: out of memory", path);
  snprintf(d->dir, n + 8, "%.*s_files", (int)n, path);
  snprintf(d->link, n - base + 8, "%.*s_files", (int)(n - base), path + base);
  return 0;
}

static int write_image(images_dir *d, const nb_output *o, int cell, int k, nb_buf *page) {
  if (!d->made) {
    if (mkdir(d->dir, 0777) != 0 && errno != EEXIST)
      return sdr_fail("cannot create %s: %s", d->dir, strerror(errno));
    d->made = 1;
  }
  size_t n = strlen(d->dir) + 48;
  char *file = malloc(n);
  if (!file)
    return sdr_fail("out of memory");
  snprintf(file, n, "%s/cell%d_%d.png", d->dir, cell, k);
  int rc = nb_write_file(file, o->png, o->png_len);
  free(file);
  if (rc != 0)
    return rc;
  nb_puts(page, "![");
  /* Alt text: the image's description, without what would end it or read as a tag. */
  for (size_t i = 0; i < o->len; i++)
    if (!strchr("[]<>\\\n", o->text[i]))
      nb_put(page, o->text + i, 1);
  nb_puts(page, "](");
  put_url(page, d->link);
  nb_printf(page, "/cell%d_%d.png)\n\n", cell, k);
  return 0;
}

int nb_export_markdown(const notebook *nb, const char *path) {
  images_dir d = {0};
  nb_buf b = {0};
  int rc = images_dir_init(&d, path);
  for (int i = 0; i < nb->ncells && rc == 0; i++) {
    const nb_cell *c = &nb->cells[i];
    if (c->kind == NOTEBOOK_MARKDOWN) {
      nb_puts(&b, c->source);
      nb_puts(&b, "\n\n");
      continue;
    }
    /* Jupyter's prompt, as an HTML comment: invisible, but there for a reader of the file. */
    if (c->execution_count)
      nb_printf(&b, "<!-- In [%d] -->\n", c->execution_count);
    else
      nb_puts(&b, "<!-- In [ ] (not run) -->\n");
    if (c->title[0]) {
      nb_puts(&b, "**");
      nb_puts(&b, c->title);
      nb_puts(&b, "**\n\n");
    }
    put_fenced(&b, "lua", c->source, strlen(c->source));
    int k = 0;
    for (int j = 0; j < c->noutputs && rc == 0; j++) {
      const nb_output *o = &c->outputs[j];
      if (o->type == NB_STREAM) {
        put_fenced(&b, "text", o->text, o->len);
      } else if (o->type == NB_ERROR) {
        nb_puts(&b, "**Error:**\n\n");
        put_fenced(&b, "text", o->text, o->len);
      } else if (o->png) {
        rc = write_image(&d, o, i + 1, ++k, &b);
      } else {
        put_fenced(&b, "text", o->text, o->len);
      }
    }
  }
  if (rc == 0)
    rc = b.oom ? sdr_fail("writing %s: out of memory", path) : nb_write_file(path, b.p, b.len);
  nb_buf_free(&b);
  free(d.dir);
  free(d.link);
  return rc;
}
