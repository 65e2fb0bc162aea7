-- IP-Adapters on "cuda": the same pictures as on the CPU for each projection (the image
-- encoder, the projection and the adapters' keys and values on the device, the image tokens
-- made once and read by the recorded CUDA graph each step), two adapters with their own
-- scales, float16, and a move after loading (the adapters follow the pipeline).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/ip_adapter/"
local models = root .. "/models/"
local W = {plain = "ip-adapter_tiny.safetensors", plus = "ip-adapter-plus_tiny.bin",
           full = "ip-adapter-full-face_tiny.safetensors"}
local face, style = Image.open(ref .. "face.png"), Image.open(ref .. "style.png")

local function pipeline(kinds, scale, opts, device_first)
  local p = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-a", opts)
  p:set_progress_bar_config{disable = true}
  if device_first then p:to("cuda") end
  local names = {}
  for i, k in ipairs(kinds) do names[i] = W[k] end
  p:load_ip_adapter(models .. "tiny-ip-adapter", "models", #names == 1 and names[1] or names)
  if scale then p:set_ip_adapter_scale(scale) end
  return p
end

local function run(p, images)
  return p{prompt = "a cat on a bench", ip_adapter_image = images, num_inference_steps = 5,
           num_images_per_prompt = 2, output_type = "np",
           generator = torch.Generator():manual_seed(3)}.images
end

-- opts (torch_dtype) for both: the noise is drawn in it on either device
local function same(what, kinds, scale, images, tol, opts, device_first)
  local cpu = run(pipeline(kinds, scale, opts and {torch_dtype = opts.torch_dtype}), images)
  local p = pipeline(kinds, scale, opts, device_first)
  if not device_first then p:to("cuda") end
  local d = (cpu - run(p, images)):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

same("plain", {"plain"}, 0.7, {face}, 2e-2, nil, true)
same("plus", {"plus"}, nil, {face}, 2e-2)
same("full", {"full"}, 0.8, {{face, style}}, 2e-2)
same("two", {"plain", "plus"}, {0.7, 0.4}, {face, style}, 2e-2, nil, true)
same("float16", {"plus"}, nil, {face}, 5e-2, {torch_dtype = torch.float16})
print("ok")
