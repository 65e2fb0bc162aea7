-- The seed notebook's img2img on "cuda" through the Lua API, against the same
-- calls on the CPU: a pipeline loaded in float16 and moved with pipe:to("cuda"),
-- images, tensors and latents coming back, torch.manual_seed's CUDA generator,
-- and the move back to the CPU. sdrepl_device (tests/cuda/sdrepl_device.c) runs
-- it on an emulated GPU in every build; sdrepl runs it on a GPU machine.
--
-- Tolerances (images in [0, 1]) are test_cuda_models.c's for whole runs:
-- float16 3e-2 relative L2 and 5e-2 max abs (the emulator, which rounds each
-- op's output to float16 as the GPU does, measures ~4e-3), float32 5e-4 and 2e-3.
local check = require "check"
-- "quick" (the host simulation of the GPU, tests/cuda/simt, which is slow): one image
-- and three steps instead of the notebook's three images
local quick = (...) == "quick"
local n_images, steps = quick and 1 or 3, quick and 3 or 5

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local model = root .. "/models/tiny-sd-a"
local stats = rawget(_G, "emulated_gpu_stats") -- only under sdrepl_device

check.truthy(torch.cuda.is_available(), "torch.cuda.is_available()")
check.eq(torch.cuda.device_count(), 1, "torch.cuda.device_count()")

-- A clone on the device keeps an int64 tensor's values (token ids), not only floats'.
check.eq(torch.tensor({{1, 2, 3}}):to("cuda"):clone():cpu():tolist()[1][3], 3, "clone of int64 on cuda")

local init = Image.open(root .. "/reference/tiny-sd-a/init_image.png"):convert("RGB")
local prompt = "face of a human in  joy"

local function run(pipe, args)
  local call = {prompt = prompt, image = init, strength = 0.8, num_inference_steps = steps,
                num_images_per_prompt = n_images, output_type = "np"}
  for k, v in pairs(args or {}) do call[k] = v end
  return pipe(call).images
end

local function l2(t) return ((t * t):sum():item()) ^ 0.5 end

-- got and want: (3, H, W, 3) arrays on the CPU
local function close(got, want, rel, abs, what)
  check.eq(got.device, "cpu", what .. ": np images are on the CPU")
  local d = got - want
  local r, m = l2(d) / l2(want), d:abs():max():item()
  check.truthy(r == r and m == m, what .. ": no NaN")
  check.truthy(r <= rel, string.format("%s: relative L2 %.3g <= %g", what, r, rel))
  check.truthy(m <= abs, string.format("%s: max abs %.3g <= %g", what, m, abs))
  print(string.format("%s: relative L2 %.2e, max abs %.2e", what, r, m))
end

local function cpu_gen() return torch.Generator():manual_seed(100) end

-- float16, as the notebook loads it: weights stay float16 on the CPU, which computes in
-- float32; on the GPU the activations are float16 too.
local pipe = StableDiffusionImg2ImgPipeline.from_pretrained(model, {torch_dtype = torch.float16})
local on_cpu = run(pipe, {generator = cpu_gen()})
check.eq(pipe:to("cuda"), pipe, "pipe:to('cuda') returns the pipeline")
check.eq(pipe.device, "cuda:0", "pipe.device after :to('cuda'), as torch prints it")
check.eq(pipe.unet.device, "cuda:0", "the UNet moved with the pipeline")
pipe:enable_attention_slicing() -- the notebook's call: accepted, harmless
local before = stats and stats()
local on_gpu = run(pipe, {generator = cpu_gen()})
close(on_gpu, on_cpu, 3e-2, 5e-2,
      string.format("float16 img2img, %d image(s), cuda vs cpu", n_images))
if stats then
  local s = stats()
  check.truthy(s.ops_f16 > before.ops_f16, "the run computed in float16 on the device")
  check.truthy(s.graph_replays > before.graph_replays, "the UNet call was replayed as a graph")
  check.truthy(s.downloads > before.downloads, "the images came back from the device")
end

-- output_type "pt" and "latent" stay on the pipeline's device, as diffusers returns them
local pt = run(pipe, {generator = cpu_gen(), output_type = "pt"})
check.eq(pt.device, "cuda:0", "pt images on the pipeline's device")
check.eq(table.concat(pt:size(), ","), n_images .. ",3,64,64",
         "pt images: (images, 3, H, W) of the 64x64 sketch")
local pt_np = pt:cpu():float():permute(1, 3, 4, 2)
check.truthy((pt_np - on_gpu):abs():max():item() <= 1e-6, "pt and np images agree")
local lat = run(pipe, {generator = cpu_gen(), output_type = "latent"})
check.eq(lat.device, "cuda:0", "latents on the pipeline's device")

-- The notebook's seeding: torch.manual_seed seeds the CUDA default generator, which a
-- pipeline on "cuda" draws from when given none (diffusers' randn_tensor on the device).
torch.manual_seed(100)
local seeded = run(pipe)
local explicit = run(pipe, {generator = torch.Generator("cuda"):manual_seed(100)})
check.eq((seeded - explicit):abs():max():item(), 0.0,
         "torch.manual_seed(100) is torch.Generator('cuda'):manual_seed(100) on the GPU")
check.truthy((seeded - on_gpu):abs():max():item() > 1e-3,
             "the CUDA generator's noise is not the CPU generator's")

-- Stopped in the middle, as Ctrl-C stops a run (an error out of the denoising loop while
-- its UNet graph is being replayed), then run again: the same picture as before.
local calls = 0
check.raises("stopped at step 2", function()
  run(pipe, {generator = cpu_gen(), callback_on_step_end = function(_, i, _, kw)
    calls = calls + 1
    check.eq(kw.latents.device, "cuda:0", "the callback's latents are on the device")
    if calls == 2 then error("stopped at step 2") end
  end})
end)
check.eq(calls, 2, "the run stopped where the callback raised")
-- The latents a callback sees are the run's own: handed back as they are, on the device
-- or from the host, they change nothing.
local function hand_back(to_host)
  return run(pipe, {generator = cpu_gen(), callback_on_step_end = function(_, _, _, kw)
    return {latents = to_host and kw.latents:cpu() or kw.latents}
  end})
end
check.eq((hand_back(false) - on_gpu):abs():max():item(), 0.0, "latents handed back on the device")
check.eq((hand_back(true) - on_gpu):abs():max():item(), 0.0, "latents handed back from the host")
local again = run(pipe, {generator = cpu_gen()})
check.eq((again - on_gpu):abs():max():item(), 0.0, "after an interrupted run, the same picture")

-- Back on the CPU, the same picture as before the move.
check.eq(pipe:to("cpu").device, "cpu", "pipe:to('cpu')")
check.eq(pipe.unet.device, "cpu", "the UNet moved back")
local back = run(pipe, {generator = cpu_gen()})
check.eq((back - on_cpu):abs():max():item(), 0.0, "the same picture after cuda and back")

-- float32: only the summation order differs. enable_model_cpu_offload runs it on the GPU,
-- as diffusers' does.
local pipe32 = StableDiffusionImg2ImgPipeline.from_pretrained(model)
local ref32 = run(pipe32, {generator = cpu_gen()})
check.raises("nil or 0", function() pipe32:enable_model_cpu_offload(1) end)
pipe32:enable_model_cpu_offload()
check.eq(pipe32.device, "cuda:0", "enable_model_cpu_offload: on the GPU")
close(run(pipe32, {generator = cpu_gen()}), ref32, 5e-4, 2e-3, "float32 img2img, cuda vs cpu")

print("notebook on cuda: all checks passed")
