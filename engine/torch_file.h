/* engine/torch_file.h — a state dict from what torch.save writes (.bin, .ckpt, .pt).
 *
 * torch.load without running anything: the container (the zip format of
 * torch >= 1.6, or the legacy stream of pickles before it) is read in place,
 * the pickle goes through the restricted unpickler (engine/pickle.h), and the
 * result must be a dict of tensors. A dict that holds its tensors under
 * "state_dict" (a Lightning checkpoint: {"state_dict": ..., "global_step":
 * ...}) is unwrapped as diffusers' load_single_file_model_checkpoint does;
 * the tensors of a dict inside it are named "outer.inner" (an IP-Adapter's
 * {"image_proj": {...}, "ip_adapter": {...}}, as its .safetensors form names
 * them); values that are not tensors are left out. Each tensor must be contiguous
 * and lie inside its storage; it then points into the mapped file, like an
 * sdr_safetensors tensor, and nothing is copied.
 *
 * Errors name the file and, where there is one, the tensor. A file that asks
 * for any Python global beyond torch's tensor and storage types is refused
 * with that global's name before anything else happens.
 */
#ifndef SDR_ENGINE_TORCH_FILE_H
#define SDR_ENGINE_TORCH_FILE_H

#include <stddef.h>

#include "engine/safetensors.h" // sdr_st_tensor

typedef struct sdr_torch_file sdr_torch_file;

/* Whether the bytes begin like a torch.save file: a zip archive, or the legacy
 * format's magic number pickled with protocol 2. */
int sdr_torch_file_sniff(const void *data, size_t len);

sdr_torch_file *sdr_torch_file_open(const char *path);
/* The same on a buffer in memory (not copied; must outlive the result). */
sdr_torch_file *sdr_torch_file_from_memory(const void *data, size_t len, const char *name);
void sdr_torch_file_close(sdr_torch_file *f);

/* The tensors in the dict's order (a key given twice: its last value, at its first place). */
size_t sdr_torch_file_count(const sdr_torch_file *f);
const sdr_st_tensor *sdr_torch_file_at(const sdr_torch_file *f, size_t i);
const sdr_st_tensor *sdr_torch_file_find(const sdr_torch_file *f, const char *name);
/* The path given to open (or the name given to from_memory). */
const char *sdr_torch_file_name(const sdr_torch_file *f);

/* How many "state_dict" levels were unwrapped (0 for a plain state dict), and
 * how many values were left out for not being tensors. */
int sdr_torch_file_unwrapped(const sdr_torch_file *f);
size_t sdr_torch_file_skipped(const sdr_torch_file *f);

#endif
