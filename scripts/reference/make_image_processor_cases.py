"""What diffusers' VaeImageProcessor (0.27.2, with Pillow 13) makes of pictures and tensors,
for tests/lua/test_image_processor.lua: preprocess of RGB, RGBA and L pictures of sizes
that are not multiples of the factor, of a list resized to a given height and width, with
do_convert_rgb, do_convert_grayscale and do_normalize=False, of tensors in [0, 1], in
[-1, 1] and with four channels (latents); postprocess to "pil", "np" and "pt", with
do_denormalize per image, and of one channel.

    .venv-torch/bin/python scripts/reference/make_image_processor_cases.py

Writes tests/reference/image_processor/: the input pictures (PNG), inputs and outputs
(.npy) and manifest.json. Seeded, so a rerun writes the same files.
"""
import json
import os

import numpy as np
import torch
from PIL import Image
from diffusers.image_processor import VaeImageProcessor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "reference", "image_processor")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    pics = {
        "rgb": Image.fromarray(rng.integers(0, 256, (29, 37, 3), dtype=np.uint8), "RGB"),
        "rgb2": Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8), "RGB"),
        "rgba": Image.fromarray(rng.integers(0, 256, (41, 23, 4), dtype=np.uint8), "RGBA"),
        "l": Image.fromarray(rng.integers(0, 256, (18, 20), dtype=np.uint8), "L"),
    }
    for name, im in pics.items():
        im.save(os.path.join(OUT, name + ".png"))
    manifest = {"pre": [], "post": []}

    def save(name, array):
        np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))
        return name + ".npy"

    # preprocess of pictures: (case, processor kwargs, picture names, call kwargs)
    for case, kw, names, call in [
            ("rgb", {}, ["rgb"], {}),
            ("rgba", {}, ["rgba"], {}),
            ("l", {}, ["l"], {}),
            ("list_hw", {}, ["rgb", "rgb2"], {"height": 30, "width": 50}),
            ("factor4", {"vae_scale_factor": 4}, ["rgb"], {}),
            ("convert_rgb", {"do_convert_rgb": True}, ["rgba"], {}),
            ("grayscale", {"do_convert_grayscale": True}, ["rgb"], {}),
            ("no_normalize", {"do_normalize": False}, ["rgb"], {}),
            ("no_resize", {"do_resize": False}, ["rgb"], {})]:
        out = VaeImageProcessor(**kw).preprocess([pics[n] for n in names], **call)
        manifest["pre"].append({"case": case, "kwargs": kw, "pictures": names, "call": call,
                                "out": save("pre_" + case, out.numpy())})

    # preprocess of tensors
    g = torch.Generator().manual_seed(1)
    for case, kw, x, call in [
            ("t01", {}, torch.rand(2, 3, 21, 19, generator=g), {}),
            ("t_neg", {}, torch.rand(1, 3, 16, 16, generator=g) * 2 - 1, {"height": 12, "width": 20}),
            ("t_latent", {}, torch.randn(1, 4, 5, 5, generator=g), {}),
            ("t_chw", {}, torch.rand(3, 10, 17, generator=g), {}),
            ("t_no_normalize", {"do_normalize": False}, torch.rand(1, 3, 9, 9, generator=g), {})]:
        out = VaeImageProcessor(**kw).preprocess(x, **call)
        manifest["pre"].append({"case": case, "kwargs": kw, "tensor": save("pre_in_" + case, x.numpy()),
                                "call": call, "out": save("pre_" + case, out.numpy())})

    # postprocess
    x3 = torch.randn(2, 3, 6, 7, generator=g) * 0.8
    x1 = torch.randn(1, 1, 5, 4, generator=g) * 0.8
    x4 = torch.rand(1, 4, 3, 5, generator=g) * 2 - 1
    manifest["inputs"] = {"x3": save("post_in_x3", x3.numpy()), "x1": save("post_in_x1", x1.numpy()),
                          "x4": save("post_in_x4", x4.numpy())}
    proc = VaeImageProcessor()
    for case, x, call in [
            ("pil", "x3", {"output_type": "pil"}),
            ("np", "x3", {"output_type": "np"}),
            ("pt", "x3", {"output_type": "pt"}),
            ("pt_mixed", "x3", {"output_type": "pt", "do_denormalize": [True, False]}),
            ("pil_l", "x1", {"output_type": "pil"}),
            ("pil_rgba", "x4", {"output_type": "pil"})]:
        t = {"x3": x3, "x1": x1, "x4": x4}[x]
        out = proc.postprocess(t, **call)
        if isinstance(out, list):
            out = np.stack([np.array(im) for im in out])
            mode = proc.postprocess(t, **call)[0].mode
        else:
            out = out.numpy() if torch.is_tensor(out) else out
            mode = None
        manifest["post"].append({"case": case, "input": x, "call": call, "mode": mode,
                                 "out": save("post_" + case, out)})
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("wrote", len(manifest["pre"]) + len(manifest["post"]), "cases to", OUT)


if __name__ == "__main__":
    main()
