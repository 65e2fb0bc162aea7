-- AutoencoderTiny (TAESD) on "cuda": its ReLU and tanh kernels and plain convolutions give the
-- CPU's pictures, alone and as a pipeline's VAE (pipe.vae = tiny before and after :to), in
-- float16 too; its own tiling on the device as well.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/tiny_vae/"
local function npy(f) return torch.load_npy(ref .. f .. ".npy") end

local function near(what, a, b, tol)
  local d = (a:to("cpu") - b:to("cpu")):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-12s cuda against cpu %.2e", what, d))
end

local cpu = AutoencoderTiny.from_pretrained(root .. "/models/tiny-taesd")
local pipe_cpu = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a",
                                                         {safety_checker = false})
pipe_cpu.vae = cpu
local gpu = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a",
                                                    {safety_checker = false}):to("cuda")
gpu.vae = cpu -- bound again on the pipeline's device
local vae = gpu.vae
near("encode", vae:encode(npy("encode_in"):to("cuda")).latents, cpu:encode(npy("encode_in")).latents, 1e-4)
near("decode", vae:decode(npy("decode_in"):to("cuda")).sample, cpu:decode(npy("decode_in")).sample, 1e-4)

local function run(p)
  p:set_progress_bar_config{disable = true}
  return p("a red cube", {height = 32, width = 48, num_images_per_prompt = 2,
                          num_inference_steps = 3, output_type = "np",
                          generator = torch.Generator():manual_seed(5)}).images
end
near("txt2img", run(gpu), run(pipe_cpu), 2e-3)

local function half_pipe()
  local p = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a",
                                                    {safety_checker = false,
                                                     torch_dtype = torch.float16})
  p.vae = cpu
  return p
end
-- the tiny VAE moves with the pipeline; float16 against float16 weights on the CPU
near("float16", run(half_pipe():to("cuda")), run(half_pipe()), 3e-2)

local x8 = AutoencoderTiny.from_pretrained(root .. "/models/tiny-taesd-x8")
local p8 = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a",
                                                   {safety_checker = false}):to("cuda")
p8.vae = x8
p8.vae:enable_tiling()
x8:enable_tiling()
near("tiled", p8.vae:decode(npy("tiled_decode_in"):to("cuda")).sample,
     x8:decode(npy("tiled_decode_in")).sample, 1e-4)
print("ok")
