"""What the reference scripts share: the one change they make to diffusers before
running it, the sketch-like picture img2img starts from, and the original (SGM) UNet's
names of diffusers' UNet weights.

Each script runs as `python scripts/reference/<script>.py`, so this folder is on
sys.path and `import common` finds this file.
"""
import numpy as np
import torch
from diffusers.models.attention_processor import Attention
from PIL import Image


def _attention_scores(self, query, key, attention_mask=None):
    """Attention.get_attention_scores with bmm: Debian's torch 1.13 baddbmm(beta=0)
    can read uninitialised memory for small matrices and turn a result into NaN."""
    dtype = query.dtype
    if self.upcast_attention:
        query, key = query.float(), key.float()
    scores = torch.bmm(query, key.transpose(-1, -2)) * self.scale
    if attention_mask is not None:
        scores = scores + attention_mask
    if self.upcast_softmax:
        scores = scores.float()
    return scores.softmax(dim=-1).to(dtype)


def patch_attention():
    """Every script's diffusers computes attention scores as _attention_scores does."""
    Attention.get_attention_scores = _attention_scores


def sketch(width, height, phase=0.0):
    """A deterministic sketch-like picture: gradients and a ring (phase shifts both)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = y / max(height - 1, 1), x / max(width - 1, 1)
    ring = (np.abs(np.hypot(x - 0.5 - phase, y - 0.4) - 0.3) < 0.06).astype(np.float32)
    rgb = np.stack([x, y * (1 - phase), 1 - x * y], -1) * 200 + ring[..., None] * 55
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")


_SGM_RESNET = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("norm2.", "out_layers.0."),
               ("conv2.", "out_layers.3."), ("time_emb_proj.", "emb_layers.1."),
               ("conv_shortcut.", "skip_connection.")]


def _sgm_resnet(rest):
    for a, b in _SGM_RESNET:
        if rest.startswith(a):
            return b + rest[len(a):]
    raise KeyError(rest)


def sgm_unet_name(key, config):
    """The original UNet's (Stability AI's) name of a diffusers UNet weight key
    ("down_blocks.1.attentions.0.proj_in.weight" -> "input_blocks.4.1.proj_in.weight"): the
    inverse of convert_ldm_unet_checkpoint's names, for the UNet of `config`."""
    per = config.layers_per_block + 1
    fixed = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
             "add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2.",
             "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2."}
    for a, b in fixed.items():
        if key.startswith(a):
            return b + key[len(a):]
    p = key.split(".")
    if p[0] == "down_blocks":
        b, kind = int(p[1]), p[2]
        if kind == "downsamplers":
            return "input_blocks.%d.0.op.%s" % ((b + 1) * per, ".".join(p[5:]))
        i, rest = 1 + b * per + int(p[3]), ".".join(p[4:])
        return ("input_blocks.%d.0.%s" % (i, _sgm_resnet(rest)) if kind == "resnets"
                else "input_blocks.%d.1.%s" % (i, rest))
    if p[0] == "mid_block":
        rest = ".".join(p[3:])
        if p[1] == "attentions":
            return "middle_block.1." + rest
        return "middle_block.%d.%s" % (2 * int(p[2]), _sgm_resnet(rest))
    if p[0] == "up_blocks":
        b, kind = int(p[1]), p[2]
        if kind == "upsamplers":  # after the block's resnet (and attention, where it has one)
            attn = "CrossAttn" in config.up_block_types[b]
            return "output_blocks.%d.%d.conv.%s" % (b * per + per - 1, 2 if attn else 1,
                                                    ".".join(p[5:]))
        i, rest = b * per + int(p[3]), ".".join(p[4:])
        return ("output_blocks.%d.0.%s" % (i, _sgm_resnet(rest)) if kind == "resnets"
                else "output_blocks.%d.1.%s" % (i, rest))
    raise KeyError(key)
