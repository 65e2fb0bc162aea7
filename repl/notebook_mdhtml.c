/* repl/notebook_mdhtml.c — the little Markdown a notebook's text cells need, as HTML.
 *
 * Blocks: ATX headings, paragraphs, "-", "*", "+" and "1." lists (one level),
 * fenced code, block quotes, rules. Inline: `code`, **strong**, *em*,
 * [links](http://...). Anything else is text and escaped, so a cell can put
 * nothing into the page but these few tags; links only go to http(s), mailto
 * or relative addresses (never javascript:).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "repl/notebook_internal.h" // nb_buf, nb_put_html

/* ---- inline ------------------------------------------------------------ */

enum { INLINE_MAX_DEPTH = 8 };

static void put_inline(nb_buf *b, const char *s, size_t n, int depth);

/* Finds the closing delimiter d (length dn) in s[from, n) that follows a non-blank. */
static size_t find_close(const char *s, size_t n, size_t from, const char *d, size_t dn) {
  for (size_t i = from; i + dn <= n; i++) {
    if (s[i] == '\\') {
      i++;
      continue;
    }
    if (s[i] == '`') { /* code spans hide delimiters */
      size_t j = i + 1;
      while (j < n && s[j] != '`')
        j++;
      if (j < n)
        i = j;
      continue;
    }
    if (memcmp(s + i, d, dn) == 0 && i > from && !isspace((unsigned char)s[i - 1]))
      return i;
  }
  return (size_t)-1;
}

static int safe_url(const char *u, size_t n) {
  if ((n >= 7 && strncmp(u, "http://", 7) == 0) || (n >= 8 && strncmp(u, "https://", 8) == 0) ||
      (n >= 7 && strncmp(u, "mailto:", 7) == 0))
    return 1;
  for (size_t i = 0; i < n; i++) { /* relative: no scheme before the first '/', '?' or '#' */
    if (u[i] == '/' || u[i] == '?' || u[i] == '#')
      return 1;
    if (u[i] == ':')
      return 0;
  }
  return 1;
}

/* [text](url) at s[i] == '['; returns the length used, 0 if it is not a link. */
static size_t put_link(nb_buf *b, const char *s, size_t n, size_t i, int depth) {
  size_t close = i + 1;
  int level = 1;
  for (; close < n && level; close++)
    level += s[close] == '[' ? 1 : s[close] == ']' ? -1 : 0;
  if (level || close >= n || s[close] != '(')
    return 0;
  size_t url = close + 1, end = url;
  while (end < n && s[end] != ')' && !isspace((unsigned char)s[end]))
    end++;
  if (end >= n || s[end] != ')' || !safe_url(s + url, end - url))
    return 0;
  nb_puts(b, "<a href=\"");
  nb_put_html(b, s + url, end - url);
  nb_puts(b, "\">");
  put_inline(b, s + i + 1, close - 1 - (i + 1), depth + 1);
  nb_puts(b, "</a>");
  return end + 1 - i;
}

static void put_inline(nb_buf *b, const char *s, size_t n, int depth) {
  size_t text = 0; /* start of plain text not yet written */
  for (size_t i = 0; i < n;) {
    size_t used = 0;
    if (s[i] == '\\' && i + 1 < n && ispunct((unsigned char)s[i + 1])) {
      nb_put_html(b, s + text, i - text);
      nb_put_html(b, s + i + 1, 1);
      i += 2;
      text = i;
      continue;
    }
    if (s[i] == '`') {
      size_t run = 0;
      while (i + run < n && s[i + run] == '`')
        run++;
      for (size_t j = i + run; j + run <= n; j++) {
        if (memcmp(s + j, s + i, run) == 0 && (j + run == n || s[j + run] != '`')) {
          nb_put_html(b, s + text, i - text);
          nb_puts(b, "<code>");
          nb_put_html(b, s + i + run, j - i - run);
          nb_puts(b, "</code>");
          used = j + run - i;
          break;
        }
      }
      if (!used)
        used = run; /* an unmatched run is text */
      else
        text = i + used;
      i += used;
      continue;
    }
    if (depth < INLINE_MAX_DEPTH &&
        (s[i] == '*' || (s[i] == '_' && i + 1 < n && s[i + 1] == '_'))) {
      int strong = i + 1 < n && s[i + 1] == s[i];
      size_t dn = strong ? 2 : 1;
      char d[2] = {s[i], s[i]};
      if (i + dn < n && !isspace((unsigned char)s[i + dn])) {
        size_t close = find_close(s, n, i + dn, d, dn);
        if (close != (size_t)-1) {
          nb_put_html(b, s + text, i - text);
          nb_puts(b, strong ? "<strong>" : "<em>");
          put_inline(b, s + i + dn, close - i - dn, depth + 1);
          nb_puts(b, strong ? "</strong>" : "</em>");
          i = close + dn;
          text = i;
          continue;
        }
      }
    }
    if (depth < INLINE_MAX_DEPTH && s[i] == '[') {
      nb_buf link = {0};
      used = put_link(&link, s, n, i, depth);
      if (used && !link.oom) {
        nb_put_html(b, s + text, i - text);
        nb_put(b, link.p, link.len);
        i += used;
        text = i;
        nb_buf_free(&link);
        continue;
      }
      nb_buf_free(&link);
    }
    i++;
  }
  nb_put_html(b, s + text, n - text);
}

/* ---- blocks ------------------------------------------------------------ */

typedef struct md_line {
  const char *p;
  size_t len;
} md_line;

static size_t indent_of(md_line l) {
  size_t i = 0;
  while (i < l.len && (l.p[i] == ' ' || l.p[i] == '\t'))
    i++;
  return i;
}

static int is_blank_line(md_line l) { return indent_of(l) == l.len; }

/* Heading level 1-6, or 0; *text is set to the heading text. */
static int heading(md_line l, md_line *text) {
  size_t i = indent_of(l), level = 0;
  if (i > 3)
    return 0;
  while (i < l.len && l.p[i] == '#' && level < 7)
    i++, level++;
  if (level == 0 || level > 6 || (i < l.len && l.p[i] != ' ' && l.p[i] != '\t'))
    return 0;
  while (i < l.len && (l.p[i] == ' ' || l.p[i] == '\t'))
    i++;
  size_t end = l.len;
  while (end > i && (l.p[end - 1] == '#' || l.p[end - 1] == ' '))
    end--;
  text->p = l.p + i;
  text->len = end - i;
  return (int)level;
}

/* A list item: 1 for "-", "*", "+", 2 for "1." or "1)"; *text is what follows. */
static int list_item(md_line l, md_line *text) {
  size_t i = indent_of(l);
  if (i > 3 || i >= l.len)
    return 0;
  int kind = 0;
  if ((l.p[i] == '-' || l.p[i] == '*' || l.p[i] == '+') && i + 1 < l.len && l.p[i + 1] == ' ') {
    kind = 1;
    i += 2;
  } else if (isdigit((unsigned char)l.p[i])) {
    size_t j = i;
    while (j < l.len && j - i < 9 && isdigit((unsigned char)l.p[j]))
      j++;
    if (j + 1 < l.len && (l.p[j] == '.' || l.p[j] == ')') && l.p[j + 1] == ' ') {
      kind = 2;
      i = j + 2;
    }
  }
  if (!kind)
    return 0;
  while (i < l.len && l.p[i] == ' ')
    i++;
  text->p = l.p + i;
  text->len = l.len - i;
  return kind;
}

static int is_fence(md_line l, char *ch, size_t *run) {
  size_t i = indent_of(l);
  if (i > 3 || i >= l.len || (l.p[i] != '`' && l.p[i] != '~'))
    return 0;
  size_t k = 0;
  while (i + k < l.len && l.p[i + k] == l.p[i])
    k++;
  if (k < 3)
    return 0;
  *ch = l.p[i];
  *run = k;
  return 1;
}

static int is_rule(md_line l) {
  size_t i = indent_of(l), count = 0;
  char c = i < l.len ? l.p[i] : 0;
  if (c != '-' && c != '*' && c != '_')
    return 0;
  for (; i < l.len; i++) {
    if (l.p[i] == c)
      count++;
    else if (l.p[i] != ' ' && l.p[i] != '\t')
      return 0;
  }
  return count >= 3;
}

static int is_quote(md_line l, md_line *text) {
  size_t i = indent_of(l);
  if (i > 3 || i >= l.len || l.p[i] != '>')
    return 0;
  i++;
  if (i < l.len && l.p[i] == ' ')
    i++;
  text->p = l.p + i;
  text->len = l.len - i;
  return 1;
}

/* Lines that end a paragraph or a list item's text without a blank line. */
static int starts_block(md_line l) {
  md_line t;
  char ch;
  size_t run;
  return heading(l, &t) || list_item(l, &t) || is_fence(l, &ch, &run) || is_rule(l) ||
         is_quote(l, &t);
}

/* Writes lines joined by newlines, inline-rendered. */
static void put_lines(nb_buf *b, const md_line *lines, size_t n) {
  nb_buf joined = {0};
  for (size_t i = 0; i < n; i++) {
    if (i)
      nb_put(&joined, "\n", 1);
    size_t k = indent_of(lines[i]);
    nb_put(&joined, lines[i].p + k, lines[i].len - k);
  }
  if (!joined.oom && joined.p)
    put_inline(b, joined.p, joined.len, 0);
  nb_buf_free(&joined);
}

void nb_markdown_to_html(nb_buf *b, const char *md) {
  /* Cut into lines first; blocks then look ahead freely. */
  size_t n = strlen(md), count = 0;
  for (size_t i = 0; i < n; i++)
    count += md[i] == '\n';
  md_line *lines = malloc((count + 1) * sizeof *lines);
  if (!lines) {
    b->oom = 1;
    return;
  }
  size_t nl = 0, start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || md[i] == '\n') {
      lines[nl].p = md + start;
      lines[nl].len = i - start;
      if (lines[nl].len && lines[nl].p[lines[nl].len - 1] == '\r')
        lines[nl].len--;
      nl++;
      start = i + 1;
    }
  }

  size_t i = 0;
  while (i < nl) {
    md_line l = lines[i], text;
    char fch;
    size_t frun;
    int level, kind;
    if (is_blank_line(l)) {
      i++;
    } else if (is_fence(l, &fch, &frun)) {
      nb_puts(b, "<pre><code>");
      for (i++; i < nl; i++) {
        char c2;
        size_t r2;
        if (is_fence(lines[i], &c2, &r2) && c2 == fch && r2 >= frun) {
          i++;
          break;
        }
        nb_put_html(b, lines[i].p, lines[i].len);
        nb_puts(b, "\n");
      }
      nb_puts(b, "</code></pre>\n");
    } else if ((level = heading(l, &text)) != 0) {
      nb_printf(b, "<h%d>", level);
      put_inline(b, text.p, text.len, 0);
      nb_printf(b, "</h%d>\n", level);
      i++;
    } else if (is_rule(l)) {
      nb_puts(b, "<hr>\n");
      i++;
    } else if (is_quote(l, &text)) {
      nb_puts(b, "<blockquote><p>");
      size_t first = i;
      for (; i < nl && is_quote(lines[i], &text); i++)
        lines[i] = text;
      put_lines(b, lines + first, i - first);
      nb_puts(b, "</p></blockquote>\n");
    } else if ((kind = list_item(l, &text)) != 0) {
      nb_puts(b, kind == 1 ? "<ul>\n" : "<ol>\n");
      while (i < nl && list_item(lines[i], &text) == kind) {
        /* The item's text: its line, then lines indented under it. */
        lines[i] = text;
        size_t first = i++;
        while (i < nl && !is_blank_line(lines[i]) && !list_item(lines[i], &text) &&
               (indent_of(lines[i]) > 0 || !starts_block(lines[i])))
          i++;
        nb_puts(b, "<li>");
        put_lines(b, lines + first, i - first);
        nb_puts(b, "</li>\n");
        /* A blank line between items keeps the list going. */
        size_t j = i;
        while (j < nl && is_blank_line(lines[j]))
          j++;
        if (j < nl && list_item(lines[j], &text) == kind)
          i = j;
      }
      nb_puts(b, kind == 1 ? "</ul>\n" : "</ol>\n");
    } else {
      size_t first = i++;
      while (i < nl && !is_blank_line(lines[i]) && !starts_block(lines[i]))
        i++;
      nb_puts(b, "<p>");
      put_lines(b, lines + first, i - first);
      nb_puts(b, "</p>\n");
    }
  }
  free(lines);
}
