-- The sdrepl side of scripts/bench_cpu.sh: the same parts as torch_side.py, timed
-- the same way (one warm-up, then the best of `repeat`), one JSON line each.
--   sdrepl scripts/bench/ours.lua MODEL_DIR PART [REPEAT]
local model, part, repeat_n = arg[1], arg[2], tonumber(arg[3] or "1")

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("a"))
  p:close()
  return t
end

local function peak_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
  return -1
end

local function timed(fn)
  fn()
  local best = math.huge
  for _ = 1, repeat_n do
    local t0 = now()
    fn()
    best = math.min(best, now() - t0)
  end
  return best
end

torch.manual_seed(0)
local secs
if part == "text_encoder" then
  local te = CLIPTextModel.from_pretrained(model, {subfolder = "text_encoder"})
  local tok = CLIPTokenizer.from_pretrained(model, {subfolder = "tokenizer"})
  local ids = torch.tensor(tok({"a photograph of an astronaut riding a horse", ""},
                               {padding = "max_length", max_length = 77}).input_ids)
  secs = timed(function() te(ids) end)
elseif part == "unet" then
  local unet = UNet2DConditionModel.from_pretrained(model, {subfolder = "unet"})
  local x, ctx = torch.randn({2, 4, 64, 64}), torch.randn({2, 77, 768})
  secs = timed(function() unet(x, 981, {encoder_hidden_states = ctx}) end)
elseif part == "vae_decode" then
  local vae = AutoencoderKL.from_pretrained(model, {subfolder = "vae"})
  local z = torch.randn({1, 4, 64, 64})
  secs = timed(function() vae:decode(z) end)
elseif part == "taesd_decode" then
  local vae = AutoencoderTiny.from_pretrained(model .. "-taesd")
  local z = torch.randn({1, 4, 64, 64})
  secs = timed(function() vae:decode(z) end)
elseif part == "adapter_features" then
  local adapter = T2IAdapter.from_pretrained(model .. "-t2i-adapter")
  local x = torch.rand({1, 3, 512, 512})
  secs = timed(function() adapter(x) end)
elseif part == "txt2img" then
  local pipe = StableDiffusionPipeline.from_pretrained(model)
  secs = timed(function()
    pipe{prompt = "a photograph of an astronaut riding a horse", num_inference_steps = 3,
         output_type = "np"}
  end)
elseif part:match("^lora_") then
  local pipe = StableDiffusionPipeline.from_pretrained(model)
  pipe:set_progress_bar_config{disable = true}
  local lora = model:gsub("/[^/]+/?$", "") .. "/lora-r32.safetensors"
  local n = 0
  if part == "lora_load" then
    secs = timed(function() -- a new adapter each time, as the torch side
      n = n + 1
      pipe:load_lora_weights(lora, {adapter_name = "a" .. n})
    end)
  else
    pipe:load_lora_weights(lora)
    local kw = part == "lora_scaled" and {scale = 0.5} or nil
    secs = timed(function()
      pipe{prompt = "a photograph of an astronaut riding a horse", num_inference_steps = 3,
           output_type = "np", cross_attention_kwargs = kw}
    end)
  end
elseif part == "inpaint" then
  local pipe = StableDiffusionInpaintPipeline.from_pretrained(model)
  pipe:set_progress_bar_config{disable = true}
  local image = Image.new("RGB", {512, 512}, {120, 140, 160})
  local mask = Image.new("RGB", {512, 512}, {0, 0, 0})
  mask:paste({255, 255, 255}, {128, 128, 384, 384})
  secs = timed(function()
    pipe{prompt = "a photograph of an astronaut riding a horse", image = image, mask_image = mask,
         num_inference_steps = 3, output_type = "np"}
  end)
elseif part == "controlnet" then
  local cn = ControlNetModel.from_pretrained(model .. "-controlnet")
  local pipe = StableDiffusionControlNetPipeline.from_pretrained(model, {controlnet = cn})
  pipe:set_progress_bar_config{disable = true}
  local edges = Image.new("RGB", {512, 512}, {0, 0, 0})
  edges:paste({255, 255, 255}, {128, 128, 384, 136})
  secs = timed(function()
    pipe{prompt = "a photograph of an astronaut riding a horse", image = edges,
         num_inference_steps = 3, output_type = "np"}
  end)
elseif part == "ip_adapter" then
  local pipe = StableDiffusionPipeline.from_pretrained(model)
  pipe:set_progress_bar_config{disable = true}
  pipe:load_ip_adapter(model .. "-ip-adapter", "models", "ip-adapter_sd15.safetensors")
  local face = Image.new("RGB", {512, 512}, {200, 160, 140})
  face:paste({40, 40, 60}, {160, 200, 352, 260})
  secs = timed(function()
    pipe{prompt = "a photograph of an astronaut riding a horse", ip_adapter_image = face,
         num_inference_steps = 3, output_type = "np"}
  end)
elseif part == "sdxl" then
  local pipe = StableDiffusionXLPipeline.from_pretrained(model .. "-xl")
  pipe:set_progress_bar_config{disable = true}
  secs = timed(function()
    pipe{prompt = "a photograph of an astronaut riding a horse", num_inference_steps = 1,
         output_type = "np"}
  end)
elseif part == "safety_checker" then
  local pipe = StableDiffusionPipeline.from_pretrained(model .. "-sc")
  local x = torch.rand({3, 3, 512, 512}) * 2 - 1
  secs = timed(function() -- run_safety_checker's steps
    local pv = pipe.feature_extractor(pipe.image_processor:postprocess(x)).pixel_values
    pipe.safety_checker{images = x, clip_input = pv}
  end)
else
  error("unknown part " .. tostring(part))
end
print(string.format('{"part": "%s", "seconds": %.4f, "peak_rss_mb": %.1f}', part, secs, peak_mb()))
