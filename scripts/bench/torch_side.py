"""The PyTorch/diffusers side of scripts/bench_cpu.sh: times each part on this
CPU and prints one JSON line per measurement ({"part", "seconds", "peak_rss_mb"}).

    .venv-torch/bin/python scripts/bench/torch_side.py MODEL_DIR PART
PART: text_encoder | unet | vae_decode | txt2img | lora_load | lora_txt2img | lora_scaled |
      safety_checker | inpaint | controlnet | ip_adapter | sdxl | taesd_decode |
      adapter_features
(the lora parts with the random rank-32 LoRA beside the model, MODEL_DIR/../lora-r32.safetensors)
"""
import json
import os
import resource
import sys
import time

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat):
    fn()  # warm-up, as ours gets one
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(model, part, repeat):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    # Each part loads only what it runs, as ours does, so peak memory compares.
    with torch.no_grad():
        if part == "text_encoder":
            tok = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
            text = CLIPTextModel.from_pretrained(model, subfolder="text_encoder")
            ids = tok(["a photograph of an astronaut riding a horse", ""],
                      padding="max_length", max_length=77, return_tensors="pt").input_ids
            secs = timed(lambda: text(ids), repeat)
        elif part == "unet":
            unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet")
            x = torch.randn(2, 4, 64, 64)
            ctx = torch.randn(2, 77, 768)
            secs = timed(lambda: unet(x, 981, encoder_hidden_states=ctx), repeat)
        elif part == "vae_decode":
            vae = AutoencoderKL.from_pretrained(model, subfolder="vae")
            z = torch.randn(1, 4, 64, 64)
            secs = timed(lambda: vae.decode(z), repeat)
        elif part == "taesd_decode":
            vae = AutoencoderTiny.from_pretrained(model + "-taesd")
            z = torch.randn(1, 4, 64, 64)
            secs = timed(lambda: vae.decode(z), repeat)
        elif part == "adapter_features":
            from diffusers import T2IAdapter
            adapter = T2IAdapter.from_pretrained(model + "-t2i-adapter")
            x = torch.rand(1, 3, 512, 512)
            secs = timed(lambda: adapter(x), repeat)
        elif part == "txt2img":
            pipe = StableDiffusionPipeline.from_pretrained(model, torch_dtype=torch.float32,
                                                           safety_checker=None,
                                                           requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            secs = timed(lambda: pipe("a photograph of an astronaut riding a horse",
                                      num_inference_steps=3, output_type="np"), repeat)
        elif part.startswith("lora_"):
            pipe = StableDiffusionPipeline.from_pretrained(model, torch_dtype=torch.float32,
                                                           safety_checker=None,
                                                           requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            lora = os.path.join(os.path.dirname(os.path.abspath(model)), "lora-r32.safetensors")
            names = iter(range(1000))
            if part == "lora_load":
                # a new adapter each time (diffusers refuses a name twice)
                secs = timed(lambda: pipe.load_lora_weights(lora, adapter_name=f"a{next(names)}"),
                             repeat)
            else:
                pipe.load_lora_weights(lora)
                kw = {"cross_attention_kwargs": {"scale": 0.5}} if part == "lora_scaled" else {}
                secs = timed(lambda: pipe("a photograph of an astronaut riding a horse",
                                          num_inference_steps=3, output_type="np", **kw), repeat)
        elif part == "inpaint":
            from diffusers import StableDiffusionInpaintPipeline
            from PIL import Image
            pipe = StableDiffusionInpaintPipeline.from_pretrained(model, torch_dtype=torch.float32,
                                                                  safety_checker=None,
                                                                  requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            image = Image.new("RGB", (512, 512), (120, 140, 160))
            mask = Image.new("RGB", (512, 512), (0, 0, 0))
            mask.paste((255, 255, 255), (128, 128, 384, 384))
            secs = timed(lambda: pipe("a photograph of an astronaut riding a horse", image=image,
                                      mask_image=mask, num_inference_steps=3, output_type="np"),
                         repeat)
        elif part == "controlnet":
            from diffusers import ControlNetModel, StableDiffusionControlNetPipeline
            from PIL import Image
            cn = ControlNetModel.from_pretrained(model + "-controlnet", torch_dtype=torch.float32)
            pipe = StableDiffusionControlNetPipeline.from_pretrained(
                model, controlnet=cn, torch_dtype=torch.float32, safety_checker=None,
                requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            edges = Image.new("RGB", (512, 512), (0, 0, 0))
            edges.paste((255, 255, 255), (128, 128, 384, 136))
            secs = timed(lambda: pipe("a photograph of an astronaut riding a horse", image=edges,
                                      num_inference_steps=3, output_type="np"), repeat)
        elif part == "sdxl":
            from diffusers import StableDiffusionXLPipeline
            pipe = StableDiffusionXLPipeline.from_pretrained(model + "-xl",
                                                             torch_dtype=torch.float32,
                                                             add_watermarker=False)
            pipe.set_progress_bar_config(disable=True)
            secs = timed(lambda: pipe("a photograph of an astronaut riding a horse",
                                      num_inference_steps=1, output_type="np"), repeat)
        elif part == "ip_adapter":
            from PIL import Image
            pipe = StableDiffusionPipeline.from_pretrained(model, torch_dtype=torch.float32,
                                                           safety_checker=None,
                                                           requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            pipe.load_ip_adapter(model + "-ip-adapter", subfolder="models",
                                 weight_name="ip-adapter_sd15.safetensors")
            face = Image.new("RGB", (512, 512), (200, 160, 140))
            face.paste((40, 40, 60), (160, 200, 352, 260))
            secs = timed(lambda: pipe("a photograph of an astronaut riding a horse",
                                      ip_adapter_image=face, num_inference_steps=3,
                                      output_type="np"), repeat)
        elif part == "safety_checker":
            pipe = StableDiffusionPipeline.from_pretrained(model + "-sc", torch_dtype=torch.float32)
            x = torch.rand(3, 3, 512, 512) * 2 - 1
            secs = timed(lambda: pipe.run_safety_checker(x.clone(), "cpu", torch.float32), repeat)
        else:
            sys.exit(f"unknown part {part}")
    print(json.dumps({"part": part, "seconds": secs, "peak_rss_mb": peak_mb()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
