"""Reference cases for AutoencoderTiny (TAESD) as diffusers 0.27.2 computes it
(diffusers/models/autoencoders/autoencoder_tiny.py, vae.py's EncoderTiny and
DecoderTiny, unet_2d_blocks.py's AutoencoderTinyBlock).

    .venv-torch/bin/python scripts/reference/make_tiny_vae_cases.py

Writes two AutoencoderTiny models as save_pretrained writes them:
  tests/models/tiny-taesd     three stages (factor 4, as tiny-sd-a's VAE), 16 channels
  tests/models/tiny-taesd-x8  four stages (factor 8, as TAESD's; its tiling assumes 8)
and tests/reference/tiny_vae/ (*.npy and manifest.json saying what each file is).

Cases: encode and decode of tiny-taesd; tiny-taesd-x8's decode and encode with
enable_tiling() (512-pixel tiles every 448, so a 464x464 picture is 2x2 tiles;
the script stops if tiling changed nothing); and whole runs of tiny-sd-a with
the tiny VAE put in its place, as the docs do (pipe.vae = AutoencoderTiny...):
txt2img, and img2img, where retrieve_latents takes .latents and draws no noise
from the generator. Everything is seeded, so a rerun writes the same files.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

import diffusers
from diffusers import AutoencoderTiny, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SEED = 31

MODELS = {
    "tiny-taesd": dict(encoder_block_out_channels=(16, 16, 16), decoder_block_out_channels=(16, 16, 16),
                       num_encoder_blocks=(1, 2, 2), num_decoder_blocks=(2, 2, 1)),
    "tiny-taesd-x8": dict(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                          num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1)),
}

# Whole runs of tiny-sd-a with tiny-taesd: (name, kind, arguments, seed).
RUNS = [
    ("t2i", "txt2img", dict(prompt="a red cube", height=32, width=48, num_images_per_prompt=2,
                            num_inference_steps=3), 5),
    ("i2i", "img2img", dict(prompt="a sketch", strength=0.8, num_inference_steps=5), 6),
]


def perturb(model, seed):
    """Every parameter moved off its initial value (as make_vae_tiling_cases.py does)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g)
            if p.dim() <= 1:
                p.copy_(0.1 * noise)
            else:
                p.copy_(noise / np.sqrt(p[0].numel()))


class Recorder:
    def __init__(self):
        self.dir = os.path.join(ROOT, "tests", "reference", "tiny_vae")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.manifest = {"generator": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                       "numpy": np.__version__}, "files": {}}

    def save(self, key, array, what, **meta):
        a = array.detach().cpu().numpy() if torch.is_tensor(array) else np.asarray(array)
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            sys.exit(f"{key}: the reference holds NaN or infinity")
        np.save(os.path.join(self.dir, key + ".npy"), a.astype(np.float32))
        self.manifest["files"][key] = dict(what=what, shape=list(a.shape), **meta)

    def close(self):
        with open(os.path.join(self.dir, "manifest.json"), "w") as f:
            json.dump(self.manifest, f, indent=1)


def make_model(name, seed):
    out = os.path.join(ROOT, "tests", "models", name)
    torch.manual_seed(seed)
    vae = AutoencoderTiny(**MODELS[name])
    perturb(vae, seed)
    shutil.rmtree(out, ignore_errors=True)
    vae.save_pretrained(out, safe_serialization=True)
    return AutoencoderTiny.from_pretrained(out).eval()


def model_cases(rec):
    vae = make_model("tiny-taesd", SEED)
    g = torch.Generator().manual_seed(SEED + 1)
    x = torch.rand((2, 3, 32, 48), generator=g) * 2 - 1
    z = torch.randn((2, 4, 8, 12), generator=g) * 2
    with torch.no_grad():
        rec.save("encode_in", x, "an image in [-1, 1] given to tiny-taesd's encode (B, 3, H, W)")
        rec.save("encode_out", vae.encode(x).latents, "vae.encode(x).latents")
        rec.save("decode_in", z, "latents given to tiny-taesd's decode (B, 4, h, w)")
        rec.save("decode_out", vae.decode(z).sample, "vae.decode(z).sample")
        rec.save("scale_out", vae.scale_latents(vae.encode(x).latents),
                 "vae.scale_latents(vae.encode(encode_in).latents)")
        rec.save("forward_out", vae(x).sample, "vae(encode_in).sample: the 8-bit round trip")

    x8 = make_model("tiny-taesd-x8", SEED + 2)
    z = torch.randn((1, 4, 58, 58), generator=g) * 2
    with torch.no_grad():
        plain = x8.decode(z).sample
        x8.enable_tiling()
        tiled = x8.decode(z).sample
        diff = (tiled - plain).abs().max().item()
        if diff < 1e-3:
            sys.exit(f"tiled decode: tiling changed nothing ({diff})")
        rec.save("tiled_decode_in", z, "latents given to tiny-taesd-x8's decode (58x58: 2x2 tiles)")
        rec.save("tiled_decode_out", tiled, "vae.enable_tiling(); vae.decode(z).sample",
                 untiled_max_diff=diff)
        # the tiled decode's picture is the tiled encode's input (no second large file)
        etiled = x8.encode(tiled).latents
        x8.disable_tiling()
        eplain = x8.encode(tiled).latents
        diff = (etiled - eplain).abs().max().item()
        if diff < 1e-4:
            sys.exit(f"tiled encode: tiling changed nothing ({diff})")
        rec.save("tiled_encode_out", etiled,
                 "vae.enable_tiling(); vae.encode(tiled_decode_out).latents", untiled_max_diff=diff)


def pipeline_runs(rec):
    path = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
    tiny = AutoencoderTiny.from_pretrained(os.path.join(ROOT, "tests", "models", "tiny-taesd"))
    runs = []
    for name, kind, args, seed in RUNS:
        cls = StableDiffusionPipeline if kind == "txt2img" else StableDiffusionImg2ImgPipeline
        pipe = cls.from_pretrained(path, torch_dtype=torch.float32, safety_checker=None,
                                   requires_safety_checker=False)
        pipe.vae = tiny  # the docs' line; vae_scale_factor stays the old VAE's (both 4 here)
        pipe.set_progress_bar_config(disable=True)
        call = dict(args, output_type="np", generator=torch.Generator().manual_seed(seed))
        if kind == "img2img":
            image = common.sketch(48, 32)
            image.save(os.path.join(rec.dir, "init_image.png"))
            call["image"] = image
        with torch.no_grad():
            images = pipe(**call).images
        rec.save("run_" + name, images, f"tiny-sd-a {kind} with pipe.vae = tiny-taesd, "
                 "output_type='np' (B, H, W, 3)")
        runs.append(dict(name=name, kind=kind, args=args, seed=seed, seed_via="generator"))
    rec.manifest["runs"] = runs


def main():
    torch.set_num_threads(2)
    rec = Recorder()
    model_cases(rec)
    pipeline_runs(rec)
    rec.close()
    print(f"tiny_vae: {rec.dir}")


if __name__ == "__main__":
    main()
