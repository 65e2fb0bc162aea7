/* engine/model_save.c — a model's config and bound weights into a folder. */
#include "engine/model_save.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/atomic_file.h" // sdr_make_dirs, sdr_write_file_atomic
#include "engine/error.h"       // sdr_fail, sdr_fail_prefix
#include "engine/safetensors.h" // sdr_safetensors_write_metadata

int sdr_model_save(sdr_weights *w, const char *dir, const char *stem, const char *variant) {
  if (!w->config_text)
    return sdr_fail("%s: no config.json was kept when it was loaded; it cannot be saved",
                    w->component);
  if (sdr_make_dirs(dir) != 0)
    return -1;
  const size_t n = sdr_weights_nbound(w);
  sdr_st_tensor *t = calloc(n ? n : 1, sizeof *t);
  void **host = calloc(n ? n : 1, sizeof *host); /* copies read back from a device */
  int rc = t && host ? 0 : sdr_fail("out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *name = sdr_weights_bound_name(w, i);
    const sdr_tensor *s = sdr_weights_bound_at(w, i);
    t[i].name = name;
    t[i].dtype = s->dtype;
    t[i].ndim = s->ndim;
    for (int d = 0; d < s->ndim; d++)
      t[i].shape[d] = s->shape[d];
    t[i].nbytes = sdr_tensor_nbytes(s);
    t[i].data = s->data;
    if (s->device != SDR_DEVICE_CPU && t[i].nbytes) {
      if (!(host[i] = malloc(t[i].nbytes)))
        rc = sdr_fail("%s: out of memory reading %s back from the device", w->component, name);
      else if (sdr_download(w->be, host[i], s->data, t[i].nbytes) != 0)
        rc = sdr_fail_prefix("%s: %s: ", w->component, name);
      t[i].data = host[i];
    }
  }
  char path[4096];
  if (rc == 0) {
    snprintf(path, sizeof path, "%s/%s%s%s.safetensors", dir, stem, variant ? "." : "",
             variant ? variant : "");
    static const char *const keys[] = {"format"}, *const values[] = {"pt"};
    rc = sdr_safetensors_write_metadata(path, t, n, keys, values, 1);
  }
  if (rc == 0) {
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = sdr_write_file_atomic(path, w->config_text, strlen(w->config_text));
  }
  for (size_t i = 0; host && i < n; i++)
    free(host[i]);
  free(host);
  free(t);
  return rc;
}
