"""The fast.ai "Stable Diffusion deep dive" embeddings section in transformers 4.40.2 and
diffusers 0.27.2, for tests/lua/test_deep_dive.lua, on tiny-sd-a: the prompt's token and
position embeddings looked up by hand, one token's embedding replaced by another word's,
get_output_embeds (the encoder fed those embeddings with the causal mask, then
final_layer_norm), the encoder without a mask, and a picture from the replaced embeddings.

transformers 4.40 no longer has text_model._build_causal_attention_mask, which the notebook
calls; its _create_4d_causal_attention_mask makes the same mask (finfo.min above the
diagonal).

    .venv-torch/bin/python scripts/reference/make_deep_dive_cases.py

Deterministic: a rerun writes the same files.
"""
import json
import os

import numpy as np
import torch
from transformers.modeling_attn_mask_utils import _create_4d_causal_attention_mask

from diffusers import StableDiffusionPipeline

import common

common.patch_attention()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
OUT = os.path.join(ROOT, "tests", "reference", "deep_dive")
PROMPT = "A picture of a puppy"
REPLACEMENT_ID = 321  # another word of the tiny vocabulary
POSITION = 5  # the token replaced (0-based; after the start token and four words)


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a, dtype=np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    tokenizer, text_encoder = pipe.tokenizer, pipe.text_encoder
    tm = text_encoder.text_model
    text_input = tokenizer(PROMPT, padding="max_length", max_length=tokenizer.model_max_length,
                           truncation=True, return_tensors="pt")
    input_ids = text_input.input_ids

    def get_output_embeds(input_embeddings, causal=True):
        bsz, seq_len = input_embeddings.shape[:2]
        mask = (_create_4d_causal_attention_mask((bsz, seq_len), input_embeddings.dtype, "cpu")
                if causal else None)
        encoder_outputs = tm.encoder(inputs_embeds=input_embeddings, attention_mask=None,
                                     causal_attention_mask=mask, output_attentions=None,
                                     output_hidden_states=True, return_dict=None)
        return tm.final_layer_norm(encoder_outputs[0])

    with torch.no_grad():
        token_embeddings = tm.embeddings.token_embedding(input_ids)
        position_ids = tm.embeddings.position_ids[:, :77]
        position_embeddings = tm.embeddings.position_embedding(position_ids)
        input_embeddings = token_embeddings + position_embeddings
        plain = get_output_embeds(input_embeddings)
        noncausal = get_output_embeds(input_embeddings, causal=False)
        replacement = text_encoder.get_input_embeddings()(torch.tensor(REPLACEMENT_ID))
        token_embeddings[0, POSITION] = replacement
        replaced = get_output_embeds(token_embeddings + position_embeddings)
    torch.manual_seed(0)
    images = pipe(prompt_embeds=replaced, num_inference_steps=4, output_type="np").images
    save("plain", plain.numpy())
    save("noncausal", noncausal.numpy())
    save("replaced", replaced.numpy())
    save("images", images)
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump({"prompt": PROMPT, "ids": input_ids[0].tolist()[:8],
                   "replacement_id": REPLACEMENT_ID, "position": POSITION}, fh, indent=1)
    print(input_ids[0].tolist()[:8], float((plain - text_encoder(input_ids)[0]).abs().max()))


if __name__ == "__main__":
    main()
