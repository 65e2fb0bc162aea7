-- FreeU on "cuda": the same picture as on the CPU (the skips' filter is two products with a
-- basis made on the first, unrecorded UNet call; the later steps replay a CUDA graph), at
-- a power-of-two and an odd plane size, and after disable_freeu.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"

local function pair(model)
  local cpu = StableDiffusionPipeline.from_pretrained(root .. "/models/" .. model)
  local gpu = StableDiffusionPipeline.from_pretrained(root .. "/models/" .. model):to("cuda")
  for _, p in ipairs {cpu, gpu} do
    p:set_progress_bar_config{disable = true}
    p:enable_freeu{s1 = 0.9, s2 = 0.2, b1 = 1.2, b2 = 1.4}
  end
  return cpu, gpu
end

local function same(what, cpu, gpu, h, w)
  local function run(p)
    return p{prompt = "a lighthouse", num_inference_steps = 4, height = h, width = w,
             output_type = "np", generator = torch.Generator():manual_seed(7)}.images
  end
  local d = (run(cpu) - run(gpu)):abs():max():item()
  check.truthy(d == d and d < 2e-2, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

local cpu, gpu = pair("tiny-sd-a")
same("a", cpu, gpu)
local bc, bg = pair("tiny-sd-b")
same("b 96x80", bc, bg, 96, 80)
for _, p in ipairs {cpu, gpu} do p:disable_freeu() end
same("disabled", cpu, gpu)
print("ok")
