/* repl/notebook_html.c — a record as one self-contained HTML page.
 *
 * Laid out like a notebook Jupyter saved as HTML: "In [n]:" beside each code
 * cell, the code in a grey box, its printed text below, images inline as PNG
 * data URLs, an error in a red box. Nothing is fetched from elsewhere, so the
 * page can be mailed or archived as it is. Every byte of user text is escaped.
 */
#include <stdio.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

#include "repl/notebook_internal.h" // nb_buf, nb_put_html, nb_markdown_to_html

static const char page_style[] =
    "body{margin:0;background:#fff;color:#000;font:14px/1.45 -apple-system,BlinkMacSystemFont,"
    "'Segoe UI',Helvetica,Arial,sans-serif}\n"
    "#notebook{max-width:1000px;margin:0 auto;padding:16px}\n"
    ".cell{display:flex;flex-direction:column;margin:10px 0}\n"
    ".row{display:flex;align-items:flex-start}\n"
    ".prompt{flex:none;width:7em;padding:.4em .6em 0 0;text-align:right;"
    "font:13px/1.3 monospace;color:#303f9f}\n"
    ".body{flex:1;min-width:0}\n"
    ".title{font:italic 12px monospace;color:#777;margin:0 0 2px}\n"
    "pre{margin:0;padding:.4em .6em;font:13px/1.35 Menlo,Consolas,'DejaVu Sans Mono',monospace;"
    "white-space:pre-wrap;word-wrap:break-word}\n"
    ".input pre{background:#f7f7f7;border:1px solid #cfcfcf;border-radius:2px}\n"
    ".output{margin-top:4px}\n"
    ".output pre{padding:.2em .6em}\n"
    ".output img{display:block;max-width:100%;margin:.3em .6em;image-rendering:auto}\n"
    ".error pre{background:#fdd;border-left:4px solid #d32f2f;color:#700}\n"
    ".markdown .body{padding:0 .6em}\n"
    ".markdown code{background:#f2f2f2;padding:0 .2em;border-radius:2px}\n"
    ".markdown pre{background:#f7f7f7}\n"
    ".skipped .prompt{color:#999}\n";

static void put_outputs(nb_buf *b, const nb_cell *c) {
  for (int j = 0; j < c->noutputs; j++) {
    const nb_output *o = &c->outputs[j];
    if (o->type == NB_STREAM) {
      nb_puts(b, "<div class=\"row output stream\"><div class=\"prompt\"></div><div class=\"body\">"
                 "<pre>");
      nb_put_html(b, o->text, o->len);
      nb_puts(b, "</pre></div></div>\n");
    } else if (o->type == NB_IMAGE) {
      nb_puts(b,
              "<div class=\"row output image\"><div class=\"prompt\"></div><div class=\"body\">");
      if (o->png) {
        nb_printf(b, "<img width=\"%d\" height=\"%d\" alt=\"", o->width, o->height);
        nb_put_html(b, o->text, o->len);
        nb_puts(b, "\" src=\"data:image/png;base64,");
        nb_put_base64(b, o->png, o->png_len);
        nb_puts(b, "\">");
      } else {
        nb_puts(b, "<pre>");
        nb_put_html(b, o->text, o->len);
        nb_puts(b, "</pre>");
      }
      nb_puts(b, "</div></div>\n");
    } else {
      nb_puts(b, "<div class=\"row output error\"><div class=\"prompt\"></div><div class=\"body\">"
                 "<pre>");
      nb_put_html(b, o->text, o->len);
      nb_puts(b, "</pre></div></div>\n");
    }
  }
}

static void put_cell(nb_buf *b, const nb_cell *c) {
  if (c->kind == NOTEBOOK_MARKDOWN) {
    nb_puts(b, "<div class=\"cell markdown\"><div class=\"row\"><div class=\"prompt\"></div>"
               "<div class=\"body\">\n");
    nb_markdown_to_html(b, c->source);
    nb_puts(b, "</div></div></div>\n");
    return;
  }
  nb_printf(b, "<div class=\"cell code%s\">\n", c->execution_count ? "" : " skipped");
  nb_puts(b, "<div class=\"row input\"><div class=\"prompt\">");
  if (c->execution_count)
    nb_printf(b, "In&nbsp;[%d]:", c->execution_count);
  else
    nb_puts(b, "In&nbsp;[&nbsp;]:");
  nb_puts(b, "</div><div class=\"body\">");
  if (c->title[0]) {
    nb_puts(b, "<div class=\"title\">");
    nb_put_html(b, c->title, strlen(c->title));
    nb_puts(b, "</div>");
  }
  nb_puts(b, "<pre><code class=\"language-lua\">");
  nb_put_html(b, c->source, strlen(c->source));
  nb_puts(b, "</code></pre></div></div>\n");
  put_outputs(b, c);
  nb_puts(b, "</div>\n");
}

int nb_export_html(const notebook *nb, const char *path) {
  nb_buf b = {0};
  nb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
              "<meta name=\"generator\" content=\"sdrepl\">\n<title>");
  nb_put_html(&b, nb->title, strlen(nb->title));
  nb_puts(&b, "</title>\n<style>\n");
  nb_puts(&b, page_style);
  nb_puts(&b, "</style>\n</head>\n<body>\n<div id=\"notebook\">\n");
  for (int i = 0; i < nb->ncells; i++)
    put_cell(&b, &nb->cells[i]);
  nb_puts(&b, "</div>\n</body>\n</html>\n");
  int rc = b.oom ? sdr_fail("writing %s: out of memory", path) : nb_write_file(path, b.p, b.len);
  nb_buf_free(&b);
  return rc;
}
