/* engine/autoencoder_tiny.c — AutoencoderTiny: EncoderTiny, DecoderTiny and their
 * AutoencoderTinyBlocks, as diffusers 0.27.2 lays them out in nn.Sequential. */
#include "engine/autoencoder_tiny.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail

#define TRY(x)                                                                                     \
  do {                                                                                             \
    if ((x) != 0)                                                                                  \
      goto fail;                                                                                   \
  } while (0)

/* ---- config ---------------------------------------------------------------- */

/* An int tuple of the config, or dflt (n entries) where the key is missing or null. */
static int tuple(const sdr_json *j, const char *path, const char *key, const int *dflt, int n_dflt,
                 int *out, int *n) {
  if (!sdr_json_has(j, key)) {
    memcpy(out, dflt, (size_t)n_dflt * sizeof *out);
    *n = n_dflt;
    return 0;
  }
  long long v[SDR_TINY_MAX_STAGES];
  if (sdr_json_int_array(j, key, v, SDR_TINY_MAX_STAGES, n, 0) != 0)
    return -1;
  for (int i = 0; i < *n; i++) {
    if (v[i] < (strncmp(key, "num_", 4) == 0 ? 0 : 1) || v[i] > 65536)
      return sdr_fail("%s: %s[%d] = %lld is out of range", path, key, i, v[i]);
    out[i] = (int)v[i];
  }
  if (*n < 1)
    return sdr_fail("%s: %s is empty", path, key);
  return 0;
}

int sdr_tiny_config_read(sdr_tiny_config *c, const sdr_json *j, const char *path) {
  memset(c, 0, sizeof *c);
  static const int channels[] = {64, 64, 64, 64}, enc[] = {1, 3, 3, 3}, dec[] = {3, 3, 3, 1};
  int nec, neb, ndc, ndb;
  if (tuple(j, path, "encoder_block_out_channels", channels, 4, c->encoder_channels, &nec) != 0 ||
      tuple(j, path, "num_encoder_blocks", enc, 4, c->encoder_blocks, &neb) != 0 ||
      tuple(j, path, "decoder_block_out_channels", channels, 4, c->decoder_channels, &ndc) != 0 ||
      tuple(j, path, "num_decoder_blocks", dec, 4, c->decoder_blocks, &ndb) != 0)
    return -1;
  /* AutoencoderTiny.__init__'s own checks, in its words */
  if (nec != neb)
    return sdr_fail("%s: `encoder_block_out_channels` should have the same length as "
                    "`num_encoder_blocks`.",
                    path);
  if (ndc != ndb)
    return sdr_fail("%s: `decoder_block_out_channels` should have the same length as "
                    "`num_decoder_blocks`.",
                    path);
  /* The pipelines take the image/latent factor from block_out_channels (the decoder's); an
   * encoder of another depth would give latents of another size. */
  if (nec != ndc)
    return sdr_fail("%s: %d encoder stages but %d decoder stages (they must be as many)", path, nec,
                    ndc);
  c->nstages = nec;
  const char *act = sdr_json_string_or(j, "act_fn", "relu");
  if (strcmp(act, "relu") != 0)
    return sdr_fail("%s: act_fn \"%s\" is not supported (AutoencoderTiny's is relu)", path, act);
  const char *up = sdr_json_string_or(j, "upsample_fn", "nearest");
  if (strcmp(up, "nearest") != 0)
    return sdr_fail("%s: upsample_fn \"%s\" is not supported (nearest is)", path, up);
  long long factor;
  if (sdr_json_int_opt(j, "upsampling_scaling_factor", 2, &factor) != 0)
    return -1;
  if (factor != 2)
    return sdr_fail("%s: upsampling_scaling_factor %lld is not supported (2 is)", path, factor);
  double mag, shift;
  if (sdr_json_number_opt(j, "latent_magnitude", 3.0, &mag) != 0 ||
      sdr_json_number_opt(j, "latent_shift", 0.5, &shift) != 0)
    return -1;
  c->latent_magnitude = (float)mag;
  c->latent_shift = (float)shift;
  return 0;
}

/* ---- layers ---------------------------------------------------------------- */

static sdr_tiny_layer *push(sdr_tiny_coder *k, int cap, sdr_tiny_op op, int in, int out,
                            int stride) {
  if (k->nlayers >= cap) {
    sdr_fail("AutoencoderTiny: too many layers");
    return NULL;
  }
  sdr_tiny_layer *l = &k->layers[k->nlayers++];
  memset(l, 0, sizeof *l);
  l->op = op, l->in = in, l->out = out, l->stride = stride;
  return l;
}

/* EncoderTiny.__init__'s and DecoderTiny.__init__'s sequences; has_bias in each conv's b.data
 * is decided at binding (bias=False convolutions get none). */
static int build(sdr_tiny_coder *k, const sdr_tiny_config *c, int encoder, int in_channels,
                 int out_channels, int latent_channels) {
  int cap = 4;
  for (int i = 0; i < c->nstages; i++)
    cap += 3 + (encoder ? c->encoder_blocks[i] : c->decoder_blocks[i]);
  if (!(k->layers = calloc((size_t)cap, sizeof *k->layers)))
    return sdr_fail("out of memory");
  k->nlayers = 0;
  const int n = c->nstages;
  if (encoder) {
    for (int i = 0; i < n; i++) {
      const int ch = c->encoder_channels[i];
      if (!push(k, cap, SDR_TINY_CONV, i == 0 ? in_channels : ch, ch, i == 0 ? 1 : 2))
        return -1;
      for (int b = 0; b < c->encoder_blocks[i]; b++)
        if (!push(k, cap, SDR_TINY_BLOCK, ch, ch, 1))
          return -1;
    }
    return push(k, cap, SDR_TINY_CONV, c->encoder_channels[n - 1], latent_channels, 1) ? 0 : -1;
  }
  if (!push(k, cap, SDR_TINY_CONV, latent_channels, c->decoder_channels[0], 1) ||
      !push(k, cap, SDR_TINY_RELU, 0, 0, 0))
    return -1;
  for (int i = 0; i < n; i++) {
    const int ch = c->decoder_channels[i], last = i == n - 1;
    for (int b = 0; b < c->decoder_blocks[i]; b++)
      if (!push(k, cap, SDR_TINY_BLOCK, ch, ch, 1))
        return -1;
    if (!last && !push(k, cap, SDR_TINY_UPSAMPLE, 0, 0, 0))
      return -1;
    if (!push(k, cap, SDR_TINY_CONV, ch, last ? out_channels : ch, 1))
      return -1;
  }
  return 0;
}

static int bind_coder(sdr_tiny_coder *k, sdr_weights *w, const char *name, int encoder) {
  int rc = 0;
  for (int i = 0; i < k->nlayers; i++) {
    sdr_tiny_layer *l = &k->layers[i];
    const int64_t c33[4] = {l->out, l->in, 3, 3}, o[1] = {l->out};
    if (l->op == SDR_TINY_CONV) {
      rc |= sdr_weights_bindf(w, &l->w, 4, c33, "%s.layers.%d.weight", name, i);
      /* bias=False: the encoder's strided convolutions, the decoder's within its stages
       * (all but its first and last) */
      const int bias = encoder ? l->stride == 1 : i == 0 || i == k->nlayers - 1;
      if (bias)
        rc |= sdr_weights_bindf(w, &l->b, 1, o, "%s.layers.%d.bias", name, i);
    } else if (l->op == SDR_TINY_BLOCK) {
      for (int j = 0; j < 3; j++) {
        const int64_t s[4] = {l->out, j == 0 ? l->in : l->out, 3, 3};
        rc |= sdr_weights_bindf(w, &l->conv_w[j], 4, s, "%s.layers.%d.conv.%d.weight", name, i,
                                2 * j);
        rc |=
            sdr_weights_bindf(w, &l->conv_b[j], 1, o, "%s.layers.%d.conv.%d.bias", name, i, 2 * j);
      }
      if (l->in != l->out)
        rc |= sdr_weights_bindf(w, &l->skip_w, 4, (int64_t[]){l->out, l->in, 1, 1},
                                "%s.layers.%d.skip.weight", name, i);
    }
  }
  return rc ? -1 : 0;
}

int sdr_autoencoder_tiny_bind(sdr_autoencoder_tiny *t, sdr_weights *w, const sdr_tiny_config *c,
                              int in_channels, int out_channels, int latent_channels) {
  memset(t, 0, sizeof *t);
  if (build(&t->encoder, c, 1, in_channels, out_channels, latent_channels) != 0 ||
      build(&t->decoder, c, 0, in_channels, out_channels, latent_channels) != 0)
    return -1;
  return bind_coder(&t->encoder, w, "encoder", 1) | bind_coder(&t->decoder, w, "decoder", 0);
}

void sdr_autoencoder_tiny_free(sdr_autoencoder_tiny *t) {
  free(t->encoder.layers);
  free(t->decoder.layers);
  memset(t, 0, sizeof *t);
}

/* ---- forward --------------------------------------------------------------- */

static const sdr_tensor *bias_of(const sdr_tensor *b) { return b->data ? b : NULL; }

/* AutoencoderTinyBlock: relu(conv(relu(conv(relu(conv(x))))) + skip(x)) into out. */
static int block_forward(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                         const sdr_tiny_layer *l) {
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor t, u;
  TRY(sdr_arena_tensor(a, &t, x->dtype, 4, out->shape));
  TRY(sdr_arena_tensor(a, &u, x->dtype, 4, out->shape));
  TRY(sdr_conv2d(be, &t, x, &l->conv_w[0], &l->conv_b[0], 1, 1));
  TRY(sdr_unary(be, &t, &t, SDR_UNARY_RELU));
  TRY(sdr_conv2d(be, &u, &t, &l->conv_w[1], &l->conv_b[1], 1, 1));
  TRY(sdr_unary(be, &u, &u, SDR_UNARY_RELU));
  TRY(sdr_conv2d(be, out, &u, &l->conv_w[2], &l->conv_b[2], 1, 1));
  if (l->skip_w.data) {
    TRY(sdr_conv2d(be, &t, x, &l->skip_w, NULL, 1, 0));
    TRY(sdr_binary(be, out, out, &t, SDR_BINARY_ADD));
  } else {
    TRY(sdr_binary(be, out, out, x, SDR_BINARY_ADD));
  }
  TRY(sdr_unary(be, out, out, SDR_UNARY_RELU)); /* fuse */
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

/* The shape after layer l of an input of shape s. */
static void layer_shape(const sdr_tiny_layer *l, int64_t s[4]) {
  if (l->op == SDR_TINY_CONV) {
    s[1] = l->out;
    if (l->stride == 2)
      s[2] = (s[2] - 1) / 2 + 1, s[3] = (s[3] - 1) / 2 + 1;
  } else if (l->op == SDR_TINY_UPSAMPLE) {
    s[2] *= 2, s[3] *= 2;
  }
}

/* x (already in act) through the coder's layers into out (any dtype, the last layer's shape). */
static int run(const sdr_tiny_coder *k, sdr_backend *be, sdr_arena *a, sdr_dtype act,
               sdr_tensor *out, const sdr_tensor *x) {
  int64_t s[4], most = 1;
  memcpy(s, x->shape, sizeof s);
  for (int i = 0; i < k->nlayers; i++) {
    layer_shape(&k->layers[i], s);
    const int64_t n = s[0] * s[1] * s[2] * s[3];
    most = n > most ? n : most;
  }
  if (memcmp(s, out->shape, sizeof s) != 0)
    return sdr_fail("AutoencoderTiny: the output is (%lld, %lld, %lld, %lld), not the layers' "
                    "(%lld, %lld, %lld, %lld)",
                    (long long)out->shape[0], (long long)out->shape[1], (long long)out->shape[2],
                    (long long)out->shape[3], (long long)s[0], (long long)s[1], (long long)s[2],
                    (long long)s[3]);
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_pingpong pp;
  sdr_tensor h = *x, next;
  TRY(sdr_pingpong_init(a, &pp, act, most));
  memcpy(s, x->shape, sizeof s);
  for (int i = 0; i < k->nlayers; i++) {
    const sdr_tiny_layer *l = &k->layers[i];
    layer_shape(l, s);
    if (l->op == SDR_TINY_RELU) { /* in place: h is a buffer of ours by now */
      TRY(sdr_unary(be, &h, &h, SDR_UNARY_RELU));
      continue;
    }
    const int last = i == k->nlayers - 1 && out->dtype == act;
    if (last)
      next = *out;
    else
      TRY(sdr_pingpong_take(&pp, &next, s));
    if (l->op == SDR_TINY_CONV)
      TRY(sdr_conv2d(be, &next, &h, &l->w, bias_of(&l->b), l->stride, 1));
    else if (l->op == SDR_TINY_BLOCK)
      TRY(block_forward(be, a, &next, &h, l));
    else
      TRY(sdr_upsample_nearest2x(be, &next, &h));
    h = next;
  }
  if (h.data != out->data)
    TRY(sdr_cast(be, out, &h));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}

static int check_input(const sdr_tensor *x, int64_t channels, const char *what, const char *name) {
  if (x->ndim != 4 || x->shape[1] != channels)
    return sdr_fail("%s: %s must be (batch, %lld, height, width)", what, name, (long long)channels);
  return 0;
}

/* x * alpha + beta into a new arena tensor in act (x cast first where it is another dtype). */
static int affine_as(sdr_backend *be, sdr_arena *a, sdr_tensor *out, const sdr_tensor *x,
                     sdr_dtype act, float alpha, float beta) {
  if (sdr_arena_tensor(a, out, act, 4, x->shape) != 0)
    return -1;
  if (x->dtype == act)
    return sdr_affine(be, out, x, alpha, beta);
  return sdr_cast(be, out, x) == 0 ? sdr_affine(be, out, out, alpha, beta) : -1;
}

int sdr_autoencoder_tiny_encode(const sdr_autoencoder_tiny *t, sdr_backend *be, sdr_arena *a,
                                sdr_dtype act, sdr_tensor *latents, const sdr_tensor *x) {
  if (check_input(x, t->encoder.layers[0].in, "vae.encode", "the image") != 0)
    return -1;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor x01;
  /* x.add(1).div(2): TAESD works on [0, 1] pictures */
  int rc = affine_as(be, a, &x01, x, act, 0.5f, 0.5f);
  if (rc == 0)
    rc = run(&t->encoder, be, a, act, latents, &x01);
  sdr_arena_release(a, mark);
  return rc;
}

int sdr_autoencoder_tiny_decode(const sdr_autoencoder_tiny *t, sdr_backend *be, sdr_arena *a,
                                sdr_dtype act, sdr_tensor *image, const sdr_tensor *z) {
  if (check_input(z, t->decoder.layers[0].in, "vae.decode", "latents") != 0)
    return -1;
  sdr_arena_mark mark = sdr_arena_get_mark(a);
  sdr_tensor zc;
  /* torch.tanh(x / 3) * 3: the latents softly clamped to (-3, 3) */
  TRY(affine_as(be, a, &zc, z, act, 1.0f / 3.0f, 0.0f));
  TRY(sdr_unary(be, &zc, &zc, SDR_UNARY_TANH));
  TRY(sdr_affine(be, &zc, &zc, 3.0f, 0.0f));
  TRY(run(&t->decoder, be, a, act, image, &zc));
  /* x.mul(2).sub(1): back to diffusers' [-1, 1] */
  TRY(sdr_affine(be, image, image, 2.0f, -1.0f));
  sdr_arena_release(a, mark);
  return 0;
fail:
  sdr_arena_release(a, mark);
  return -1;
}
