/* engine/clip_token_embeddings.c — CLIPTextModel's token embedding grown and edited
 * (transformers' resize_token_embeddings and get_input_embeddings().weight[id] = vec),
 * which a textual inversion needs.
 *
 * The weight file's table stays as it was bound; a model with other rows gets a table
 * of its own on its backend, in torch's dtype for the model: the file's rows, zeros past
 * them, then the rows set by hand, which are kept on the host too so that a model
 * copied to another device (pipe:to("cuda")) has them.
 */
#include "engine/clip_text_model.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

sdr_dtype sdr_clip_text_torch_dtype(const sdr_clip_text_model *m) {
  return m->weights.keep_dtype >= 0 ? (sdr_dtype)m->weights.keep_dtype : SDR_F32;
}

/* The model's own table, in torch's dtype (a new row keeps all a vector's bits there,
 * even when the file's table is float16): the file's first rows, zeros, the rows set. */
static int rebuild(sdr_clip_text_model *m) {
  const sdr_tensor *f = &m->tok_emb_file;
  const sdr_dtype dt = sdr_clip_text_torch_dtype(m);
  const int V = m->cfg.vocab_size, D = m->cfg.hidden_size;
  const size_t es = sdr_dtype_size(dt), row = (size_t)D * es,
               frow = (size_t)D * sdr_dtype_size(f->dtype);
  const int keep = V < m->file_vocab ? V : m->file_vocab;
  unsigned char *host = calloc((size_t)V, row), *file = malloc((size_t)(keep ? keep : 1) * frow);
  if (!host || !file) {
    free(host), free(file);
    return sdr_fail("resize_token_embeddings: out of memory for %d rows", V);
  }
  int rc = sdr_download(m->be, file, f->data, (size_t)keep * frow);
  float *v = rc == 0 ? malloc((size_t)D * sizeof *v) : NULL;
  if (rc == 0 && !v)
    rc = sdr_fail("resize_token_embeddings: out of memory");
  for (int r = 0; rc == 0 && r < keep; r++) { /* exact: a float16 or bfloat16 value widens */
    sdr_floats_convert(v, SDR_F32, file + (size_t)r * frow, f->dtype, (size_t)D);
    sdr_floats_convert(host + (size_t)r * row, dt, v, SDR_F32, (size_t)D);
  }
  free(v);
  free(file);
  for (int i = 0; rc == 0 && i < m->nrows_set; i++)
    if (m->rows_set[i].id < V)
      sdr_floats_convert(host + (size_t)m->rows_set[i].id * row, dt, m->rows_set[i].vec, SDR_F32,
                         (size_t)D);
  void *table = rc == 0 ? sdr_alloc(m->be, (size_t)V * row) : NULL;
  if (rc == 0 && !table)
    rc = -1;
  if (rc == 0)
    rc = sdr_upload(m->be, table, host, (size_t)V * row);
  if (rc == 0 && (rc = sdr_sync(m->be)) == 0) {
    if (m->own_table)
      sdr_free(m->be, m->own_table);
    m->own_table = table;
    m->tok_emb = *f;
    m->tok_emb.dtype = dt;
    m->tok_emb.shape[0] = V;
    m->tok_emb.data = table;
  } else if (table) {
    sdr_free(m->be, table);
  }
  free(host);
  return rc;
}

int sdr_clip_text_resize_token_embeddings(sdr_clip_text_model *m, int vocab) {
  if (vocab < 1)
    return sdr_fail("resize_token_embeddings: %d rows; at least 1", vocab);
  if (vocab == m->cfg.vocab_size)
    return 0; /* as transformers: the same size keeps the table */
  const int was = m->cfg.vocab_size;
  m->cfg.vocab_size = vocab;
  if (rebuild(m) != 0) {
    m->cfg.vocab_size = was;
    return -1;
  }
  return 0;
}

int sdr_clip_text_resize_drawn(sdr_clip_text_model *m, int vocab, sdr_generator *g,
                               int keep_until) {
  const int old = m->cfg.vocab_size, D = m->cfg.hidden_size;
  if (vocab < 1)
    return sdr_fail("resize_token_embeddings: %d rows; at least 1", vocab);
  if (vocab == old)
    return 0;
  keep_until = keep_until < vocab ? keep_until : vocab;
  const int keep = keep_until > old ? keep_until - old : 0;
  float *tail = keep ? malloc((size_t)keep * D * sizeof *tail) : NULL;
  if (keep && !tail)
    return sdr_fail("resize_token_embeddings: out of memory");
  /* nn.Embedding(vocab, D, dtype=weight.dtype) draws all of its rows */
  if (sdr_generator_normal_tail(g, (size_t)vocab * D, sdr_clip_text_torch_dtype(m), (size_t)old * D,
                                tail) != 0) {
    free(tail);
    return sdr_fail("resize_token_embeddings: out of memory for the new table's draw");
  }
  int rc = sdr_clip_text_resize_token_embeddings(m, vocab);
  for (int r = 0; rc == 0 && r < keep; r++)
    rc = sdr_clip_text_set_token_embedding(m, old + r, tail + (size_t)r * D);
  free(tail);
  return rc;
}

int sdr_clip_text_table_rows(const sdr_clip_text_model *m, int position, int first, int n,
                             float *out) {
  const sdr_tensor *table = position ? &m->pos_emb : &m->tok_emb;
  const int V = (int)table->shape[0], D = m->cfg.hidden_size;
  if (first < 0 || n < 0 || first > V - n)
    return sdr_fail("%s embedding: rows %d to %d are outside [0, %d)",
                    position ? "position" : "token", first, first + n, V);
  const sdr_dtype dt = table->dtype;
  const size_t es = sdr_dtype_size(dt), bytes = (size_t)n * D * es;
  void *raw = dt == SDR_F32 ? (void *)out : malloc(bytes ? bytes : 1);
  if (!raw)
    return sdr_fail("token embedding: out of memory");
  int rc = sdr_download(m->be, raw, (const char *)table->data + (size_t)first * D * es, bytes);
  if (rc == 0 && raw != out)
    sdr_floats_convert(out, SDR_F32, raw, dt, (size_t)n * D);
  if (raw != out)
    free(raw);
  return rc;
}

/* A new entry at the end of the rows set, for id, its vector to be filled. */
static int add_row(sdr_clip_text_model *m, int id) {
  sdr_clip_token_row *r = realloc(m->rows_set, (size_t)(m->nrows_set + 1) * sizeof *r);
  float *v = malloc((size_t)m->cfg.hidden_size * sizeof *v);
  if (r)
    m->rows_set = r;
  if (!r || !v) {
    free(v);
    return sdr_fail("token embedding: out of memory");
  }
  r[m->nrows_set++] = (sdr_clip_token_row){id, v};
  return 0;
}

int sdr_clip_text_set_token_embedding(sdr_clip_text_model *m, int id, const float *vec) {
  const int D = m->cfg.hidden_size;
  if (id < 0 || id >= m->cfg.vocab_size)
    return sdr_fail("token embedding: id %d is outside [0, %d)", id, m->cfg.vocab_size);
  int k = 0;
  while (k < m->nrows_set && m->rows_set[k].id != id)
    k++;
  if (k == m->nrows_set && add_row(m, id) != 0)
    return -1;
  memcpy(m->rows_set[k].vec, vec, (size_t)D * sizeof *vec);
  if (!m->own_table)
    return rebuild(m);
  const size_t es = sdr_dtype_size(m->tok_emb.dtype);
  void *row = malloc((size_t)D * es);
  if (!row)
    return sdr_fail("token embedding: out of memory");
  sdr_floats_convert(row, m->tok_emb.dtype, vec, SDR_F32, (size_t)D);
  int rc = sdr_upload(m->be, (char *)m->own_table + (size_t)id * D * es, row, (size_t)D * es);
  if (rc == 0)
    rc = sdr_sync(m->be);
  free(row);
  return rc;
}

int sdr_clip_text_keep_rows(sdr_clip_text_model *m, const int *old_ids, int n) {
  const int V = m->cfg.vocab_size, D = m->cfg.hidden_size;
  const sdr_dtype dt = m->tok_emb.dtype;
  const size_t es = sdr_dtype_size(dt), row = (size_t)D * es;
  for (int j = 0; j < n; j++)
    if (old_ids[j] < 0 || old_ids[j] >= V)
      return sdr_fail("token embedding: row %d is outside [0, %d)", old_ids[j], V);
  unsigned char *host = malloc((size_t)V * row);
  sdr_clip_token_row *rows = calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
  int nrows = 0, rc = host && rows ? 0 : sdr_fail("token embedding: out of memory");
  if (rc == 0)
    rc = sdr_download(m->be, host, m->tok_emb.data, (size_t)V * row);
  for (int j = 0; rc == 0 && j < n; j++) {
    /* a row the file gives at its own place needs nothing kept */
    int set_before = 0;
    for (int k = 0; k < m->nrows_set && !set_before; k++)
      set_before = m->rows_set[k].id == j;
    if (old_ids[j] == j && j < m->file_vocab && !set_before)
      continue;
    float *v = malloc((size_t)D * sizeof *v);
    if (!v) {
      rc = sdr_fail("token embedding: out of memory");
      break;
    }
    sdr_floats_convert(v, SDR_F32, host + (size_t)old_ids[j] * row, dt, (size_t)D);
    rows[nrows++] = (sdr_clip_token_row){j, v};
  }
  free(host);
  if (rc != 0) {
    for (int k = 0; k < nrows; k++)
      free(rows[k].vec);
    free(rows);
    return rc;
  }
  for (int k = 0; k < m->nrows_set; k++)
    free(m->rows_set[k].vec);
  free(m->rows_set);
  m->rows_set = rows;
  m->nrows_set = nrows;
  m->cfg.vocab_size = n;
  return rebuild(m);
}

int sdr_clip_token_rows_copy(sdr_clip_text_model *dst, const sdr_clip_text_model *src) {
  const int D = src->cfg.hidden_size;
  for (int i = 0; i < src->nrows_set; i++) {
    if (add_row(dst, src->rows_set[i].id) != 0)
      return -1;
    memcpy(dst->rows_set[i].vec, src->rows_set[i].vec, (size_t)D * sizeof *src->rows_set[i].vec);
  }
  return src->own_table ? rebuild(dst) : 0;
}

void sdr_clip_token_rows_free(sdr_clip_text_model *m) {
  for (int i = 0; i < m->nrows_set; i++)
    free(m->rows_set[i].vec);
  free(m->rows_set);
  m->rows_set = NULL;
  m->nrows_set = 0;
  if (m->own_table && m->be)
    sdr_free(m->be, m->own_table);
  m->own_table = NULL;
}
