"""CLIPTextModel as transformers loads and runs it, beyond a diffusers text_encoder folder:
a whole CLIPModel checkpoint (config.json with model_type "clip" and a "text_config"
that leaves most values to CLIPTextConfig's defaults, vision weights beside the text
ones), as openai/clip-vit-large-patch14 is (the fast.ai notebook loads its text encoder
from there), and pooler_output, the hidden state at each sequence's end token: the
first eos_token_id, position 0 without one, or the first largest id when eos_token_id
is 2 (openai's configs).

    .venv-torch/bin/python scripts/reference/make_clip_model_cases.py

Writes tests/models/tiny-clip-full/ (CLIPModel.save_pretrained) and
tests/reference/clip_model/: <case>_{ids,last_hidden_state,pooler_output}.npy and
manifest.json. Everything is seeded, so a rerun writes the same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextModel

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-clip-full")
OUT = os.path.join(ROOT, "tests", "reference", "clip_model")


def make_full_clip():
    """A tiny CLIPModel whose text part keeps openai's legacy ids (bos 0, eos 2, pad 1)."""
    torch.manual_seed(0)
    text = dict(vocab_size=1000, hidden_size=32, intermediate_size=37, num_attention_heads=4,
                num_hidden_layers=2, projection_dim=16, bos_token_id=0, eos_token_id=2,
                pad_token_id=1)
    vision = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                  num_hidden_layers=2, image_size=30, patch_size=6, projection_dim=16)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    shutil.rmtree(MODEL, ignore_errors=True)
    model.save_pretrained(MODEL)


# (case, model folder, subfolder, ids): rows whose end token comes once, twice, never,
# and (for the legacy ids) whose largest id is not at the end.
CASES = [
    ("full_legacy", "tiny-clip-full", None,
     [[0, 17, 950, 5, 950, 2, 1], [0, 3, 4, 5, 6, 7, 999], [0, 2, 2, 9, 8, 7, 6]]),
    ("sd_a", "tiny-sd-a", "text_encoder", None),
    ("sd_b", "tiny-sd-b", "text_encoder", None),
]


def ids_for(config):
    """Rows with the end token once, twice and not at all, for a model's own ids."""
    bos, eos, v = config.bos_token_id, config.eos_token_id, config.vocab_size
    return [[bos, 10, 11, eos, eos, eos], [bos, eos, 12, eos, 13, 14],
            [bos, 15, v - 3, 16, 17, 18]]


def main():
    make_full_clip()
    os.makedirs(OUT, exist_ok=True)
    manifest = {"cases": []}
    for name, folder, sub, ids in CASES:
        path = os.path.join(ROOT, "tests", "models", folder)
        model = (CLIPTextModel.from_pretrained(path, subfolder=sub) if sub
                 else CLIPTextModel.from_pretrained(path)).eval()
        ids = torch.tensor(ids if ids is not None else ids_for(model.config), dtype=torch.int64)
        with torch.no_grad():
            out = model(ids)
        case = {"name": name, "model": folder, "subfolder": sub,
                "eos_token_id": model.config.eos_token_id}
        for key, value in (("ids", ids), ("last_hidden_state", out.last_hidden_state),
                           ("pooler_output", out.pooler_output)):
            np.save(os.path.join(OUT, "%s_%s.npy" % (name, key)), value.numpy())
            case[key] = "%s_%s.npy" % (name, key)
        manifest["cases"].append(case)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("wrote", len(manifest["cases"]), "cases to", OUT)


if __name__ == "__main__":
    main()
