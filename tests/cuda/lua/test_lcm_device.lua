-- Latent consistency models on "cuda": the same pictures as on the CPU for
-- LatentConsistencyModelPipeline (the guidance embedding into the UNet's time embedding,
-- inside the recorded graph; LCMScheduler's noise each step), in float16, its img2img, and
-- StableDiffusionPipeline with LCMScheduler and guidance (LCM-LoRA's way), and with
-- TCDScheduler (its eta's noise between steps).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local models = root .. "/models/"

local function run(p, args)
  local a = {prompt = "a cat on a bench", output_type = "np",
             generator = torch.Generator():manual_seed(3)}
  for k, v in pairs(args) do a[k] = v end
  return p(a).images
end

local function same(what, cls, model, args, tol, opts, scheduler)
  local cpu = cls.from_pretrained(models .. model, opts)
  local gpu = cls.from_pretrained(models .. model, opts):to("cuda")
  for _, p in ipairs{cpu, gpu} do
    p:set_progress_bar_config{disable = true}
    if cls == StableDiffusionPipeline then
      p.scheduler = (scheduler or LCMScheduler).from_config(p.scheduler.config)
    end
  end
  local d = (run(cpu, args) - run(gpu, args)):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

same("lcm", LatentConsistencyModelPipeline, "tiny-lcm", {num_images_per_prompt = 2}, 2e-2)
same("float16", LatentConsistencyModelPipeline, "tiny-lcm", {}, 5e-2,
     {torch_dtype = torch.float16})
same("i2i", LatentConsistencyModelImg2ImgPipeline, "tiny-lcm",
     {image = Image.open(root .. "/reference/lcm/sketch64.png"), strength = 0.6}, 2e-2)
same("lcm_lora", StableDiffusionPipeline, "tiny-sd-a",
     {num_inference_steps = 4, guidance_scale = 1.5}, 2e-2)
same("tcd", StableDiffusionPipeline, "tiny-sd-a",
     {num_inference_steps = 4, guidance_scale = 0, eta = 0.3}, 2e-2, nil, TCDScheduler)
print("ok")
