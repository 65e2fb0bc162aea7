/* PLACEHOLDER: replaced by the notebook work. */
#include "repl/cells.h"
int cells_split(const char *text, size_t len, cell_list *out) { return -1; }
void cells_free(cell_list *list) {}
