/* tests/fuzz/fuzz_cells.c — cells_split on any bytes: no crash, no read past len, and the
 * cells it returns are consistent (line numbers inside the text, increasing, kinds known). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repl/notebook.h" // NOTEBOOK_CODE, NOTEBOOK_MARKDOWN

/* The splitter itself, compiled into this target: the library is built without
 * -fsanitize=fuzzer, and libFuzzer needs the coverage of the code it explores.
 * (The linker then takes no cells.o from the archive.) */
#include "repl/cells.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of exactly size bytes, so ASan sees any read past the end. */
  char *text = malloc(size ? size : 1);
  if (!text)
    return 0;
  if (size)
    memcpy(text, data, size);
  size_t lines = 1;
  for (size_t i = 0; i < size; i++)
    lines += text[i] == '\n' || text[i] == '\r';

  cell_list l;
  if (cells_split(text, size, &l) != 0) {
    free(text);
    return 0;
  }
  int last = 0;
  for (int i = 0; i < l.count; i++) {
    const cell *c = &l.cells[i];
    if (c->kind != NOTEBOOK_CODE && c->kind != NOTEBOOK_MARKDOWN)
      __builtin_trap();
    if (!c->title || !c->source)
      __builtin_trap();
    if (c->first_line < 1 || (size_t)c->first_line > lines + 1 || c->first_line <= last)
      __builtin_trap();
    if (strchr(c->source, '\r') || strchr(c->title, '\n') || strchr(c->title, '\r'))
      __builtin_trap();
    last = c->first_line;
  }
  if (l.count > l.markers + 1)
    __builtin_trap();
  cells_free(&l);
  free(text);
  return 0;
}
