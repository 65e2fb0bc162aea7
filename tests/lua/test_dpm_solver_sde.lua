-- DPMSolverSDEScheduler ("DPM++ SDE") in the pipelines against diffusers 0.27.2 with
-- torchsde 0.2.6 (tests/reference/dpm_solver_sde, made by
-- scripts/reference/make_dpm_solver_sde_cases.py): tiny-sd-a with the scheduler swapped in,
-- text to image after torch.manual_seed with no generator (latents and the noise seed both
-- from the default generator), Karras sigmas with a generator for the latents, and image to
-- image with noise_sampler_seed in the config. After each run the default generator's next
-- draws are torch's: the run drew what diffusers draws. Then the class as a notebook meets
-- it: its schedule, a seeded step, and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/dpm_solver_sde/"

local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
local config = pipe.scheduler.config
pipe:set_progress_bar_config{disable = true}

local function same(images, name)
  local d = (images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", name, d))
  print(string.format("%-12s max difference %.2e", name, d))
  local after = torch.randn({2}) - torch.load_npy(ref .. name .. "_rng_after.npy")
  check.eq(after:abs():max():item(), 0, name .. ": the default generator's next draws")
end

pipe.scheduler = DPMSolverSDEScheduler.from_config(config)
check.eq(tostring(pipe.scheduler), "<DPMSolverSDEScheduler>", "the swapped scheduler")
torch.manual_seed(31)
same(pipe{prompt = "a cat on a bench", num_inference_steps = 6, output_type = "np"}.images,
     "sde_global")

pipe.scheduler = DPMSolverSDEScheduler.from_config(config, {use_karras_sigmas = true})
torch.manual_seed(33)
same(pipe{prompt = "a lighthouse", num_inference_steps = 5, output_type = "np",
          generator = torch.Generator():manual_seed(32)}.images, "sde_karras")

pipe.scheduler = DPMSolverSDEScheduler.from_config(config, {noise_sampler_seed = 7})
local i2i = StableDiffusionImg2ImgPipeline(pipe.components)
i2i:set_progress_bar_config{disable = true}
same(i2i{prompt = "a red door", image = Image.open(ref .. "sketch64.png"), strength = 0.75,
         num_inference_steps = 8, num_images_per_prompt = 2, output_type = "np",
         generator = {torch.Generator():manual_seed(34), torch.Generator():manual_seed(35)}}.images,
     "sde_i2i")

-- the noise matters: another default seed, another picture
pipe.scheduler = DPMSolverSDEScheduler.from_config(config)
torch.manual_seed(31)
local latents = torch.randn({1, 4, 16, 16})
torch.manual_seed(32) -- the sampler's seed from here, the latents as before
local other = pipe{prompt = "a cat on a bench", num_inference_steps = 6, output_type = "np",
                   latents = latents}.images
check.truthy((other - torch.load_npy(ref .. "sde_global.npy")):abs():max():item() > 1e-3,
             "another noise seed gives another picture")

-- the class alone: two calls a step, the midpoints' timesteps between the steps' own
local s = DPMSolverSDEScheduler{noise_sampler_seed = 3}
s:set_timesteps(3)
local ts = s.timesteps:tolist()
check.eq(#ts, 5, "3 steps are 5 calls")
check.truthy(ts[1] > ts[2] and ts[2] > ts[3], "a midpoint between two steps")
check.eq(s.order, 2, "order 2: img2img starts at t_start * 2")
local x = torch.randn({1, 4, 4, 4}, {generator = torch.Generator():manual_seed(3)})
local a = s:step(x, ts[1], x).prev_sample
s:set_timesteps(3)
local b = s:step(x, ts[1], x).prev_sample
check.eq((a - b):abs():max():item(), 0, "a seeded noise sampler draws the same")
check.raises("noise_sampler_seed must be null or a whole number",
             DPMSolverSDEScheduler.from_config, config, {noise_sampler_seed = -2})
check.raises("prediction_type", DPMSolverSDEScheduler.from_config, config,
             {prediction_type = "sample"})
