-- The call's options beyond the plain ones, against diffusers 0.27.2: prompt_embeds,
-- negative_prompt_embeds, guidance_rescale, eta (tests/reference/call_options, made by
-- scripts/reference/make_call_option_cases.py with the same arguments as CASES below);
-- pipe:encode_prompt and the older callback. The embeddings given are the generator's own (*.npy), mixed, scaled or
-- shortened so that no prompt text makes them. Tolerance 2e-3 max abs on the np
-- output, as the other whole runs.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/call_options/"
local TOL = 2e-3

-- {name, kind, arguments, embeddings given, scheduler, seed}
local CASES = {
  {"t2i_mix_n2", "txt2img", {num_images_per_prompt = 2, num_inference_steps = 6},
   {"prompt_embeds"}, "DDIMScheduler", 1},
  {"t2i_both_list", "txt2img", {num_inference_steps = 5},
   {"prompt_embeds", "negative_prompt_embeds"}, "PNDMScheduler", 2},
  {"t2i_short_neg_text", "txt2img", {negative_prompt = "ugly", num_inference_steps = 5},
   {"prompt_embeds"}, "EulerDiscreteScheduler", 3},
  {"t2i_short_empty_neg", "txt2img", {num_inference_steps = 4}, {"prompt_embeds"}, "DDIMScheduler", 4},
  {"t2i_text_neg_embeds", "txt2img", {prompt = "a cat", num_inference_steps = 6},
   {"negative_prompt_embeds"}, "DPMSolverMultistepScheduler", 5},
  {"t2i_noguidance", "txt2img", {guidance_scale = 1.0, num_inference_steps = 5},
   {"prompt_embeds", "negative_prompt_embeds"}, "PNDMScheduler", 6},
  {"t2i_rescale_n2", "txt2img", {prompt = "a photograph", guidance_rescale = 0.7, guidance_scale = 9.0,
                                 num_images_per_prompt = 2, num_inference_steps = 6},
   {}, "EulerAncestralDiscreteScheduler", 7},
  {"t2i_rescale_full", "txt2img", {prompt = {"a cat", "a dog"}, negative_prompt = {"ugly", "dark"},
                                   guidance_rescale = 1.0, num_inference_steps = 5},
   {}, "DDIMScheduler", 8},
  {"i2i_embeds", "img2img", {negative_prompt = "blurry", strength = 0.7, num_inference_steps = 8},
   {"prompt_embeds"}, "PNDMScheduler", 9},
  {"t2i_eta1_n2", "txt2img", {prompt = "a cat", eta = 1.0, num_images_per_prompt = 2, num_inference_steps = 6},
   {}, "DDIMScheduler", 10},
  {"t2i_eta05_gens", "txt2img", {prompt = {"a cat", "a dog"}, eta = 0.5, num_inference_steps = 5},
   {}, "DDIMScheduler", {11, 12}},
  {"i2i_eta1", "img2img", {prompt = "a sketch", eta = 1.0, strength = 0.8, num_inference_steps = 6},
   {}, "DDIMScheduler", 13},
  {"t2i_unipc", "txt2img", {prompt = "a cat", num_inference_steps = 6}, {}, "UniPCMultistepScheduler", 14},
  {"t2i_heun", "txt2img", {prompt = "a cat", num_inference_steps = 5}, {}, "HeunDiscreteScheduler", 15},
  {"i2i_heun", "img2img", {prompt = "a sketch", strength = 0.7, num_inference_steps = 6}, {},
   "HeunDiscreteScheduler", 16},
  {"t2i_ddpm", "txt2img", {prompt = "a cat", num_inference_steps = 6}, {}, "DDPMScheduler", 17},
  -- tiny-sd-b's text encoder has 2 layers: clip_skip=2 takes the embeddings' output
  {"t2i_clip_skip_2", "txt2img", {prompt = "a cat", clip_skip = 2, num_inference_steps = 4}, {},
   "EulerDiscreteScheduler", 18},
  -- custom timesteps (retrieve_timesteps), which DDPM alone takes among these
  {"t2i_ddpm_timesteps", "txt2img", {prompt = "a cat", timesteps = {999, 800, 601, 400, 250, 90, 3}}, {},
   "DDPMScheduler", 19},
  {"i2i_ddpm_timesteps", "img2img", {prompt = "a sketch", strength = 0.6, timesteps = {950, 700, 420, 200, 50}},
   {}, "DDPMScheduler", 20},
  {"t2i_kdpm2", "txt2img", {prompt = "a cat", num_inference_steps = 5}, {}, "KDPM2DiscreteScheduler", 21},
  {"i2i_kdpm2", "img2img", {prompt = "a sketch", strength = 0.7, num_inference_steps = 6}, {},
   "KDPM2DiscreteScheduler", 22},
  {"t2i_kdpm2_a_n2", "txt2img", {prompt = "a cat", num_inference_steps = 5, num_images_per_prompt = 2}, {},
   "KDPM2AncestralDiscreteScheduler", 23},
  {"t2i_kdpm2_a_gens", "txt2img", {prompt = {"a cat", "a dog"}, num_inference_steps = 4}, {},
   "KDPM2AncestralDiscreteScheduler", {24, 25}},
  {"i2i_kdpm2_a", "img2img", {prompt = "a sketch", strength = 0.7, num_inference_steps = 6}, {},
   "KDPM2AncestralDiscreteScheduler", 26},
  {"t2i_deis", "txt2img", {prompt = "a cat", num_inference_steps = 6}, {}, "DEISMultistepScheduler", 27},
  {"i2i_deis", "img2img", {prompt = "a sketch", strength = 0.75, num_inference_steps = 8}, {},
   "DEISMultistepScheduler", 28},
  {"t2i_dpm_single", "txt2img", {prompt = "a cat", num_inference_steps = 7}, {}, "DPMSolverSinglestepScheduler", 29},
  {"i2i_dpm_single", "img2img", {prompt = "a sketch", strength = 0.7, num_inference_steps = 9}, {},
   "DPMSolverSinglestepScheduler", 30},
  {"t2i_lcm", "txt2img", {prompt = "a cat", num_inference_steps = 4, guidance_scale = 1.0}, {},
   "LCMScheduler", 31},
  {"t2i_lcm_gens", "txt2img", {prompt = {"a cat", "a dog"}, num_inference_steps = 3,
                               guidance_scale = 1.5}, {}, "LCMScheduler", {32, 33}},
  {"i2i_lcm", "img2img", {prompt = "a sketch", strength = 0.6, num_inference_steps = 5,
                          guidance_scale = 1.0}, {}, "LCMScheduler", 34},
  {"t2i_lcm_timesteps", "txt2img", {prompt = "a cat", timesteps = {999, 759, 499, 259},
                                    guidance_scale = 1.0}, {}, "LCMScheduler", 35},
  {"i2i_strength09", "img2img", {prompt = "a sketch", strength = 0.9, num_inference_steps = 10},
   {}, "DDIMScheduler", 36},
}

local function run(pipe, kind, name, args, sched, seed, model, embeds)
  pipe.scheduler = _G[sched].from_config(pipe.scheduler.config)
  local call = {output_type = "np"}
  if type(seed) == "table" then
    call.generator = {}
    for i, v in ipairs(seed) do call.generator[i] = torch.Generator():manual_seed(v) end
  else
    call.generator = torch.Generator():manual_seed(seed)
  end
  for k, v in pairs(args) do call[k] = v end
  if kind == "img2img" then call.image = Image.open(root .. "/reference/" .. model .. "/init_image.png") end
  for _, key in ipairs(embeds) do
    call[key] = torch.load_npy(ref .. model .. "_" .. name .. "_" .. key .. ".npy")
  end
  return pipe(call).images
end

local function compare(got, model, name)
  local want = torch.load_npy(ref .. model .. "_" .. name .. "_images.npy")
  for i = 1, #want.shape do check.eq(got.shape[i], want.shape[i], name .. " shape[" .. i .. "]") end
  local diff = (got - want):abs():max():item()
  check.truthy(diff == diff and diff < TOL, string.format("%s %s: max abs diff %.3g", model, name, diff))
  print(string.format("%s %-20s max abs diff %.2e", model, name, diff))
end

for _, model in ipairs {"tiny-sd-a", "tiny-sd-b"} do
  local path = root .. "/models/" .. model
  local pipes = {txt2img = StableDiffusionPipeline.from_pretrained(path),
                 img2img = StableDiffusionImg2ImgPipeline.from_pretrained(path)}
  for _, case in ipairs(CASES) do
    local name, kind, args, embeds, sched, seed = table.unpack(case)
    compare(run(pipes[kind], kind, name, args, sched, seed, model, embeds), model, name)
  end
end

local pipe = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a")
local init = Image.open(root .. "/reference/tiny-sd-a/init_image.png")
local embeds = torch.load_npy(ref .. "tiny-sd-a_t2i_both_list_prompt_embeds.npy")
local negs = torch.load_npy(ref .. "tiny-sd-a_t2i_both_list_negative_prompt_embeds.npy")
local short = torch.load_npy(ref .. "tiny-sd-a_t2i_short_empty_neg_prompt_embeds.npy")

-- The text encoder's own output, given back as prompt_embeds, is the prompt's picture.
do
  local ids = pipe.tokenizer({"a red cube", "a lake"}, {padding = "max_length", max_length = 77,
                                                        truncation = true, return_tensors = "pt"}).input_ids
  local mine = pipe.text_encoder(ids).last_hidden_state
  check.truthy((mine - embeds):abs():max():item() < 1e-5, "text_encoder output is the reference's")
  local a = pipe{prompt = {"a red cube", "a lake"}, num_inference_steps = 3, output_type = "np",
                 generator = torch.Generator():manual_seed(4)}.images
  local b = pipe{prompt_embeds = mine, num_inference_steps = 3, output_type = "np",
                 generator = torch.Generator():manual_seed(4)}.images
  check.truthy((a - b):abs():max():item() < 1e-5, "prompt_embeds from the text encoder = the prompt")
end

-- pipe:encode_prompt gives what a call uses, repeated per image: handed back, the same picture.
do
  local pe, ne = pipe:encode_prompt("a red cube", "cpu", 2, true, {negative_prompt = "blurry"})
  check.eq(table.concat(pe.shape, ","), "2,77,32", "prompt_embeds repeated per image")
  check.eq(table.concat(ne.shape, ","), "2,77,32", "negative_prompt_embeds too")
  check.truthy((pe[1] - embeds[1]):abs():max():item() < 1e-5, "the text encoder's output (as diffusers')")
  local function go(args)
    args.num_inference_steps, args.output_type = 3, "np"
    args.generator = torch.Generator():manual_seed(8)
    return pipe(args).images
  end
  local a = go {prompt = "a red cube", negative_prompt = "blurry", num_images_per_prompt = 2}
  local b = go {prompt_embeds = pe, negative_prompt_embeds = ne}
  check.eq((a - b):abs():max():item(), 0.0, "encode_prompt's embeddings give the call's pictures")
  local one, none = pipe:encode_prompt({"a", "b"}, nil, 1, false)
  check.truthy(one.shape[1] == 2 and none == nil, "no negative without guidance")
  local skip = pipe:encode_prompt("a cat", nil, 1, false, {clip_skip = 1})
  check.truthy((skip - pipe:encode_prompt("a cat", nil, 1, false)):abs():max():item() > 0, "clip_skip")
  -- tiny-sd-a has 3 layers: clip_skip 3 is the embeddings' output, 4 is past it (an
  -- IndexError in diffusers)
  check.eq(pipe:encode_prompt("a cat", nil, 1, false, {clip_skip = 3}).shape[2], 77, "clip_skip = layers")
  check.raises("clip_skip 4: the text encoder has 3 layers",
               function() pipe:encode_prompt("a cat", nil, 1, false, {clip_skip = 4}) end)
  check.raises("does not support custom timestep schedules",
               function() pipe{prompt = "a cat", timesteps = {900, 500}} end)
  check.raises("entry 2 is string", function() pipe{prompt = "a cat", timesteps = {900, "500"}} end)
  check.raises("option 'prompt' is required", function() pipe:encode_prompt(nil) end)
  check.raises("unexpected option 'negative'", function() pipe:encode_prompt("a", nil, 1, true, {negative = "x"}) end)
end

-- check_inputs' errors, and the pipeline stays usable after them.
check.raises("Cannot forward both `prompt` and `prompt_embeds`",
             function() pipe{prompt = "x", prompt_embeds = embeds, num_inference_steps = 1} end)
check.raises("Cannot forward both `negative_prompt` and `negative_prompt_embeds`",
             function() pipe{prompt_embeds = embeds, negative_prompt = {"a", "b"},
                             negative_prompt_embeds = negs, num_inference_steps = 1} end)
check.raises("`prompt_embeds` and `negative_prompt_embeds` must have the same shape",
             function() pipe{prompt_embeds = short, negative_prompt_embeds = negs, num_inference_steps = 1} end)
check.raises("negative_prompt_embeds: shape (1, 77, 32) expected",
             function() pipe{prompt = "x", negative_prompt_embeds = negs, num_inference_steps = 1} end)
check.raises("option 'prompt_embeds': a 3-dimensional tensor expected",
             function() pipe{prompt_embeds = torch.zeros(2, 77), num_inference_steps = 1} end)
check.raises("option 'prompt_embeds': Tensor expected",
             function() pipe{prompt_embeds = "a cat", num_inference_steps = 1} end)
check.raises("prompt_embeds: shape (batch, tokens, 32) expected",
             function() pipe{prompt_embeds = torch.zeros(1, 77, 16), num_inference_steps = 1} end)
check.raises("exceed the text encoder's 77 positions",
             function() pipe{prompt_embeds = torch.zeros(1, 80, 32), num_inference_steps = 1} end)
check.raises("option 'prompt' is required",
             function() pipe{negative_prompt_embeds = negs, num_inference_steps = 1} end)
check.raises("`negative_prompt`: 1 given for 2 prompts",
             function() pipe{prompt_embeds = embeds, negative_prompt = "x", num_inference_steps = 1} end)

-- A longer sequence than the tokenizer's works without guidance (no text is encoded).
local long = pipe{prompt_embeds = torch.zeros(1, 80, 32), guidance_scale = 1.0, num_inference_steps = 1,
                  output_type = "latent"}.images
check.eq(long.shape[1], 1, "80 tokens of embeddings without guidance")

-- The images' parameters hold no prompt text when embeddings were given.
local img = pipe{prompt_embeds = short, num_inference_steps = 2}.images[1]
check.truthy(img.info.parameters:find("^\nSteps: 2"), "parameters: " .. img.info.parameters)

-- The older callback: every callback_steps steps, (i, t, latents), after callback_on_step_end.
do
  pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
  local seen, order = {}, {}
  local out = pipe{prompt = "a cat", num_inference_steps = 5, callback_steps = 2, output_type = "np",
                   generator = torch.Generator():manual_seed(3),
                   callback_on_step_end = function(_, i) order[#order + 1] = "end" .. i end,
                   callback = function(i, t, latents)
                     seen[#seen + 1] = {i, t, latents.shape[2]}
                     order[#order + 1] = "cb" .. i
                   end}.images
  check.eq(#seen, 3, "callback at steps 0, 2 and 4")
  check.eq(seen[2][1], 2, "second call at step 2")
  check.eq(seen[1][2], pipe.scheduler.timesteps[1]:item(), "t is the step's timestep")
  check.eq(seen[1][3], 4, "latents (B, 4, h, w)")
  check.eq(table.concat(order, " "), "end0 cb0 end1 end2 cb2 end3 end4 cb4", "callback_on_step_end first")
  local plain = pipe{prompt = "a cat", num_inference_steps = 5, output_type = "np",
                     generator = torch.Generator():manual_seed(3)}.images
  check.truthy((out - plain):abs():max():item() == 0, "a callback that returns nothing changes nothing")
  check.raises("`callback_steps` has to be a positive integer but is 0",
               function() pipe{prompt = "x", callback = print, callback_steps = 0} end)
  check.raises("callback: boom", function()
    pipe{prompt = "x", num_inference_steps = 2, callback = function() error("boom", 0) end}
  end)
end

-- img2img has no guidance_rescale in diffusers (its **kwargs swallow it): the same pictures.
do
  local i2i = StableDiffusionImg2ImgPipeline.from_pretrained(root .. "/models/tiny-sd-a")
  local function go(r)
    return i2i{prompt = "a sketch", image = init, strength = 0.6, num_inference_steps = 4, output_type = "np",
               guidance_rescale = r, generator = torch.Generator():manual_seed(1)}.images
  end
  check.truthy((go(0.7) - go(0.0)):abs():max():item() == 0, "img2img ignores guidance_rescale")
end

local after = pipe{prompt = "x", num_inference_steps = 2, output_type = "latent"}.images
check.eq(after.shape[2], 4, "usable after the errors")
print("ok")
