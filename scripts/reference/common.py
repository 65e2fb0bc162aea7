"""What the reference scripts share: the one change they make to diffusers before
running it, and the sketch-like picture img2img starts from.

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
