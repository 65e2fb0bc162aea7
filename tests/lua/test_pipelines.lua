-- Whole txt2img and img2img runs against diffusers 0.27.2 on both tiny models
-- (tests/reference/<model>/run_*.npy, made by scripts/reference/make_tiny_models.py
-- with the same arguments as RUNS below). output_type = "np"; tolerance 2e-3 max abs,
-- given the same seed: torch.manual_seed and torch.Generator reproduce torch's draws.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local TOL = 2e-3

local RUNS = {
  {"t2i_pndm", "txt2img", {prompt = "a photograph of an astronaut riding a horse", num_inference_steps = 10},
   "PNDMScheduler", "global", 0},
  {"t2i_ddim_n3", "txt2img", {prompt = "a red cube", negative_prompt = "blurry", num_images_per_prompt = 3,
                              num_inference_steps = 8, guidance_scale = 5.0}, "DDIMScheduler", "generator", 42},
  {"t2i_eulera", "txt2img", {prompt = {"a cat", "a dog"}, num_inference_steps = 7},
   "EulerAncestralDiscreteScheduler", "generator", 3},
  {"t2i_dpm_noguidance", "txt2img", {prompt = "a lake at dawn", num_inference_steps = 9, guidance_scale = 1.0},
   "DPMSolverMultistepScheduler", "global", 5},
  {"t2i_clip_skip", "txt2img", {prompt = "an oil painting", num_inference_steps = 5, clip_skip = 1},
   "PNDMScheduler", "global", 9},
  {"i2i_pndm_s08_n3", "img2img", {prompt = "face of a human in  joy", strength = 0.8, num_images_per_prompt = 3,
                                  num_inference_steps = 10}, "PNDMScheduler", "global", 100},
  {"i2i_pndm_s03", "img2img", {prompt = "electronic art   of an angry human by Leonardo da Vinci", strength = 0.3,
                               num_inference_steps = 10}, "PNDMScheduler", "global", 1000},
  {"i2i_ddim_s10", "img2img", {prompt = "a sketch", strength = 1.0, num_inference_steps = 6},
   "DDIMScheduler", "generator", 7},
  {"i2i_eulera_s075", "img2img", {prompt = "a sketch", strength = 0.75, num_inference_steps = 8},
   "EulerAncestralDiscreteScheduler", "generator", 8},
  {"i2i_dpm_s08", "img2img", {prompt = "a sketch", strength = 0.8, num_inference_steps = 10, negative_prompt = "ugly"},
   "DPMSolverMultistepScheduler", "global", 11},
  {"t2i_eulera_list", "txt2img", {prompt = "a cat", num_images_per_prompt = 2, num_inference_steps = 6},
   "EulerAncestralDiscreteScheduler", "generators", 21},
  {"i2i_eulera_list_n3", "img2img", {prompt = "a sketch", strength = 0.8, num_images_per_prompt = 3,
                                     num_inference_steps = 8}, "EulerAncestralDiscreteScheduler", "generators", 31},
}

for _, model in ipairs {"tiny-sd-a", "tiny-sd-b"} do
  local path = root .. "/models/" .. model
  local ref = root .. "/reference/" .. model .. "/"
  local pipes = {txt2img = StableDiffusionPipeline.from_pretrained(path),
                 img2img = StableDiffusionImg2ImgPipeline.from_pretrained(path)}
  local init = Image.open(ref .. "init_image.png")
  for _, run in ipairs(RUNS) do
    local name, kind, args, sched, how, seed = table.unpack(run)
    local pipe = pipes[kind]
    pipe.scheduler = _G[sched].from_config(pipe.scheduler.config)
    local call = {output_type = "np"}
    for k, v in pairs(args) do call[k] = v end
    if kind == "img2img" then call.image = init end
    if how == "global" then
      torch.manual_seed(seed)
    elseif how == "generators" then -- a list, one per image, seeded seed, seed + 1, ...
      local n = (type(args.prompt) == "table" and #args.prompt or 1) * (args.num_images_per_prompt or 1)
      call.generator = {}
      for i = 1, n do call.generator[i] = torch.Generator():manual_seed(seed + i - 1) end
    else
      call.generator = torch.Generator():manual_seed(seed)
    end
    local got = pipe(call).images
    local want = torch.load_npy(ref .. "run_" .. name .. ".npy")
    for i = 1, #want.shape do check.eq(got.shape[i], want.shape[i], name .. " shape[" .. i .. "]") end
    local diff = (got - want):abs():max():item()
    check.truthy(diff == diff and diff < TOL, string.format("%s %s: max abs diff %.3g", model, name, diff))
    print(string.format("%s %-20s max abs diff %.2e", model, name, diff))
  end
end

-- Images carry how they were made, and PIL output is numpy's rounding of the np output.
local pipe = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a")
torch.manual_seed(0)
local images = pipe{prompt = "a photograph of an astronaut riding a horse", num_inference_steps = 10}.images
check.eq(#images, 1, "one image")
check.eq(images[1].size[1], 64, "default width from unet.sample_size * vae_scale_factor")
local info = images[1].info.parameters
check.truthy(info:find("a photograph of an astronaut riding a horse", 1, true), "prompt in the parameters")
check.truthy(info:find("Steps: 10", 1, true) and info:find("Seed: 0", 1, true) and
             info:find("Sampler: DPMSolverMultistepScheduler", 1, true) == nil, "parameters: " .. info)

-- Bad input is a clear error and the pipeline stays usable.
check.raises("`height` and `width` have to be divisible by 8 but are 60 and 64",
             function() pipe{prompt = "x", height = 60, width = 64} end)
check.raises("option 'prompt' is required", function() pipe{} end)
-- diffusers' positional prompt: pipe("a cat", {...}) and pipe({"a", "b"}, {...}).
do
  local function opts() return {num_inference_steps = 2, output_type = "np", generator = torch.Generator():manual_seed(3)} end
  local function with(prompt) local o = opts() o.prompt = prompt return o end
  check.eq((pipe({"a cat", "a dog"}, opts()).images - pipe(with {"a cat", "a dog"}).images):abs():max():item(), 0.0,
           "a positional list")
  check.eq((pipe("a cat", opts()).images - pipe(with "a cat").images):abs():max():item(), 0.0, "a positional prompt")
  check.raises("the prompt is given twice", function() pipe("a", {prompt = "b"}) end)
  check.raises("unexpected positional value in the options table", function() pipe{"a cat", num_inference_steps = 2} end)
  check.raises("options come second only after a prompt", function() pipe({prompt = "a"}, {}) end)
end
check.raises("unexpected option 'strenght'", function() pipe{prompt = "x", strenght = 0.5} end)
check.raises("num_inference_steps must be a positive number, got -1",
             function() pipe{prompt = "x", num_inference_steps = -1} end)
check.raises("`negative_prompt`: 1 given for 2 prompts",
             function() pipe{prompt = {"a", "b"}, negative_prompt = {"c"}, num_inference_steps = 1} end)
check.raises("output_type", function() pipe{prompt = "x", output_type = "jpeg"} end)
local i2i = StableDiffusionImg2ImgPipeline.from_pretrained(root .. "/models/tiny-sd-a")
check.raises("The value of strength should in [0.0, 1.0] but is 1.5",
             function() i2i{prompt = "x", image = Image.new("RGB", {64, 64}), strength = 1.5} end)
check.raises("option 'image': an Image, a list of Images or a Tensor expected, got nil", function() i2i{prompt = "x"} end)
check.raises("no model folder at", function() StableDiffusionPipeline.from_pretrained(root .. "/models/none") end)
-- init_image= is the old name of image=.
local old = i2i{prompt = "x", init_image = Image.new("RGB", {64, 64}, {90, 90, 90}), strength = 0.5,
                num_inference_steps = 2, output_type = "np"}.images
check.eq(old.shape[1], 1, "init_image accepted")
local ok = pipe{prompt = "x", num_inference_steps = 2, output_type = "latent"}.images
check.eq(ok.shape[2], 4, "latent output after errors")

-- pipe.scheduler.compatibles: the scheduler classes that take its config.
local names = {}
for i, cls in ipairs(pipe.scheduler.compatibles) do names[i] = tostring(cls.from_config(pipe.scheduler.config)) end
check.eq(table.concat(names, " "), "<PNDMScheduler> <DDIMScheduler> <LMSDiscreteScheduler> <EulerDiscreteScheduler> " ..
         "<EulerAncestralDiscreteScheduler> <DPMSolverMultistepScheduler> <UniPCMultistepScheduler> " ..
         "<HeunDiscreteScheduler> <DDPMScheduler> <KDPM2DiscreteScheduler> <KDPM2AncestralDiscreteScheduler> " ..
         "<DEISMultistepScheduler> <DPMSolverSinglestepScheduler> <DPMSolverSDEScheduler>",
         "compatibles")

-- A config read back from Lua: UniPC's disable_corrector = [] comes out as an empty
-- table, which the config takes as the empty list it was.
local unipc = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
check.eq(type(unipc.config.disable_corrector), "table", "disable_corrector in Lua")
local again = UniPCMultistepScheduler.from_config(unipc.config)
check.eq(tostring(again), "<UniPCMultistepScheduler>", "UniPC from its own config")
again = UniPCMultistepScheduler.from_config(pipe.scheduler.config, {disable_corrector = {}, thresholding = true,
                                                                    sample_max_value = 2.0})
check.eq(again.config.sample_max_value, 2.0, "thresholding config")

-- set_timesteps(timesteps=[...]): DDPM's custom timesteps, and diffusers' refusals.
local ddpm = DDPMScheduler.from_config(pipe.scheduler.config)
ddpm:set_timesteps{timesteps = {999, 700, 300, 10}}
check.eq(tostring(ddpm.timesteps), "tensor([999, 700, 300,  10])", "custom timesteps")
ddpm:set_timesteps(nil, {timesteps = {500, 20}})
check.eq(tostring(ddpm.timesteps), "tensor([500,  20])", "custom timesteps as options")
check.raises("Can only pass one of `num_inference_steps` or `custom_timesteps`.",
             function() ddpm:set_timesteps(5, {timesteps = {3, 2}}) end)
check.raises("`custom_timesteps` must be in descending order.", function() ddpm:set_timesteps{timesteps = {3, 5}} end)
check.raises("`timesteps` must start before `self.config.train_timesteps`: 1000.",
             function() ddpm:set_timesteps{timesteps = {1000}} end)
check.raises("The current scheduler class PNDMScheduler's `set_timesteps` does not support custom timestep schedules.",
             function() PNDMScheduler.from_config(pipe.scheduler.config):set_timesteps{timesteps = {3}} end)
ddpm:set_timesteps(4)
check.eq(tostring(ddpm.timesteps), "tensor([751, 501, 251,   1])", "back to evenly spaced")
