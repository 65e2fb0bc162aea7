-- Playground v2.5's layout against diffusers 0.27.2 (tests/models/tiny-playground: tiny-sdxl's
-- weights with Playground's scheduler and VAE configs; tests/reference/playground, made by
-- scripts/reference/make_playground_cases.py): DiffusionPipeline picks its
-- EDMDPMSolverMultistepScheduler, its timesteps are 0.25 * log(sigma), and the latents are
-- denormalized with the VAE's latents_mean and latents_std before decoding. Whole runs
-- (txt2img and its latents, EDMEulerScheduler, the SDE variant, img2img) within 5e-5 of
-- diffusers' (1.4e-5 seen; the decode scales the latents by up to 17).
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local model = src .. "/tests/models/tiny-playground"
local ref = src .. "/tests/reference/playground/"
local PROMPT = "a cat in a field of flowers, playground"

local function within(name, got, tol)
  local d = (got - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: max difference %.3g", name, d))
  print(string.format("%-16s max difference %.2e", name, d))
end

local function run(pipe, name, tol, opts)
  local o = {prompt = PROMPT, num_inference_steps = 5, guidance_scale = 3.0, output_type = "np",
             generator = torch.Generator():manual_seed(7)}
  if not (opts and opts.image) then o.height, o.width = 64, 64 end
  for k, v in pairs(opts or {}) do o[k] = v end
  local images = pipe(o).images
  within(name, images, tol)
  return images
end

local pipe = DiffusionPipeline.from_pretrained(model)
pipe:set_progress_bar_config{disable = true}
check.truthy(tostring(pipe):find("StableDiffusionXLPipeline"), "DiffusionPipeline's class")
check.eq(pipe.scheduler.class_name, "EDMDPMSolverMultistepScheduler", "the model's scheduler")
check.eq(pipe.vae.config.scaling_factor, 0.5, "vae scaling_factor")
check.eq(#pipe.vae.config.latents_mean, 4, "vae latents_mean")
-- an EDM scheduler takes only its own config (its _compatibles are empty)
local compatibles = pipe.scheduler.compatibles
check.eq(#compatibles, 1, "EDM's compatibles")
check.truthy(compatibles[1] == EDMDPMSolverMultistepScheduler, "EDM's compatibles[1]")

run(pipe, "txt2img", 5e-5)
run(pipe, "txt2img_latents", 5e-5, {output_type = "latent"})
local ts = pipe.scheduler.timesteps
check.truthy(math.abs(ts[1]:item() - 0.25 * math.log(80)) < 1e-6, "timesteps are 0.25 log(sigma)")

local config = pipe.scheduler.config
pipe.scheduler = EDMEulerScheduler.from_config(config)
run(pipe, "euler", 5e-5, {num_inference_steps = 4})
pipe.scheduler = EDMDPMSolverMultistepScheduler.from_config(config,
                                                            {algorithm_type = "sde-dpmsolver++"})
run(pipe, "sde", 5e-5, {num_inference_steps = 4})

local i2i = StableDiffusionXLImg2ImgPipeline.from_pretrained(model)
i2i:set_progress_bar_config{disable = true}
run(i2i, "img2img", 5e-5, {image = Image.open(ref .. "init_image.png"), strength = 0.6,
                           num_inference_steps = 8})

-- a mistake in the scheduler's config is a message naming the key
local ok, err = pcall(EDMEulerScheduler.from_config, config, {prediction_type = "sample"})
check.truthy(not ok and tostring(err):find("prediction_type \"sample\" is not supported"),
             "EDM's prediction types: " .. tostring(err))

print("ok")
