/* engine/lora_sgm.c — Kohya's SDXL LoRA names, which follow the original (SGM) UNet's
 * numbered blocks, as diffusers 0.27 maps them for an SDXL pipeline
 * (loaders/lora_conversion_utils.py _maybe_map_sgm_blocks_to_diffusers, then the resnet
 * and sampler renames of _convert_kohya_lora_to_diffusers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/lora.h"

#define MAX_TOKENS 64

/* Python's // and % (block ids below 1 give negative quotients there). */
static long floor_div(long a, long b) {
  long q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static long floor_mod(long a, long b) { return a - floor_div(a, b) * b; }

static int to_int(const char *s, long *out) {
  char *end;
  if (!*s)
    return 0;
  *out = strtol(s, &end, 10);
  return *end == 0;
}

/* s with every `from` replaced by `to`, in place (cap bytes). */
static void replace_all(char *s, size_t cap, const char *from, const char *to) {
  char buf[1024];
  size_t fl = strlen(from), w = 0;
  for (const char *r = s; *r && w + 1 < sizeof buf;) {
    if (strncmp(r, from, fl) == 0) {
      w += (size_t)snprintf(buf + w, sizeof buf - w, "%s", to);
      r += fl;
    } else {
      buf[w++] = *r++;
    }
  }
  buf[w < sizeof buf ? w : sizeof buf - 1] = 0;
  snprintf(s, cap, "%s", buf);
}

/* tokens from..n joined with '_' after out's text */
static void join_from(char *out, size_t cap, char *const *tok, int from, int n) {
  for (int i = from; i < n; i++) {
    size_t k = strlen(out);
    snprintf(out + k, cap - k, "_%s", tok[i]);
  }
}

int sdr_lora_sgm_name(const char *flat, size_t len, int layers_per_block, char *out, size_t cap) {
  static const char *const inner_map[] = {"resnets", "attentions", "upsamplers"};
  char name[1024], *tok[MAX_TOKENS];
  if (len >= sizeof name)
    return sdr_fail("the LoRA's layer name lora_unet_%.40s... is too long", flat);
  memcpy(name, flat, len);
  name[len] = 0;
  const int op = strstr(name, "op") != NULL; /* diffusers asks of the whole key */
  int n = 0;
  for (char *s = name, *save = NULL; n < MAX_TOKENS && (s = strtok_r(s, "_", &save)); s = NULL)
    tok[n++] = s;
  long id, inner = 0;
  const int input = strncmp(flat, "input_blocks_", 13) == 0,
            middle = strncmp(flat, "middle_block_", 13) == 0,
            output = strncmp(flat, "output_blocks_", 14) == 0;
  if (n < 3 || !to_int(tok[2], &id) || !(input || middle || output) ||
      (!middle && (n < 4 || !to_int(tok[3], &inner))))
    return sdr_fail("Checkpoint not supported because layer lora_unet_%.*s not supported.",
                    (int)len, flat);
  const long per = layers_per_block + 1;
  char head[64];
  snprintf(head, sizeof head, "%s_%s", tok[0], tok[1]);
  if (middle) {
    if (id < 0 || id > 2)
      return sdr_fail("Invalid middle block id %ld.", id);
    snprintf(out, cap, "%s_%s_%d", head, id == 1 ? "attentions" : "resnets", id == 2);
    join_from(out, cap, tok, 3, n);
  } else {
    const long block = input ? floor_div(id - 1, per) : id / per,
               layer = input ? floor_mod(id - 1, per) : id % per;
    if (!(input && op) && (inner < 0 || inner > 2))
      return sdr_fail("the LoRA's layer lora_unet_%.*s: a block's part is 0, 1 or 2, not %ld",
                      (int)len, flat, inner);
    const char *part = input && op ? "downsamplers" : inner_map[inner];
    const long within = (input && op) || (output && inner >= 2) ? 0 : layer;
    snprintf(out, cap, "%s_%ld_%s_%ld", head, block, part, within);
    join_from(out, cap, tok, 4, n);
  }
  /* the conversion's renames, on the flat name */
  replace_all(out, cap, "input_blocks", "down_blocks");
  replace_all(out, cap, "middle_block", "mid_block");
  replace_all(out, cap, "output_blocks", "up_blocks");
  replace_all(out, cap, "emb_layers_1", "time_emb_proj");
  replace_all(out, cap, "in_layers_2", "conv1");
  replace_all(out, cap, "out_layers_3", "conv2");
  replace_all(out, cap, "skip_connection", "conv_shortcut");
  if (strstr(out, "downsamplers") || strstr(out, "upsamplers"))
    replace_all(out, cap, "op", "conv");
  return 0;
}
