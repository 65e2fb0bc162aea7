"""Textual inversion as diffusers 0.27.2 loads it (TextualInversionLoaderMixin), for
tests/lua/test_textual_inversion.lua, on the committed tiny model tiny-sd-a (not changed):

  - embeddings in the layouts load_textual_inversion reads: a folder with diffusers'
    learned_embeds.bin ({token: vector}), one with learned_embeds.safetensors holding a
    multi-vector embedding (3 x width) under A1111's key "emb_params" (so the token is
    given), and a bare .bin file;
  - a run after torch.manual_seed and the loads, with no generator: the loads draw the
    text encoder's new rows from torch's global generator (resize_token_embeddings), so
    the run's noise shows whether the generator moved as torch's did;
  - the prompts as maybe_convert_prompt spells them out, their token ids, the text
    encoder's output for them, len(tokenizer);
  - unload_textual_inversion of the first token (the others renumbered), a run after it
    (the unload draws a new CPU nn.Embedding from the global generator), then of all;
  - on tiny-sd-b, stored in float16 and loaded as float32: the generator after a load and
    the text encoder's output for a prompt with the new tokens.

    .venv-torch/bin/python scripts/reference/make_textual_inversion_cases.py

Writes tests/fixtures/textual_inversion/ (the embeddings) and
tests/reference/textual_inversion/ (.npy and manifest.json). Seeded: a rerun writes the
same files.
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file

from diffusers import StableDiffusionPipeline

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
FIX = os.path.join(ROOT, "tests", "fixtures", "textual_inversion")
OUT = os.path.join(ROOT, "tests", "reference", "textual_inversion")

PROMPT = "a <cat-toy> on a table, <shiny> and <cat-toy>"
NEGATIVE = "blurry <shiny>"


def make_fixtures(width):
    shutil.rmtree(FIX, ignore_errors=True)
    g = torch.Generator().manual_seed(3)
    os.makedirs(os.path.join(FIX, "cat-toy"))
    torch.save({"<cat-toy>": torch.randn(width, generator=g)},
               os.path.join(FIX, "cat-toy", "learned_embeds.bin"))
    os.makedirs(os.path.join(FIX, "shiny"))
    save_file({"emb_params": torch.randn(3, width, generator=g)},
              os.path.join(FIX, "shiny", "learned_embeds.safetensors"))
    torch.save({"<bare>": torch.randn(1, width, generator=g).half()},
               os.path.join(FIX, "bare.bin"))
    # for tiny-sd-b, whose text encoder is stored in float16 (loaded as float32 by both)
    save_file({"emb_params": torch.randn(2, 24, generator=g)}, os.path.join(FIX, "b-pair.safetensors"))


def main():
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, torch_dtype=torch.float32,
                                                   safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    width = pipe.text_encoder.config.hidden_size
    make_fixtures(width)
    os.makedirs(OUT, exist_ok=True)
    manifest = {"prompt": PROMPT, "negative_prompt": NEGATIVE,
                "len_before": len(pipe.tokenizer)}

    torch.manual_seed(11)
    pipe.load_textual_inversion(os.path.join(FIX, "cat-toy"))
    pipe.load_textual_inversion(os.path.join(FIX, "shiny"), token="<shiny>")
    pipe.load_textual_inversion(os.path.join(FIX, "bare.bin"))
    images = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=3,
                  output_type="np").images
    manifest["len_after"] = len(pipe.tokenizer)
    manifest["vocab_after"] = pipe.text_encoder.config.vocab_size
    converted = pipe.maybe_convert_prompt(PROMPT, pipe.tokenizer)
    manifest["converted_prompt"] = converted
    manifest["converted_negative"] = pipe.maybe_convert_prompt(NEGATIVE, pipe.tokenizer)
    ids = pipe.tokenizer(converted, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    manifest["ids"] = ids[0].tolist()
    with torch.no_grad():
        hidden = pipe.text_encoder(ids)[0]
    np.save(os.path.join(OUT, "hidden.npy"), hidden.numpy())
    np.save(os.path.join(OUT, "images.npy"), images)

    # unload_textual_inversion: the first token out (the others renumbered down), then a
    # run from the global generator, which the unload moved (a new nn.Embedding on the CPU)
    torch.manual_seed(12)
    pipe.unload_textual_inversion("<cat-toy>")
    manifest["unload_len"] = len(pipe.tokenizer)
    manifest["unload_ids"] = {t: pipe.tokenizer.convert_tokens_to_ids(t)
                              for t in ("<shiny>", "<shiny>_1", "<shiny>_2", "<bare>")}
    manifest["unload_rows"] = pipe.text_encoder.get_input_embeddings().weight.shape[0]
    after = pipe(prompt="a <shiny> and a <bare>", num_inference_steps=2, output_type="np").images
    np.save(os.path.join(OUT, "unload_images.npy"), after)
    pipe.unload_textual_inversion()
    manifest["unload_all_len"] = len(pipe.tokenizer)
    manifest["unload_all_rows"] = pipe.text_encoder.get_input_embeddings().weight.shape[0]
    # tiny-sd-b: float16 weights in the files, a float32 model: the new rows keep every bit,
    # and the generator draws a float32 table
    b = StableDiffusionPipeline.from_pretrained(os.path.join(ROOT, "tests", "models", "tiny-sd-b"),
                                                safety_checker=None, requires_safety_checker=False)
    torch.manual_seed(21)
    b.load_textual_inversion(os.path.join(FIX, "b-pair.safetensors"), token="<pair>")
    manifest["b_after"] = torch.randn(4).tolist()
    b_prompt = b.maybe_convert_prompt("two <pair>, one cat", b.tokenizer)
    manifest["b_converted"] = b_prompt
    b_ids = b.tokenizer(b_prompt, padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt").input_ids
    with torch.no_grad():
        np.save(os.path.join(OUT, "b_hidden.npy"), b.text_encoder(b_ids)[0].numpy())
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
