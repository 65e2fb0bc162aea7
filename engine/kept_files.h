/* engine/kept_files.h — the small files of a model folder, read when it is loaded and written
 * back unchanged by save_pretrained: model_index.json, a tokenizer's vocab.json and
 * merges.txt, a feature extractor's preprocessor_config.json.
 *
 * They are read at loading, not at saving, because the folder may be gone by then (a
 * single-file checkpoint is loaded through a folder staged for the load) or be the very
 * folder being saved over.
 */
#ifndef SDR_ENGINE_KEPT_FILES_H
#define SDR_ENGINE_KEPT_FILES_H

#include <stddef.h>

typedef struct sdr_kept_file {
  char *rel; /* its path inside the folder: "tokenizer/vocab.json" */
  char *data;
  size_t len;
} sdr_kept_file;

typedef struct sdr_kept_files {
  sdr_kept_file *f;
  int n;
} sdr_kept_files;

/* Keeps the file at path as rel. */
int sdr_kept_files_add(sdr_kept_files *k, const char *path, const char *rel);
/* Keeps every plain file of folder as as/<its name> (none where the folder does not exist). */
int sdr_kept_files_add_folder(sdr_kept_files *k, const char *folder, const char *as);
/* The file kept as rel, or NULL. */
const sdr_kept_file *sdr_kept_files_find(const sdr_kept_files *k, const char *rel);
/* Writes every file whose path begins with prefix ("tokenizer/") under dir, each whole or
 * not at all; prefix "" writes them all. */
int sdr_kept_files_write(const sdr_kept_files *k, const char *dir, const char *prefix);
void sdr_kept_files_free(sdr_kept_files *k);

#endif
