/* PLACEHOLDER: replaced by the notebook work. */
#include "repl/notebook.h"
#include "engine/error.h"
notebook *notebook_new(const char *title) { return 0; }
void notebook_free(notebook *nb) {}
void notebook_begin_cell(notebook *nb, int kind, const char *title, const char *source) {}
void notebook_add_stream(notebook *nb, const char *text, size_t len) {}
void notebook_add_image(notebook *nb, const sdr_image *img) {}
void notebook_add_error(notebook *nb, const char *message) {}
int notebook_export(const notebook *nb, const char *out_path) { return sdr_fail("pending"); }
