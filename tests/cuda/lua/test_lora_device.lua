-- LoRA on "cuda" (tests/fixtures/lora): adapters loaded before the move and after it, a
-- call with cross_attention_kwargs scale, set_adapters and fuse_lora give the CPU's
-- pictures (the sums are made on the device, in the weights' dtype), and moving back
-- keeps the adapters. Against the CPU run of the same calls, within float16's
-- expectation where the device computes in float16, float32's otherwise.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local fix = root .. "/fixtures/lora/"
local PROMPT = "a photo of a lora cat"

local function run(pipe, opts)
  local o = {prompt = PROMPT, num_inference_steps = 3, output_type = "np",
             generator = torch.Generator():manual_seed(42)}
  for k, v in pairs(opts or {}) do o[k] = v end
  return pipe(o).images
end

local cpu = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a")
cpu:set_progress_bar_config{disable = true}
cpu:load_lora_weights(fix .. "diffusers")
local gpu = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a")
gpu:set_progress_bar_config{disable = true}
gpu:load_lora_weights(fix .. "diffusers") -- before the move: the adapters go along
gpu = gpu:to("cuda")
gpu:load_lora_weights(fix, {weight_name = "kohya.safetensors", adapter_name = "k"}) -- after it
cpu:load_lora_weights(fix, {weight_name = "kohya.safetensors", adapter_name = "k"})

local tol = 2e-2 -- the device may run the tiny model in float16
local function same(what, opts)
  local a, b = run(cpu, opts), run(gpu, opts)
  local d = (a - b):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-14s cuda against cpu %.2e", what, d))
end
same("loaded")
same("scaled", {cross_attention_kwargs = {scale = 0.5}})
for _, p in ipairs {cpu, gpu} do p:set_adapters({"default_0", "k"}, {0.7, 0.4}) end
same("set_adapters")
for _, p in ipairs {cpu, gpu} do p:fuse_lora{lora_scale = 0.8} end
same("fused")
local back = gpu:to("cpu")
local d = (run(back) - run(cpu)):abs():max():item()
check.truthy(d < 1e-5, "moved back to the CPU: " .. d)
for _, p in ipairs {cpu, back} do p:unload_lora_weights() end
check.truthy((run(back) - run(cpu)):abs():max():item() < 1e-5, "unloaded after the trip")
print("ok")
