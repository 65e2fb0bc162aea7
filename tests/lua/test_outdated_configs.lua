-- Outdated configs, updated as diffusers 0.27.2's pipelines update them in __init__
-- (tests/reference/outdated_configs, made by scripts/reference/make_outdated_config_cases.py):
-- StableDiffusionPipeline given a scheduler with steps_offset 0 and clip_sample true samples
-- with 1 and false; StableDiffusionInpaintPipeline given one with skip_prk_steps false, with
-- true. A UNet config older than diffusers 0.9 with a sample_size below 64 gets 64 (the
-- pictures' default size). Other pipelines leave configs as they are.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/outdated_configs/"
local models = src .. "/tests/models/"

local function close(got, name)
  local d = (got - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", name, d))
  print(string.format("%-8s max difference %.2e", name, d))
end

local base = DDIMScheduler.from_pretrained(models .. "tiny-sd-a", {subfolder = "scheduler"})
local old = DDIMScheduler.from_config(base.config, {steps_offset = 0, clip_sample = true})
local pipe = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a", {scheduler = old})
pipe:set_progress_bar_config{disable = true}
check.eq(pipe.scheduler.config.steps_offset, 1, "steps_offset updated")
check.eq(pipe.scheduler.config.clip_sample, false, "clip_sample updated")
close(pipe("a red door", {num_inference_steps = 3, output_type = "np",
                          generator = torch.Generator():manual_seed(4)}).images, "t2i")

local pbase = PNDMScheduler.from_pretrained(models .. "tiny-sd-inpaint", {subfolder = "scheduler"})
local pold = PNDMScheduler.from_config(pbase.config, {steps_offset = 0, skip_prk_steps = false})
local inpaint = StableDiffusionInpaintPipeline.from_pretrained(models .. "tiny-sd-inpaint",
                                                                {scheduler = pold})
inpaint:set_progress_bar_config{disable = true}
check.eq(inpaint.scheduler.config.skip_prk_steps, true, "skip_prk_steps updated")
close(inpaint{prompt = "a cat", image = Image.open(ref .. "sketch64.png"),
              mask_image = Image.open(ref .. "mask64.png"), num_inference_steps = 4,
              output_type = "np", generator = torch.Generator():manual_seed(5)}.images, "inpaint")

-- a pipeline diffusers does not update (ControlNet's) keeps the config as given
local keep = DDIMScheduler.from_config(base.config, {steps_offset = 0})
local cn = StableDiffusionControlNetPipeline.from_pretrained(models .. "tiny-sd-a", {
  controlnet = ControlNetModel.from_pretrained(models .. "tiny-controlnet-a"), scheduler = keep})
check.eq(cn.scheduler.config.steps_offset, 0, "ControlNet's pipeline leaves steps_offset")

-- a UNet config from before diffusers 0.9 with sample_size 8: the pipeline takes 64
local dir = os.tmpname()
os.remove(dir)
assert(os.execute(string.format("cp -r '%s' '%s'", models .. "tiny-sd-a", dir)))
local path = dir .. "/unet/config.json"
local text = io.open(path):read("a")
text = text:gsub('"_diffusers_version": "[^"]*"', '"_diffusers_version": "0.8.0"')
local f = io.open(path, "w")
f:write(text)
f:close()
local legacy = StableDiffusionPipeline.from_pretrained(dir)
legacy:set_progress_bar_config{disable = true}
check.eq(legacy.unet.config.sample_size, 64, "sample_size 64")
local img = legacy("a cat", {num_inference_steps = 1}).images[1]
check.eq(img.size[1], 64 * legacy.vae_scale_factor, "the default size follows")
os.execute(string.format("rm -rf '%s'", dir))
