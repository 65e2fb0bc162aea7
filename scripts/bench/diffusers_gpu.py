"""The diffusers side of scripts/bench_gpu.sh: the parts scripts/bench/bench_gpu.c times, with
diffusers on the same model folder and the same GPU, one JSON line per part on stdout.

    python3 scripts/bench/diffusers_gpu.py MODEL_DIR PART[,PART...] [REPEAT] [--device cpu] [--tiny]

PART: unet | txt2img | img2img | matmul | flops | all (several, comma-separated, share one
process and one loaded pipeline)
  unet     pipe.unet(x, 981, encoder_hidden_states=ctx) at batch 2 (a guided step), latents of
           the config's sample_size, 77 tokens; rounds of 20 calls (fewer, down to 3, when a
           call takes over 50 ms) timed with CUDA events, the best round of REPEAT.
  txt2img  StableDiffusionPipeline: one prompt, 512x512, 50 PNDM steps, guidance 7.5,
           output_type="np" (float pixels on the host), the best of REPEAT after a short warm-up.
  img2img  StableDiffusionImg2ImgPipeline made from the same components: the notebook's call,
           a 512x512 image, num_images_per_prompt=3, strength 0.8, 50 steps.
  matmul   the matrix rate: an 8192^3 float16 product (torch.matmul, cuBLAS), the mean of 10
           after 3 warm-ups.
  flops    the UNet's FLOPs at batch 2: counted from the config (unet_flops, below), and by
           torch.utils.flop_counter.FlopCounterMode over one call.
  all      every part in this process (peak memory reset between parts).

The pipeline is loaded as the notebook loads it: from_pretrained(torch_dtype=torch.float16)
.to("cuda"), diffusers' default attention processor (AttnProcessor2_0: PyTorch's
scaled_dot_product_attention), no safety checker, progress bar off. Peak memory is
torch.cuda.max_memory_allocated (tensors, the weights included), reset before each part;
reserved memory (the caching allocator's) is given beside it.

--device cpu --tiny runs the same code on the CPU at float32 with tests/models/tiny-sd-a
and 4 steps: a check that this script runs, on a machine without a GPU.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TXT2IMG_PROMPT = "a photograph of an astronaut riding a horse"
IMG2IMG_PROMPT = "face of a human in  joy"  # the notebook's
UNET_CALLS = 20  # per round; fewer (not under 3) when a call takes over ROUND_SECONDS / 20
ROUND_SECONDS = 1.0


# ---- FLOPs of one UNet2DConditionModel call, from its config ----------------------------

def unet_flops(cfg, batch, height, width, tokens):
    """FLOPs (two per multiply-add) of one UNet2DConditionModel call, by kind, walking the
    blocks as diffusers builds them for SD 1.x/2.x configs (CrossAttnDownBlock2D, DownBlock2D,
    UNetMidBlock2DCrossAttn, UpBlock2D, CrossAttnUpBlock2D). Counted: every convolution
    (2 Cout Cin k^2 Hout Wout per image), every linear layer (2 in out per token), and
    attention's two products, Q K^T and P V (2 Tq Tk Dh each, per head and image). Not counted:
    norms, softmax, SiLU/GEGLU's gate, residual adds, up/downsampling copies, the timestep's
    sinusoids (all together well under 1% of the total, and none of it matrix work)."""
    ch = list(cfg["block_out_channels"])
    nb = len(ch)
    per = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * nb
    layers = per(cfg.get("layers_per_block", 2))
    # diffusers' old name: SD 1.x's attention_head_dim = 8 is the number of heads
    heads = per(cfg.get("num_attention_heads") or cfg.get("attention_head_dim", 8))
    tlayers = per(cfg.get("transformer_layers_per_block", 1) or 1)
    cross = per(cfg.get("cross_attention_dim", 768))
    linear_proj = bool(cfg.get("use_linear_projection", False))
    temb = ch[0] * 4
    B = batch
    t = {"conv3x3": 0, "conv1x1": 0, "linear": 0, "attention": 0}

    def conv(cin, cout, k, h, w):
        t["conv3x3" if k == 3 else "conv1x1"] += 2 * B * cout * cin * k * k * h * w

    def linear(fin, fout, n):
        t["linear"] += 2 * B * n * fin * fout

    def resnet(cin, cout, h, w):
        conv(cin, cout, 3, h, w)  # conv1
        linear(temb, cout, 1)  # time_emb_proj
        conv(cout, cout, 3, h, w)  # conv2
        if cin != cout:
            conv(cin, cout, 1, h, w)  # conv_shortcut

    def transformer(c, h, w, nh, nl, xd):
        n, dh = h * w, c // nh
        proj = (lambda: linear(c, c, n)) if linear_proj else (lambda: conv(c, c, 1, h, w))
        proj()  # proj_in
        for _ in range(nl):
            linear(c, 3 * c, n)  # attn1 q, k, v
            t["attention"] += 2 * (2 * B * nh * n * n * dh)
            linear(c, c, n)  # attn1 out
            linear(c, c, n)  # attn2 q
            linear(xd, 2 * c, tokens)  # attn2 k, v from the text
            t["attention"] += 2 * (2 * B * nh * n * tokens * dh)
            linear(c, c, n)  # attn2 out
            linear(c, 8 * c, n)  # GEGLU proj (value and gate)
            linear(4 * c, c, n)  # ff out
        proj()  # proj_out

    h, w = height, width
    conv(cfg.get("in_channels", 4), ch[0], 3, h, w)  # conv_in
    linear(ch[0], temb, 1)
    linear(temb, temb, 1)  # time_embedding
    skips, cur = [ch[0]], ch[0]
    for i, kind in enumerate(cfg["down_block_types"]):
        for _ in range(layers[i]):
            resnet(cur, ch[i], h, w)
            cur = ch[i]
            if kind.startswith("CrossAttn"):
                transformer(cur, h, w, heads[i], tlayers[i], cross[i])
            skips.append(cur)
        if i < nb - 1:
            h, w = h // 2, w // 2
            conv(cur, cur, 3, h, w)  # Downsample2D, stride 2
            skips.append(cur)
    resnet(cur, cur, h, w)
    transformer(cur, h, w, heads[-1], tlayers[-1], cross[-1])
    resnet(cur, cur, h, w)
    rch, rheads, rlayers, rt, rx = (x[::-1] for x in (ch, heads, layers, tlayers, cross))
    for i, kind in enumerate(cfg["up_block_types"]):
        for _ in range(rlayers[i] + 1):
            resnet(cur + skips.pop(), rch[i], h, w)
            cur = rch[i]
            if kind.startswith("CrossAttn"):
                transformer(cur, h, w, rheads[i], rt[i], rx[i])
        if i < nb - 1:
            h, w = h * 2, w * 2
            conv(cur, cur, 3, h, w)  # Upsample2D: nearest 2x, then conv
    conv(ch[0], cfg.get("out_channels", 4), 3, h, w)  # conv_out
    t["total"] = sum(t.values())
    return t


# ---- helpers ---------------------------------------------------------------------------

def test_image(size):
    """The picture bench_gpu.c makes: red along x, green along y, blue x xor y."""
    from PIL import Image
    y, x = np.mgrid[0:size, 0:size]
    rgb = np.stack([x * 255 // (size - 1), y * 255 // (size - 1), (x ^ y) & 255], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


class Bench:
    def __init__(self, args):
        self.args = args
        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.dtype = torch.float16 if self.cuda else torch.float32
        self.pipe = None
        self.load_seconds = None

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self):
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def emit(self, part, **fields):
        line = {"side": "diffusers", "part": part,
                "device": torch.cuda.get_device_name() if self.cuda else "cpu"}
        line.update(fields)
        if self.cuda:
            line["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
            line["peak_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
        line["load_seconds"] = self.load_seconds
        print(json.dumps(line), flush=True)

    def load(self):
        if self.pipe is not None:
            return self.pipe
        from diffusers import StableDiffusionPipeline
        t0 = time.perf_counter()
        pipe = StableDiffusionPipeline.from_pretrained(
            self.args.model, torch_dtype=self.dtype, safety_checker=None,
            requires_safety_checker=False).to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self.sync()
        self.load_seconds = time.perf_counter() - t0
        self.pipe = pipe
        return pipe

    def attention_processor(self):
        procs = self.pipe.unet.attn_processors
        return sorted({type(p).__name__ for p in procs.values()})

    # ---- parts ----

    def unet_inputs(self, batch=2):
        unet = self.pipe.unet
        s = unet.config.sample_size
        g = torch.Generator(self.device).manual_seed(0)
        x = torch.randn(batch, unet.config.in_channels, s, s, generator=g, device=self.device,
                        dtype=self.dtype)
        ctx = torch.randn(batch, self.pipe.tokenizer.model_max_length,
                          unet.config.cross_attention_dim, generator=g, device=self.device,
                          dtype=self.dtype)
        t = torch.tensor(981, device=self.device)
        return x, t, ctx

    def part_unet(self):
        pipe = self.load()
        self.reset_peak()
        x, t, ctx = self.unet_inputs()
        call = lambda: pipe.unet(x, t, encoder_hidden_states=ctx, return_dict=False)[0]
        with torch.no_grad():  # as the pipeline's __call__
            call()
            self.sync()
            t0 = time.perf_counter()
            for _ in range(2):
                call()
            self.sync()
            per = (time.perf_counter() - t0) / 2
            n = UNET_CALLS if per * UNET_CALLS <= ROUND_SECONDS else max(3, int(ROUND_SECONDS / per))
            best = float("inf")
            for _ in range(self.args.repeat):
                if self.cuda:
                    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    a.record()
                    for _ in range(n):
                        call()
                    b.record()
                    b.synchronize()
                    secs = a.elapsed_time(b) / 1000 / n
                else:
                    t0 = time.perf_counter()
                    for _ in range(n):
                        call()
                    secs = (time.perf_counter() - t0) / n
                best = min(best, secs)
        self.emit("unet", batch=2, latent=x.shape[-1], tokens=ctx.shape[1],
                  dtype=str(self.dtype).replace("torch.", ""), calls=n, seconds=best,
                  steps_per_second=1 / best, attention=self.attention_processor())

    def count_unet_calls(self):
        calls = [0]
        hook = self.pipe.unet.register_forward_pre_hook(lambda m, a: calls.__setitem__(0, calls[0] + 1))
        return calls, hook

    def part_generate(self, part):
        from diffusers import StableDiffusionImg2ImgPipeline
        pipe = self.load()
        img2img = part == "img2img"
        if img2img:
            pipe = StableDiffusionImg2ImgPipeline(**self.pipe.components,
                                                  requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
        self.reset_peak()
        size = self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor
        kw = dict(guidance_scale=7.5, output_type="np")
        if img2img:
            kw.update(prompt=IMG2IMG_PROMPT, image=test_image(size), strength=0.8,
                      num_images_per_prompt=3)
        else:
            kw.update(prompt=TXT2IMG_PROMPT, height=size, width=size, num_images_per_prompt=1)
        calls, hook = self.count_unet_calls()

        def run(steps):
            calls[0] = 0
            g = torch.Generator(self.device).manual_seed(0)
            self.sync()
            t0 = time.perf_counter()
            images = pipe(num_inference_steps=steps, generator=g, **kw).images
            self.sync()  # the pixels are on the host already (output_type="np")
            assert images.shape[0] == kw["num_images_per_prompt"]
            return time.perf_counter() - t0

        run(4 if img2img else 3)  # warm-up, as bench_gpu.c's
        best = min(run(self.args.steps) for _ in range(self.args.repeat))
        hook.remove()
        self.emit(part, size=size, images=kw["num_images_per_prompt"], unet_calls=calls[0],
                  unet_batch=2 * kw["num_images_per_prompt"], seconds=best,
                  steps_per_second=calls[0] / best)

    def part_matmul(self):
        n = self.args.matmul_n
        self.reset_peak()
        a = torch.randn(n, n, device=self.device, dtype=self.dtype)
        b = torch.randn(n, n, device=self.device, dtype=self.dtype)
        for _ in range(3):
            a @ b
        self.sync()
        reps = 10
        if self.cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(reps):
                a @ b
            e.record()
            e.synchronize()
            secs = s.elapsed_time(e) / 1000 / reps
        else:
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            secs = (time.perf_counter() - t0) / reps
        self.emit("matmul", n=n, dtype=str(self.dtype).replace("torch.", ""), seconds=secs,
                  tflops=2 * n**3 / secs / 1e12)

    def part_flops(self):
        from torch.utils.flop_counter import FlopCounterMode
        pipe = self.load()
        cfg = dict(pipe.unet.config)
        x, t, ctx = self.unet_inputs()
        counted = unet_flops(cfg, 2, x.shape[-2], x.shape[-1], ctx.shape[1])
        measured, by_op = None, {}
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as fc:
                pipe.unet(x, t, encoder_hidden_states=ctx, return_dict=False)
            measured = fc.get_total_flops()
            by_op = {str(k): v for k, v in fc.get_flop_counts().get("Global", {}).items()}
        except Exception as e:  # the analytic count stands alone then
            by_op = {"error": repr(e)}
        self.emit("flops", batch=2, latent=x.shape[-1], tokens=ctx.shape[1], flops=counted["total"],
                  breakdown=counted, flop_counter=measured, flop_counter_by_op=by_op)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", help="diffusers folder (--tiny: tests/models/tiny-sd-a)")
    ap.add_argument("part", help="unet, txt2img, img2img, matmul, flops or all; or a comma list")
    ap.add_argument("repeat", nargs="?", type=int, default=1)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny model, 4 steps, small product")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default 50)")
    args = ap.parse_args()
    if args.tiny and not args.model:
        args.model = os.path.join(ROOT, "tests", "models", "tiny-sd-a")
    if not args.model:
        ap.error("MODEL_DIR is needed (or --tiny)")
    args.steps = args.steps or (4 if args.tiny else 50)
    args.matmul_n = 256 if args.tiny else 8192
    args.repeat = max(1, args.repeat)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("diffusers_gpu: skipped: torch sees no GPU", file=sys.stderr)
        sys.exit(77)
    torch.manual_seed(0)
    b = Bench(args)
    known = ["matmul", "flops", "unet", "txt2img", "img2img"]
    parts = known if args.part == "all" else args.part.split(",")
    for p in parts:
        if p not in known:
            ap.error(f"unknown part {p!r} (one of {', '.join(known)} or all)")
    for p in parts:
        if p == "unet":
            b.part_unet()
        elif p in ("txt2img", "img2img"):
            b.part_generate(p)
        elif p == "matmul":
            b.part_matmul()
        elif p == "flops":
            b.part_flops()


if __name__ == "__main__":
    main()
