-- Latent consistency models against diffusers 0.27.2 (tests/reference/lcm and
-- tests/models/tiny-lcm, made by scripts/reference/make_lcm_cases.py):
-- LatentConsistencyModelPipeline (its defaults of 4 steps and guidance 8.5, a batch with
-- generators and original_inference_steps, custom timesteps, latents out), the same model in
-- StableDiffusionPipeline (the guidance embedding given, classifier-free guidance off),
-- LatentConsistencyModelImg2ImgPipeline (strength cutting the LCM schedule), the UNet with a
-- timestep_cond, LCM-LoRA's run, the ways to the pipelines, and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/lcm/"
local model = src .. "/tests/models/tiny-lcm"

local cases = {
  {"lcm_defaults", "lcm", {prompt = "a cat on a bench", seed = 1}},
  {"lcm_batch_original", "lcm", {prompt = {"a lighthouse", "a red door"},
                                 num_images_per_prompt = 2, num_inference_steps = 3,
                                 original_inference_steps = 20, guidance_scale = 5.0,
                                 seeds = {2, 3, 4, 5}}},
  {"lcm_timesteps", "lcm", {prompt = "a lighthouse", timesteps = {999, 599, 199},
                            guidance_scale = 3.0, seed = 6}},
  {"lcm_latent", "lcm", {prompt = "a red door", num_inference_steps = 2, output_type = "latent",
                         seed = 7}},
  {"lcm_sd_pipeline", "sd", {prompt = "a cat on a bench", num_inference_steps = 4,
                             guidance_scale = 7.5, seed = 8}},
  {"lcm_i2i_defaults", "i2i", {prompt = "a red door", image = "sketch64", seed = 9}},
  {"lcm_i2i_batch", "i2i", {prompt = {"a lighthouse", "a cat on a bench"}, image = "sketch80x72",
                            num_images_per_prompt = 2, strength = 0.5, num_inference_steps = 3,
                            original_inference_steps = 30, guidance_scale = 4.0,
                            seeds = {10, 11, 12, 13}}},
  {"lcm_i2i_timesteps", "i2i", {prompt = "a red door", image = "sketch64",
                                timesteps = {999, 759, 499, 259}, strength = 0.5, seed = 14}},
}

local function call(pipe, given)
  local args = check.case_args({output_type = "np"}, given)
  if type(args.image) == "string" then args.image = Image.open(ref .. args.image .. ".png") end
  return pipe(args)
end

local function same(images, name, what)
  local d = (images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", what or name, d))
  return d
end

local lcm = DiffusionPipeline.from_pretrained(model)
check.truthy(tostring(lcm):find("LatentConsistencyModelPipeline"), "DiffusionPipeline's class")
check.eq(tostring(lcm.scheduler), "<LCMScheduler>", "the model's scheduler")
check.eq(lcm.unet.config.time_cond_proj_dim, 8, "unet.config.time_cond_proj_dim")
lcm:set_progress_bar_config{disable = true}
local sd = StableDiffusionPipeline(lcm.components)
sd:set_progress_bar_config{disable = true}
local i2i = AutoPipelineForImage2Image.from_pipe(lcm)
check.truthy(tostring(i2i):find("LatentConsistencyModelImg2ImgPipeline"), "from_pipe's class")
i2i:set_progress_bar_config{disable = true}
local pipes = {lcm = lcm, sd = sd, i2i = i2i}
for _, c in ipairs(cases) do
  local d = same(call(pipes[c[2]], c[3]).images, c[1])
  print(string.format("%-20s max difference %.2e", c[1], d))
end

-- LCM-LoRA's way: a plain model, LCMScheduler, the LoRA (Kohya keys on every module its
-- training targets, 3x3 convolutions and samplers included), guidance 1
do
  local plain = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
  plain.scheduler = LCMScheduler.from_config(plain.scheduler.config)
  plain:load_lora_weights(src .. "/tests/models/tiny-lcm-lora")
  plain:set_progress_bar_config{disable = true}
  local d = same(call(plain, {prompt = "a cat on a bench", num_inference_steps = 4,
                              guidance_scale = 1.0, seed = 15}).images, "lcm_lora")
  print(string.format("%-20s max difference %.2e", "lcm_lora", d))
end

-- the guidance embedding matters: another scale, another picture
do
  local other = call(lcm, {prompt = "a cat on a bench", guidance_scale = 2.0, seed = 1}).images
  local d = (other - torch.load_npy(ref .. "lcm_defaults.npy")):abs():max():item()
  check.truthy(d > 0.02, "guidance_scale changes the picture: " .. d)
end

-- the UNet with a timestep_cond
do
  local x, e = torch.load_npy(ref .. "call_sample.npy"), torch.load_npy(ref .. "call_ehs.npy")
  local pred = lcm.unet(x, 501, {encoder_hidden_states = e,
                                 timestep_cond = torch.load_npy(ref .. "call_cond.npy")}).sample
  local err = check.rel_err(pred, torch.load_npy(ref .. "call_unet.npy"), "unet with timestep_cond")
  check.truthy(err < 1e-5, "unet with timestep_cond: relative error " .. err)
  check.raises("this UNet takes timestep_cond (2, 8)", function()
    lcm.unet(x, 501, {encoder_hidden_states = e})
  end)
end

-- AutoPipelineForText2Image's "lcm" row
local auto = AutoPipelineForText2Image.from_pretrained(model)
check.truthy(tostring(auto):find("LatentConsistencyModelPipeline"), "AutoPipeline's class")

check.raises("AutoPipeline can't find a pipeline linked to LatentConsistencyModelPipeline",
             function() AutoPipelineForInpainting.from_pipe(lcm) end)
check.raises("`original_steps x strength`: 50 x 0.1 is smaller than `num_inference_steps`: 8",
             function() i2i{prompt = "a cat", image = Image.open(ref .. "sketch64.png"),
                            strength = 0.1, num_inference_steps = 8} end)

-- what a typo or a wrong scheduler gets
check.raises("unexpected", function() lcm{prompt = "a cat", negative_prompt = "blurry"} end)
check.raises("`num_inference_steps`: 60", function()
  lcm{prompt = "a cat", num_inference_steps = 60}
end)
do
  local other = LatentConsistencyModelPipeline(lcm.components)
  other.scheduler = DDIMScheduler.from_config(lcm.scheduler.config)
  check.raises("got an unexpected keyword argument 'original_inference_steps'", function()
    other{prompt = "a cat", num_inference_steps = 2}
  end)
  local plain = LatentConsistencyModelPipeline(
    StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a").components)
  plain.scheduler = LCMScheduler.from_config(plain.scheduler.config)
  check.raises("needs a latent consistency model's UNet", function()
    plain{prompt = "a cat", num_inference_steps = 2}
  end)
end
-- still runs
same(call(lcm, cases[1][3]).images, "lcm_defaults", "after the errors")
