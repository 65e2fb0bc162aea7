-- T2I-Adapters on "cuda": the adapter's convolutions, ReLUs and pooled features give the CPU's,
-- and the adapter pipelines (SD's with a MultiAdapter, in float16 too, and SDXL's) the CPU's
-- pictures; a pipeline moved with :to takes its adapters along.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/t2i_adapter/"
local function adapter(name) return T2IAdapter.from_pretrained(root .. "/models/" .. name) end

local function near(what, a, b, tol)
  local d = (a:to("cpu") - b:to("cpu")):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-12s cuda against cpu %.2e", what, d))
end

local sketch = Image.open(ref .. "sketch.png")
local function run(p, opts)
  p:set_progress_bar_config{disable = true}
  local o = {prompt = "a house", num_inference_steps = 3, output_type = "np",
             generator = torch.Generator():manual_seed(2)}
  for k, v in pairs(opts) do o[k] = v end
  return p(o).images
end

for _, dtype in ipairs {torch.float32, torch.float16} do
  local function load()
    return StableDiffusionAdapterPipeline.from_pretrained(root .. "/models/tiny-sd-a", {
      adapter = {adapter("tiny-t2i-adapter"), adapter("tiny-t2i-adapter-b")},
      safety_checker = false, torch_dtype = dtype})
  end
  local opts = {image = {sketch, sketch:convert("L")}, adapter_conditioning_scale = {0.7, 0.4}}
  local gpu = load():to("cuda")
  check.truthy(tostring(gpu.adapter.adapters[1].device):find("cuda"), "the adapters follow the pipeline")
  near(dtype == torch.float32 and "sd multi" or "sd float16", run(gpu, opts), run(load(), opts),
       dtype == torch.float32 and 2e-2 or 5e-2)
end

local function load_xl()
  return StableDiffusionXLAdapterPipeline.from_pretrained(root .. "/models/tiny-sdxl",
                                                          {adapter = adapter("tiny-t2i-adapter-xl")})
end
local opts = {image = sketch, adapter_conditioning_factor = 0.5}
near("xl", run(load_xl():to("cuda"), opts), run(load_xl(), opts), 2e-2)
print("ok")
