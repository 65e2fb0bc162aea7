/* engine/ip_adapter.c — an IP-Adapter's weights (loaders/unet.py's
 * _convert_ip_adapter_image_proj_to_diffusers and _convert_ip_adapter_attn_to_diffusers,
 * read under the file's own names) and their place in the UNet's cross-attentions. */
#include "engine/ip_adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

enum { MAX_CROSS = 256 };

static const sdr_st_tensor *file_tensor(const sdr_weights *w, const char *name) {
  for (int i = 0; i < w->nfiles; i++) {
    const sdr_st_tensor *t = sdr_weight_file_find(w->files[i], name);
    if (t)
      return t;
  }
  return NULL;
}

static int file_has_prefix(const sdr_weights *w, const char *prefix) {
  const size_t n = strlen(prefix);
  for (int i = 0; i < w->nfiles; i++)
    for (size_t k = 0; k < sdr_weight_file_count(w->files[i]); k++)
      if (strncmp(sdr_weight_file_at(w->files[i], k)->name, prefix, n) == 0)
        return 1;
  return 0;
}

/* A size read from a tensor's shape: dimension d of name, which must exist. */
static int dim_of(const sdr_weights *w, const char *name, int ndim, int d, int *out) {
  const sdr_st_tensor *t = file_tensor(w, name);
  if (!t || t->ndim != ndim || t->shape[d] <= 0 || t->shape[d] > (1 << 20))
    return sdr_fail("ip_adapter: %s \"image_proj.%s\" (%d dimensions)",
                    t ? "an unexpected shape of" : "no", name + strlen("image_proj."), ndim);
  *out = (int)t->shape[d];
  return 0;
}

/* Which projection, and its sizes, from the tensors as diffusers tells them apart. */
static int read_kind(sdr_ip_adapter *ad) {
  const sdr_weights *w = &ad->weights;
  if (!file_has_prefix(w, "image_proj.") || !file_has_prefix(w, "ip_adapter."))
    return sdr_fail("ip_adapter: Required keys are (`image_proj` and `ip_adapter`) missing "
                    "from the state dict.");
  int n4;
  if (file_tensor(w, "image_proj.proj.weight")) {
    ad->kind = SDR_IP_PLAIN;
    ad->num_tokens = 4;
    TRY(dim_of(w, "image_proj.proj.weight", 2, 1, &ad->embed_dim));
    TRY(dim_of(w, "image_proj.proj.weight", 2, 0, &n4));
    if (n4 % 4)
      return sdr_fail("ip_adapter: image_proj.proj.weight has %d rows, not 4 tokens' worth", n4);
    ad->cross_dim = n4 / 4;
  } else if (file_tensor(w, "image_proj.proj.3.weight")) {
    ad->kind = SDR_IP_FULL;
    ad->num_tokens = 257; /* 256 patches and the class token (the tokens it is given) */
    TRY(dim_of(w, "image_proj.proj.0.weight", 2, 0, &ad->embed_dim));
    TRY(dim_of(w, "image_proj.proj.3.weight", 1, 0, &ad->cross_dim));
  } else {
    ad->kind = SDR_IP_PLUS;
    int q;
    TRY(dim_of(w, "image_proj.latents", 3, 1, &ad->num_tokens));
    TRY(dim_of(w, "image_proj.latents", 3, 2, &ad->hidden));
    TRY(dim_of(w, "image_proj.proj_in.weight", 2, 1, &ad->embed_dim));
    TRY(dim_of(w, "image_proj.proj_out.weight", 2, 0, &ad->cross_dim));
    TRY(dim_of(w, "image_proj.layers.0.0.to_q.weight", 2, 0, &q));
    ad->heads = q / 64;
    if (q % 64 || ad->heads == 0)
      return sdr_fail("ip_adapter: the resampler's to_q has %d rows, not heads of 64", q);
  }
  return 0;
fail:
  return -1;
}

static int bind_projection(sdr_ip_adapter *ad) {
  sdr_weights *w = &ad->weights;
  const int64_t E = ad->embed_dim, C = ad->cross_dim;
  int rc = 0;
  rc |= sdr_weights_bind(w, &ad->norm_w,
                         ad->kind == SDR_IP_PLUS   ? "image_proj.norm_out.weight"
                         : ad->kind == SDR_IP_FULL ? "image_proj.proj.3.weight"
                                                   : "image_proj.norm.weight",
                         1, (int64_t[]){C});
  rc |= sdr_weights_bind(w, &ad->norm_b,
                         ad->kind == SDR_IP_PLUS   ? "image_proj.norm_out.bias"
                         : ad->kind == SDR_IP_FULL ? "image_proj.proj.3.bias"
                                                   : "image_proj.norm.bias",
                         1, (int64_t[]){C});
  if (ad->kind == SDR_IP_PLAIN) {
    rc |= sdr_weights_bind(w, &ad->proj_w, "image_proj.proj.weight", 2, (int64_t[]){4 * C, E});
    rc |= sdr_weights_bind(w, &ad->proj_b, "image_proj.proj.bias", 1, (int64_t[]){4 * C});
    return rc ? -1 : 0;
  }
  if (ad->kind == SDR_IP_FULL) {
    rc |= sdr_weights_bind(w, &ad->proj_w, "image_proj.proj.0.weight", 2, (int64_t[]){E, E});
    rc |= sdr_weights_bind(w, &ad->proj_b, "image_proj.proj.0.bias", 1, (int64_t[]){E});
    rc |= sdr_weights_bind(w, &ad->proj2_w, "image_proj.proj.2.weight", 2, (int64_t[]){C, E});
    rc |= sdr_weights_bind(w, &ad->proj2_b, "image_proj.proj.2.bias", 1, (int64_t[]){C});
    return rc ? -1 : 0;
  }
  const int64_t Hd = ad->hidden, inner = (int64_t)ad->heads * 64, Q = ad->num_tokens;
  rc |= sdr_weights_bind(w, &ad->latents, "image_proj.latents", 3, (int64_t[]){1, Q, Hd});
  rc |= sdr_weights_bind(w, &ad->proj_in_w, "image_proj.proj_in.weight", 2, (int64_t[]){Hd, E});
  rc |= sdr_weights_bind(w, &ad->proj_in_b, "image_proj.proj_in.bias", 1, (int64_t[]){Hd});
  rc |= sdr_weights_bind(w, &ad->proj_out_w, "image_proj.proj_out.weight", 2, (int64_t[]){C, Hd});
  rc |= sdr_weights_bind(w, &ad->proj_out_b, "image_proj.proj_out.bias", 1, (int64_t[]){C});
  for (int i = 0; i < SDR_IP_PLUS_DEPTH; i++) {
    sdr_ip_resampler_layer *l = &ad->layers[i];
    const char *p = "image_proj.layers";
    const int64_t hd[1] = {Hd};
    rc |= sdr_weights_bindf(w, &l->ln0_w, 1, hd, "%s.%d.0.norm1.weight", p, i);
    rc |= sdr_weights_bindf(w, &l->ln0_b, 1, hd, "%s.%d.0.norm1.bias", p, i);
    rc |= sdr_weights_bindf(w, &l->ln1_w, 1, hd, "%s.%d.0.norm2.weight", p, i);
    rc |= sdr_weights_bindf(w, &l->ln1_b, 1, hd, "%s.%d.0.norm2.bias", p, i);
    rc |= sdr_weights_bindf(w, &l->q_w, 2, (int64_t[]){inner, Hd}, "%s.%d.0.to_q.weight", p, i);
    rc |=
        sdr_weights_bindf(w, &l->kv_w, 2, (int64_t[]){2 * inner, Hd}, "%s.%d.0.to_kv.weight", p, i);
    rc |= sdr_weights_bindf(w, &l->out_w, 2, (int64_t[]){Hd, inner}, "%s.%d.0.to_out.weight", p, i);
    rc |= sdr_weights_bindf(w, &l->ff_ln_w, 1, hd, "%s.%d.1.0.weight", p, i);
    rc |= sdr_weights_bindf(w, &l->ff_ln_b, 1, hd, "%s.%d.1.0.bias", p, i);
    rc |= sdr_weights_bindf(w, &l->ff1_w, 2, (int64_t[]){4 * Hd, Hd}, "%s.%d.1.1.weight", p, i);
    rc |= sdr_weights_bindf(w, &l->ff2_w, 2, (int64_t[]){Hd, 4 * Hd}, "%s.%d.1.3.weight", p, i);
  }
  return rc ? -1 : 0;
}

/* to_k_ip / to_v_ip of each cross-attention, "ip_adapter.{1, 3, 5, ...}": diffusers counts
 * every attention processor and only the cross-attentions (the odd ones) have them. Any
 * others in the file are not read, as diffusers picks the ones it needs. */
static int bind_layers(sdr_ip_adapter *ad, sdr_unet *u) {
  sdr_attn_layer *cross[MAX_CROSS];
  const int n = sdr_unet_cross_attns(u, cross, MAX_CROSS);
  if (n < 0)
    return -1;
  if (n == 0)
    return sdr_fail("ip_adapter: the UNet has no cross-attention to add to");
  ad->nlayers = n;
  ad->k_ip = calloc((size_t)n, sizeof *ad->k_ip);
  ad->v_ip = calloc((size_t)n, sizeof *ad->v_ip);
  if (!ad->k_ip || !ad->v_ip)
    return sdr_fail("out of memory");
  int rc = 0;
  for (int i = 0; i < n; i++) {
    if (cross[i]->context_dim != ad->cross_dim)
      return sdr_fail("ip_adapter: its image tokens are %d wide; the UNet's cross-attention "
                      "takes %d (an IP-Adapter for another model?)",
                      ad->cross_dim, cross[i]->context_dim);
    const int64_t shape[2] = {(int64_t)cross[i]->heads * cross[i]->dim_head, ad->cross_dim};
    rc |= sdr_weights_bindf(&ad->weights, &ad->k_ip[i], 2, shape, "ip_adapter.%d.to_k_ip.weight",
                            2 * i + 1);
    rc |= sdr_weights_bindf(&ad->weights, &ad->v_ip[i], 2, shape, "ip_adapter.%d.to_v_ip.weight",
                            2 * i + 1);
  }
  sdr_weights_skip_prefix(&ad->weights, "ip_adapter.");
  return rc ? -1 : 0;
}

static int bind_all(sdr_ip_adapter *ad, sdr_unet *u) {
  ad->act = sdr_backend_act_dtype(ad->be, ad->weights.keep_dtype);
  if (read_kind(ad) != 0 || bind_projection(ad) != 0 || bind_layers(ad, u) != 0)
    return -1;
  return sdr_weights_finish(&ad->weights);
}

int sdr_ip_adapter_load(sdr_ip_adapter *ad, sdr_backend *be, const char *path, sdr_unet *u,
                        int keep_dtype) {
  memset(ad, 0, sizeof *ad);
  ad->be = be;
  if (sdr_weights_open(&ad->weights, be, "ip_adapter", &path, 1, keep_dtype) != 0)
    return -1;
  sdr_weights_owner(&ad->weights, ad, sizeof *ad);
  if (bind_all(ad, u) != 0) {
    sdr_fail_prefix("%s: ", path);
    sdr_ip_adapter_free(ad);
    return -1;
  }
  return 0;
}

int sdr_ip_adapter_copy_to(sdr_ip_adapter *dst, const sdr_ip_adapter *src, sdr_backend *be,
                           sdr_unet *u, int keep_dtype) {
  memset(dst, 0, sizeof *dst);
  dst->be = be;
  if (sdr_weights_reopen(&dst->weights, &src->weights, be, keep_dtype) != 0)
    return -1;
  sdr_weights_owner(&dst->weights, dst, sizeof *dst);
  if (bind_all(dst, u) != 0) {
    sdr_ip_adapter_free(dst);
    return -1;
  }
  return 0;
}

void sdr_ip_adapter_free(sdr_ip_adapter *ad) {
  free(ad->k_ip);
  free(ad->v_ip);
  sdr_weights_close(&ad->weights);
  memset(ad, 0, sizeof *ad);
}

int sdr_ip_adapter_wants_hidden(const sdr_ip_adapter *ad) { return ad->kind != SDR_IP_PLAIN; }

int64_t sdr_ip_adapter_tokens(const sdr_ip_adapter *ad, int64_t in_tokens) {
  return ad->kind == SDR_IP_FULL ? in_tokens : ad->num_tokens;
}

/* ---- the UNet's cross-attentions ---------------------------------------------- */

void sdr_ip_adapters_detach(sdr_unet *u) {
  sdr_attn_layer *cross[MAX_CROSS];
  const int n = sdr_unet_cross_attns(u, cross, MAX_CROSS);
  for (int i = 0; i < n; i++)
    cross[i]->ip = NULL;
  free(u->ip_layers);
  u->ip_layers = NULL;
}

int sdr_ip_adapters_attach(sdr_unet *u, sdr_ip_adapter *const *ads, int n, const float *scale) {
  sdr_attn_layer *cross[MAX_CROSS];
  const int ncross = sdr_unet_cross_attns(u, cross, MAX_CROSS);
  if (ncross < 0)
    return -1;
  if (n < 1 || n > SDR_IP_MAX)
    return sdr_fail("ip_adapter: %d adapters (1 to %d at once)", n, SDR_IP_MAX);
  for (int k = 0; k < n; k++)
    if (ads[k]->nlayers != ncross || ads[k]->be != u->be)
      return sdr_fail("ip_adapter: adapter %d was bound for another UNet", k + 1);
  sdr_attn_ip *ip = calloc((size_t)ncross, sizeof *ip);
  if (!ip)
    return sdr_fail("out of memory");
  sdr_ip_adapters_detach(u);
  for (int i = 0; i < ncross; i++) {
    ip[i].n = n;
    for (int k = 0; k < n; k++) {
      ip[i].k_w[k] = &ads[k]->k_ip[i];
      ip[i].v_w[k] = &ads[k]->v_ip[i];
      ip[i].scale[k] = scale[k];
    }
    cross[i]->ip = &ip[i];
  }
  u->ip_layers = ip;
  return 0;
}

void sdr_ip_adapters_set_scale(sdr_unet *u, const float *scale, int n) {
  sdr_attn_layer *cross[MAX_CROSS];
  const int ncross = sdr_unet_cross_attns(u, cross, MAX_CROSS);
  for (int i = 0; i < ncross; i++)
    for (int k = 0; cross[i]->ip && k < n && k < SDR_IP_MAX; k++)
      u->ip_layers[i].scale[k] = scale[k];
}
