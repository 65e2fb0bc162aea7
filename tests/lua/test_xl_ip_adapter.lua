-- IP-Adapters on Stable Diffusion XL against diffusers 0.27.2 (tests/models/tiny-ip-adapter-xl
-- laid out as h94/IP-Adapter's sdxl_models, tests/reference/xl_ip_adapter, made by
-- scripts/reference/make_xl_ip_adapter_cases.py): ImageProjection and the Resampler on
-- tiny-sdxl's 12 cross-attentions (two transformer layers a block), a scale with two pictures
-- a prompt and a negative prompt, no guidance, and img2img. Each run's images within 2e-3 of
-- diffusers' (as the other whole runs).
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local repo = src .. "/tests/models/tiny-ip-adapter-xl"
local ref = src .. "/tests/reference/xl_ip_adapter/"
local model = src .. "/tests/models/tiny-sdxl"
local weights = {plain = "ip-adapter_sdxl_tiny.safetensors", plus = "ip-adapter-plus_sdxl_tiny.bin"}

local function case(name, cls, kind, scale, picture, args)
  local pipe = cls.from_pretrained(model)
  pipe:set_progress_bar_config{disable = true}
  pipe:load_ip_adapter(repo, "sdxl_models", weights[kind])
  if scale then pipe:set_ip_adapter_scale(scale) end
  local call = {ip_adapter_image = Image.open(ref .. picture .. ".png"), output_type = "np",
                generator = torch.Generator():manual_seed(args.seed)}
  for k, v in pairs(args) do if k ~= "seed" then call[k] = v end end
  if call.image then
    call.image = Image.open(ref .. call.image .. ".png")
  else
    call.height, call.width = 64, 64
  end
  local d = (pipe(call).images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", name, d))
  print(string.format("%-18s max difference %.2e", name, d))
end

case("xl_ip_plain", StableDiffusionXLPipeline, "plain", nil, "face",
     {prompt = "a cat on a bench", num_inference_steps = 3, seed = 1})
case("xl_ip_plus_batch", StableDiffusionXLPipeline, "plus", 0.6, "style",
     {prompt = "a red door", negative_prompt = "blurry", num_images_per_prompt = 2,
      num_inference_steps = 3, seed = 2})
case("xl_ip_unguided", StableDiffusionXLPipeline, "plain", 0.8, "stripes",
     {prompt = "a lighthouse", guidance_scale = 1.0, num_inference_steps = 3, seed = 3})
case("xl_ip_img2img", StableDiffusionXLImg2ImgPipeline, "plus", nil, "face",
     {prompt = "a red door", image = "sketch64", strength = 0.6, num_inference_steps = 4, seed = 4})
-- prepare_ip_adapter_image_embeds' output given back: the same picture; without the
-- adapter: another one
do
  local pipe = StableDiffusionXLPipeline.from_pretrained(model)
  pipe:set_progress_bar_config{disable = true}
  pipe:load_ip_adapter(repo, "sdxl_models", weights.plain)
  local embeds = pipe:prepare_ip_adapter_image_embeds({Image.open(ref .. "face.png")}, nil, "cpu", 1, true)
  local function call(extra)
    local c = {prompt = "a cat on a bench", num_inference_steps = 3, height = 64, width = 64,
               output_type = "np", generator = torch.Generator():manual_seed(1)}
    for k, v in pairs(extra) do c[k] = v end
    return pipe(c).images
  end
  local given = call{ip_adapter_image_embeds = embeds}
  local d = (given - torch.load_npy(ref .. "xl_ip_plain.npy")):abs():max():item()
  check.truthy(d < 2e-3, "ip_adapter_image_embeds given: " .. d)
  pipe:unload_ip_adapter()
  check.truthy((call{} - given):abs():max():item() > 1e-2, "the adapter changes the picture")
end
print("ok")
