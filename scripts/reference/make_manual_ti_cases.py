"""A textual inversion done by hand, as fastai's stable_diffusion notebook does it, in
diffusers 0.27.2 with transformers 4.40.2, for tests/lua/test_manual_ti.lua:

    tokenizer.add_tokens(new_token)
    text_encoder.resize_token_embeddings(len(tokenizer))
    new_token_id = tokenizer.convert_tokens_to_ids(new_token)
    text_encoder.get_input_embeddings().weight.data[new_token_id] = embeds

on tiny-sd-a, then a picture with the token. Also what resize_token_embeddings draws: after
torch.manual_seed(5) the table grows by two rows beyond the new token, one of them never set,
its values the new nn.Embedding's normal draw (and the default generator moved as far).

    .venv-torch/bin/python scripts/reference/make_manual_ti_cases.py

Seeded: a rerun writes the same files.
"""
import json
import os

import numpy as np
import torch

from diffusers import StableDiffusionPipeline

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
OUT = os.path.join(ROOT, "tests", "reference", "manual_ti")


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a, dtype=np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    tokenizer, text_encoder = pipe.tokenizer, pipe.text_encoder
    dim = text_encoder.config.hidden_size
    embeds = torch.randn(dim, generator=torch.Generator().manual_seed(9))
    save("embeds", embeds.numpy())
    new_token = "<watercolor-portrait>"
    old = len(tokenizer)
    added = tokenizer.add_tokens(new_token)
    added_again = tokenizer.add_tokens([new_token, "", "<two>"])
    torch.manual_seed(5)
    text_encoder.resize_token_embeddings(len(tokenizer) + 1)
    rng_after = torch.randn(2).tolist()
    new_token_id = tokenizer.convert_tokens_to_ids(new_token)
    text_encoder.get_input_embeddings().weight.data[new_token_id] = embeds
    weight = text_encoder.get_input_embeddings().weight.data
    save("new_rows", weight[old:].numpy())
    prompt = "Woman reading in the style of <watercolor-portrait>"
    ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    torch.manual_seed(1000)
    images = pipe(prompt, num_inference_steps=4, output_type="np").images
    save("images", images)
    save("rng_after", np.array(rng_after))
    save("ids", ids[0].numpy())
    manifest = {"old_len": old, "added": added, "added_again": added_again,
                "new_token_id": new_token_id, "len": len(tokenizer),
                "ids": ids[0].tolist(), "rng_after": rng_after, "prompt": prompt}
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
    print(manifest)


if __name__ == "__main__":
    main()
