-- DiffusionPipeline and the Auto pipelines pick the class diffusers would; from_pipe
-- shares the models; set_progress_bar_config hides the bar.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local model = root .. "/models/tiny-sd-a"
local init = Image.open(root .. "/reference/tiny-sd-a/init_image.png")

local function t2i(pipe, seed)
  return pipe{prompt = "a cat", num_inference_steps = 3, output_type = "np",
              generator = torch.Generator():manual_seed(seed or 1)}.images
end
local function i2i(pipe, seed)
  return pipe{prompt = "a sketch", image = init, strength = 0.7, num_inference_steps = 4, output_type = "np",
              generator = torch.Generator():manual_seed(seed or 2)}.images
end
local function same(a, b, what) check.eq((a - b):abs():max():item(), 0.0, what) end
local function class(pipe) return tostring(pipe):match("^<(%S+)") end

local plain_t2i = StableDiffusionPipeline.from_pretrained(model)
local plain_i2i = StableDiffusionImg2ImgPipeline.from_pretrained(model)
local want_t2i, want_i2i = t2i(plain_t2i), i2i(plain_i2i)

-- DiffusionPipeline: the class model_index.json names.
local dp = DiffusionPipeline.from_pretrained(model)
check.eq(class(dp), "StableDiffusionPipeline", "DiffusionPipeline reads _class_name")
same(t2i(dp), want_t2i, "DiffusionPipeline's pictures")

-- A copy of the model whose model_index.json names another class.
local function model_named(cls)
  local dir = check.tmpdir()
  for _, part in ipairs {"unet", "vae", "text_encoder", "tokenizer", "scheduler"} do
    os.execute(string.format("ln -s '%s/%s' '%s/%s'", model, part, dir, part))
  end
  local src = assert(io.open(model .. "/model_index.json")):read("a")
  local out = assert(io.open(dir .. "/model_index.json", "w"))
  out:write((src:gsub('"_class_name": "[^"]*"', '"_class_name": "' .. cls .. '"')))
  out:close()
  return dir
end
local named_i2i = model_named("StableDiffusionImg2ImgPipeline")
check.eq(class(DiffusionPipeline.from_pretrained(named_i2i)), "StableDiffusionImg2ImgPipeline",
         "an img2img model loads as img2img")
local xl = model_named("StableDiffusionXLPipeline")
-- an SD 1.x model's files under SDXL's class name: the class wants the second text encoder
check.raises("StableDiffusionXLPipeline needs a Stable Diffusion XL model",
             function() DiffusionPipeline.from_pretrained(xl) end)
check.raises("StableDiffusionXLPipeline needs a Stable Diffusion XL model",
             function() AutoPipelineForText2Image.from_pretrained(xl) end)
check.raises("this model is a StableDiffusionDepth2ImgPipeline",
             function() DiffusionPipeline.from_pretrained(model_named("StableDiffusionDepth2ImgPipeline")) end)
-- an SD model's files under the upscaler's class name: it lacks the low_res_scheduler
check.raises("StableDiffusionUpscalePipeline needs an upscaler's model",
             function() DiffusionPipeline.from_pretrained(model_named("StableDiffusionUpscalePipeline")) end)
check.raises("this is an upscaler's model", function()
  StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-upscaler")
end)
check.raises("no model folder", function() DiffusionPipeline.from_pretrained(root .. "/models/none") end)

-- The Auto classes: the task's pipeline of the model's family.
local auto_i2i = AutoPipelineForImage2Image.from_pretrained(model)
check.eq(class(auto_i2i), "StableDiffusionImg2ImgPipeline", "AutoPipelineForImage2Image")
same(i2i(auto_i2i), want_i2i, "AutoPipelineForImage2Image's pictures")
local auto_t2i = AutoPipelineForText2Image.from_pretrained(named_i2i)
check.eq(class(auto_t2i), "StableDiffusionPipeline", "AutoPipelineForText2Image of an img2img model")
local inpaint = model_named("StableDiffusionInpaintPipeline")
check.eq(class(AutoPipelineForImage2Image.from_pretrained(inpaint)), "StableDiffusionImg2ImgPipeline",
         "the inpainting pipeline's family")

-- from_pipe: the same models and parts, no new load; each pipeline its own scheduler.
do
  local base = StableDiffusionPipeline.from_pretrained(model)
  local other = AutoPipelineForImage2Image.from_pipe(base)
  check.eq(class(other), "StableDiffusionImg2ImgPipeline", "from_pipe gives the task's class")
  check.truthy(rawequal(other.unet, base.unet) and rawequal(other.vae, base.vae) and
               rawequal(other.text_encoder, base.text_encoder) and rawequal(other.tokenizer, base.tokenizer),
               "the same components")
  same(i2i(other), want_i2i, "from_pipe's img2img pictures")
  other.scheduler = DDIMScheduler.from_config(other.scheduler.config)
  check.truthy(tostring(base.scheduler):find("PNDM"), "the first pipeline keeps its scheduler")
  same(t2i(base), want_t2i, "the first pipeline's pictures")
  local back = AutoPipelineForText2Image.from_pipe(other, {scheduler = PNDMScheduler.from_config(base.scheduler.config)})
  check.truthy(tostring(back.scheduler):find("PNDM"), "a scheduler passed to from_pipe is used")
  same(t2i(back), want_t2i, "from_pipe back to text-to-image")
  check.raises("pipe.scheduler: a scheduler expected",
               function() AutoPipelineForText2Image.from_pipe(base, {scheduler = 3}) end)
  check.raises("a pipeline", function() AutoPipelineForText2Image.from_pipe({}) end)
  -- vae slicing is the shared VAE's setting, as diffusers' enable_vae_slicing sets it on pipe.vae
  local comps = base.components
  check.truthy(rawequal(comps.unet, base.unet) and rawequal(comps.scheduler, base.scheduler),
               "pipe.components")
  -- Closing one pipeline leaves the models to the others.
  do local closing <close> = base end
  check.raises("this pipeline was closed", function() t2i(base) end)
  other.scheduler = back.scheduler
  same(i2i(other), want_i2i, "after the first is closed, the second runs")
  do local c1 <close> = other end
  same(t2i(back), want_t2i, "the last one still runs")
  check.truthy(tostring(comps.vae):find("on cpu"), "its models too: " .. tostring(comps.vae))
  -- With the last one closed, the models go; objects that were handed out say so.
  do local c2 <close> = back end
  check.raises("CLIPTextModel: the pipeline it belongs to was closed",
               function() comps.text_encoder(torch.tensor({{1, 2, 3}})) end)
  check.truthy(tostring(comps.unet):find("closed"), "tostring of a model of a closed pipeline")
end

-- StableDiffusionImg2ImgPipeline(pipe.components), as diffusers' (**pipe.components).
do
  local base = StableDiffusionPipeline.from_pretrained(model)
  local built = StableDiffusionImg2ImgPipeline(base.components)
  check.eq(class(built), "StableDiffusionImg2ImgPipeline", "a class called with components")
  check.truthy(rawequal(built.unet, base.unet) and rawequal(built.tokenizer, base.tokenizer), "its components")
  same(i2i(built), want_i2i, "the built pipeline's pictures")
  local comps = base.components
  comps.scheduler = DDIMScheduler.from_config(base.scheduler.config)
  check.truthy(tostring(StableDiffusionPipeline(comps).scheduler):find("DDIM"), "a scheduler of one's own")
  local other = StableDiffusionPipeline.from_pretrained(model)
  comps.vae = other.vae
  check.raises("component 'vae' comes from another pipeline than 'unet'",
               function() StableDiffusionPipeline(comps) end)
  comps.vae = AutoencoderKL.from_pretrained(model .. "/vae")
  check.raises("this AutoencoderKL was loaded on its own", function() StableDiffusionPipeline(comps) end)
  check.raises("component 'unet': UNet2DConditionModel expected, got nil",
               function() StableDiffusionPipeline{vae = base.vae} end)
  check.raises("unexpected option 'unnet'", function() StableDiffusionPipeline{unnet = base.unet} end)
end

-- set_progress_bar_config{disable = true} hides the bar; desc labels it.
local sdrepl = os.getenv("SDREPL")
if sdrepl then
  local function bar(config)
    local code = string.format([[p = StableDiffusionPipeline.from_pretrained(%q) %s
      p{prompt = "a", num_inference_steps = 3, output_type = "latent"} print("done")]], model, config)
    local f = assert(io.popen(string.format("SDREPL_NO_WINDOW=1 %q -e %q 2>&1", sdrepl, code)))
    local out = f:read("a")
    f:close()
    check.truthy(out:find("done"), "the run finished: " .. out)
    return out
  end
  -- the bar's "n/total [elapsed<left, rate]" (the rate is s/it on a slow machine)
  check.truthy(bar(""):find("%d+/%d+ %["), "a bar by default")
  check.truthy(not bar("p:set_progress_bar_config{disable = true}"):find("%d+/%d+ %["), "no bar when disabled")
  check.truthy(bar('p:set_progress_bar_config{desc = "denoising"}'):find("denoising"), "desc labels the bar")
end
-- from_pretrained(..., {vae = ..., scheduler = ...}): parts given instead of the folder's.
do
  local vae = AutoencoderKL.from_pretrained(model, {subfolder = "vae"})
  local sched = DDIMScheduler.from_pretrained(model, {subfolder = "scheduler"})
  local z = torch.randn({1, 4, 16, 16}, {generator = torch.Generator():manual_seed(5)})
  local before = vae:decode(z).sample
  local p = StableDiffusionPipeline.from_pretrained(model, {vae = vae, scheduler = sched})
  check.truthy(rawequal(p.vae, vae) and rawequal(p.scheduler, sched), "pipe.vae and pipe.scheduler are those given")
  check.eq((vae:decode(z).sample - before):abs():max():item(), 0.0, "the VAE object runs on, now the pipeline's")
  -- StableDiffusionPipeline's __init__ sets the given DDIM's clip_sample (true by default, the
  -- folder's PNDM config has none) to false, as diffusers'; a scheduler set afterwards keeps it
  check.eq(sched.config.clip_sample, false, "the given scheduler's outdated clip_sample updated")
  local q = StableDiffusionPipeline.from_pretrained(model)
  q.scheduler = DDIMScheduler.from_config(q.scheduler.config)
  check.eq(q.scheduler.config.clip_sample, true, "pipe.scheduler = ... is not updated")
  q.scheduler = DDIMScheduler.from_config(q.scheduler.config, {clip_sample = false})
  same(t2i(p), t2i(q), "the given parts' pictures")
  -- another pipeline's VAE (diffusers' refiner given base.vae): the same pictures, and q keeps it
  local r = StableDiffusionPipeline.from_pretrained(model, {vae = q.vae, scheduler = sched})
  same(t2i(r), t2i(q), "another pipeline's VAE")
  check.truthy(q.vae:decode(z).sample, "the VAE stays its pipeline's")
  check.raises("option 'vae': AutoencoderKL or AutoencoderTiny expected, got UNet2DConditionModel",
               function() StableDiffusionPipeline.from_pretrained(model, {vae = q.unet}) end)
  check.raises("option 'scheduler': a scheduler expected, got number",
               function() StableDiffusionPipeline.from_pretrained(model, {scheduler = 1}) end)
  -- A UNet that does not fit fails the load and stays its own.
  local other = UNet2DConditionModel.from_pretrained(root .. "/models/tiny-sd-b", {subfolder = "unet"})
  check.raises("the text encoder is 32 wide, the UNet attends to 24",
               function() StableDiffusionPipeline.from_pretrained(model, {unet = other}) end)
  check.truthy(tostring(other):find("on cpu"), "the UNet after a failed load: " .. tostring(other))
  do local closing <close> = p end
  check.raises("the pipeline it belongs to was closed", function() vae:decode(z) end)
end

-- Python habits get errors that say what Lua wants instead.
check.raises("images[0]: lists count from 1 in Lua", function() return plain_t2i{prompt = "a", num_inference_steps = 2}.images[0] end)
check.raises("index 0: indices count from 1 here", function() return torch.zeros(2)[0] end)
check.eq(tostring(torch.Generator{device = "cuda"}):match("device=(%a+)"), "cuda", "torch.Generator{device = ...}")

-- return_dict = false: diffusers' tuple, (images, has_nsfw_concept) -> {images}.
local tuple = plain_t2i{prompt = "a cat", num_inference_steps = 3, output_type = "np", return_dict = false,
                        generator = torch.Generator():manual_seed(1)}
check.truthy(tuple.images == nil and tuple[2] == nil, "a list, not a dict")
same(tuple[1], want_t2i, "its first entry is the images")
check.raises("unexpected option 'leaves'", function() plain_t2i:set_progress_bar_config{leaves = false} end)
plain_t2i:set_progress_bar_config{leave = false, position = 0, ncols = 80} -- tqdm's, taken
plain_t2i:disable_attention_slicing()
plain_t2i:enable_xformers_memory_efficient_attention()
same(t2i(plain_t2i), want_t2i, "attention options change nothing")
print("ok")
