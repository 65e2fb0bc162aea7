-- A typo never ends the session: every function and method sdrepl adds to Lua, called with
-- junk (no arguments, nil, negative, huge, NaN and infinite numbers, empty and wrong strings,
-- tables of the wrong shape, booleans, an Image, a tensor, a function), one argument and
-- pairs. Each call either works or raises a Lua error with a message; none may crash the
-- process, which is what this test's exit status shows. Instances too: Images, tensors,
-- generators, an ImageDraw, schedulers, a tokenizer and a loaded pipeline (tiny-sd-a).
-- Then each keyword of a pipeline call, one at a time, set to junk in an otherwise valid call,
-- in seven pipelines (SD and SDXL text and image to image, inpainting, T2I-Adapter, ControlNet).
-- Calls that write files, log in or download are left out (they would write into the source
-- tree or the user's token file).
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local skip_globals = {
  assert = 1, collectgarbage = 1, coroutine = 1, debug = 1, dofile = 1, error = 1, io = 1,
  ipairs = 1, load = 1, loadfile = 1, next = 1, os = 1, package = 1, pairs = 1, pcall = 1,
  print = 1, rawequal = 1, rawget = 1, rawlen = 1, rawset = 1, require = 1, select = 1,
  setmetatable = 1, getmetatable = 1, string = 1, table = 1, tonumber = 1, tostring = 1,
  type = 1, utf8 = 1, xpcall = 1, math = 1, _G = 1, arg = 1, _VERSION = 1, warn = 1,
  login = 1, notebook_login = 1, download = 1, FastDownload = 1, help = 1,
}
local function writes(name)
  return name:find("save", 1, true) or name:find("write", 1, true) or name:find("export", 1, true)
end

local img = Image.new("RGB", {8, 8}, {10, 20, 30})
local t = torch.randn({2, 3})
local singles = {0, -1, 3, 2.5, 1e300, 0 / 0, math.huge, -math.huge, "", "x", "RGB", "cuda", {},
                 {1, 2}, {-1, 5}, {"x"}, {1e300}, true, img, Image.new("L", {5, 7}), t,
                 function() end, {prompt = "x"}, {x = img}}
local pairs_of = {false, -1, 1e300, "x", {2, 2}, img}

local calls, errors = 0, 0
local function try(f, ...)
  calls = calls + 1
  local ok, err = pcall(f, ...)
  if not ok then
    errors = errors + 1
    check.truthy(type(err) == "string" and #err > 0, "an error comes with a message")
  end
end

local function fuzz(f, self)
  local function call(...)
    if self ~= nil then try(f, self, ...) else try(f, ...) end
  end
  call()
  call(nil)
  for _, v in ipairs(singles) do call(v) end
  for _, a in ipairs(pairs_of) do
    for _, b in ipairs(pairs_of) do call(a, b) end
  end
end

local names = {}
for k in pairs(_G) do
  if not skip_globals[k] then names[#names + 1] = k end
end
table.sort(names)
local nfuncs = 0
for _, g in ipairs(names) do
  local v = _G[g]
  if type(v) == "function" and not writes(g) then
    fuzz(v)
    nfuncs = nfuncs + 1
  elseif type(v) == "table" then
    local ks = {}
    for k, f in pairs(v) do
      if type(f) == "function" and not writes(k) then ks[#ks + 1] = k end
    end
    table.sort(ks)
    for _, k in ipairs(ks) do
      fuzz(v[k])
      nfuncs = nfuncs + 1
    end
  end
end

local function methods_of(obj)
  local out, mt = {}, getmetatable(obj)
  local list = mt and (type(mt.__index) == "table" and mt.__index or mt.__methods)
  for k, v in pairs(list or {}) do
    if type(v) == "function" and not writes(k) then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end
local makers = {
  function() return Image.new("RGB", {8, 8}) end,
  function() return Image.new("L", {6, 4}) end,
  function() return torch.randn({2, 3}) end,
  function() return torch.Generator() end,
  function() return ImageDraw.Draw(Image.new("RGB", {8, 8})) end,
  function() return CLIPTokenizer.from_pretrained(src .. "/tests/models/tiny-sd-a/tokenizer") end,
}
for _, cls in ipairs{"PNDMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "LCMScheduler",
                     "HeunDiscreteScheduler", "UniPCMultistepScheduler", "DPMSolverSDEScheduler"} do
  makers[#makers + 1] = function() return _G[cls]() end
end
local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
pipe:set_progress_bar_config{disable = true}
makers[#makers + 1] = function() return pipe end
local nmethods = 0
for _, make in ipairs(makers) do
  for _, m in ipairs(methods_of(make())) do
    local obj = make()
    fuzz(obj[m], obj)
    nmethods = nmethods + 1
  end
end
check.truthy(nfuncs > 140 and nmethods > 100,
             string.format("%d functions and %d methods found", nfuncs, nmethods))

-- a pipeline call's keywords, each set to junk in an otherwise valid call, in the pipelines
-- whose calls take the most of them
local keys = {"prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "height",
              "width", "num_images_per_prompt", "generator", "latents", "output_type", "eta",
              "strength", "image", "mask_image", "prompt_embeds", "negative_prompt_embeds",
              "callback", "callback_steps", "callback_on_step_end",
              "callback_on_step_end_tensor_inputs", "cross_attention_kwargs", "guidance_rescale",
              "clip_skip", "timesteps", "ip_adapter_image", "ip_adapter_image_embeds",
              "return_dict", "padding_mask_crop", "masked_image_latents", "original_size",
              "target_size", "crops_coords_top_left", "denoising_start", "denoising_end",
              "aesthetic_score", "prompt_2", "pooled_prompt_embeds", "adapter_conditioning_scale",
              "adapter_conditioning_factor", "controlnet_conditioning_scale",
              "control_guidance_start", "control_guidance_end", "guess_mode", "control_image"}
local junk = {0, -1, 1e300, 0 / 0, "x", {}, {1, 2}, true, img, torch.randn({1, 4, 16, 16}),
              function() error("from a callback") end, Image.new("RGB", {1, 1}), 2 ^ 31}
local models = src .. "/tests/models/"
local function load(cls, name, opts)
  local p = cls.from_pretrained(models .. name, opts)
  p:set_progress_bar_config{disable = true}
  return p
end
local image = Image.new("RGB", {64, 64}, {90, 90, 90})
local xl = load(StableDiffusionXLPipeline, "tiny-sdxl")
local runs = {
  {pipe, {}},
  {StableDiffusionImg2ImgPipeline(pipe.components), {image = image}},
  {load(StableDiffusionInpaintPipeline, "tiny-sd-inpaint"),
   {image = image, mask_image = Image.new("L", {64, 64}, 255)}},
  {xl, {}},
  {StableDiffusionXLImg2ImgPipeline(xl.components), {image = image}},
  {load(StableDiffusionAdapterPipeline, "tiny-sd-a",
        {adapter = T2IAdapter.from_pretrained(models .. "tiny-t2i-adapter")}), {image = image}},
  {load(StableDiffusionControlNetPipeline, "tiny-sd-a",
        {controlnet = ControlNetModel.from_pretrained(models .. "tiny-controlnet-a")}),
   {image = image}},
}
for _, run in ipairs(runs) do
  for _, k in ipairs(keys) do
    for _, v in ipairs(junk) do
      local o = {prompt = "x", num_inference_steps = 1, output_type = "latent"}
      for kk, vv in pairs(run[2]) do o[kk] = vv end
      o[k] = v
      try(run[1], o)
    end
  end
end

-- and the session goes on: a valid call after all of that
local ok = pipe{prompt = "a cat", num_inference_steps = 2, output_type = "np",
                generator = torch.Generator():manual_seed(0)}.images
check.eq(ok.shape[1], 1, "a picture after the junk")
print(string.format("%d calls, %d raised errors, none crashed", calls, errors))
