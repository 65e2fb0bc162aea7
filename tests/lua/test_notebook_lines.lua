-- The lines diffusers notebooks write for speed or to turn things off, which must run here
-- and change nothing (sdrepl's models are compiled C, run with a CUDA graph per call, no
-- autograd, no TF32, no safety checker), and what a wrong use of them says.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
pipe:set_progress_bar_config{disable = true}
local function run()
  return pipe{prompt = "a red bicycle", num_inference_steps = 2, output_type = "np",
              generator = torch.Generator():manual_seed(4)}.images
end
local before = run()

local unet = pipe.unet
pipe.unet = torch.compile(pipe.unet, {mode = "reduce-overhead", fullgraph = true})
check.truthy(rawequal(pipe.unet, unet), "torch.compile gives the model back")
check.truthy(rawequal(pipe.unet:to{memory_format = torch.channels_last}, unet), "to(memory_format)")
check.truthy(rawequal(pipe.vae:to("cpu"), pipe.vae), "to its own device")
torch.backends.cuda.matmul.allow_tf32 = true
torch.backends.cudnn.benchmark = true
check.eq(torch.backends.cudnn.benchmark, true, "torch.backends keeps what is set")
torch.set_grad_enabled(false)
torch.cuda.empty_cache()
torch.cuda.synchronize()
pipe.safety_checker = nil
pipe.feature_extractor = nil
pipe:fuse_qkv_projections()
pipe.vae:enable_slicing()
check.eq((run() - before):abs():max():item(), 0, "the same picture after all of them")

-- pipe.vae's switches are the pipeline's, as on diffusers' module
pipe.vae:enable_tiling()
pipe.vae:disable_tiling()
pipe.vae:disable_slicing()
pipe:unfuse_qkv_projections()

-- pipe.to(dtype), pipe.to(device, dtype), pipe.to(torch_device=..., torch_dtype=...): the
-- weights in that dtype and the noise drawn in it, as loading with torch_dtype gives
do
  local model = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/models/tiny-sd-a"
  local function draw(p)
    p:set_progress_bar_config{disable = true}
    return p{prompt = "a lighthouse", num_inference_steps = 2, output_type = "np",
             generator = torch.Generator():manual_seed(5)}.images
  end
  local p = StableDiffusionPipeline.from_pretrained(model)
  local f32 = draw(p)
  check.truthy(rawequal(p:to(torch.float16), p), "pipe:to(dtype) returns the pipeline")
  check.eq(tostring(p.dtype), tostring(torch.float16), "pipe.dtype")
  check.eq(tostring(p.unet.dtype), tostring(torch.float16), "its models' dtype")
  local half = draw(p)
  local loaded = draw(StableDiffusionPipeline.from_pretrained(model, {torch_dtype = torch.float16}))
  check.eq((half - loaded):abs():max():item(), 0, "as loaded with torch_dtype = torch.float16")
  p:to("cpu", torch.float32)
  check.eq((draw(p) - f32):abs():max():item(), 0, "back to float32: the same pictures")
  p:to{torch_device = "cpu", torch_dtype = torch.float16}
  check.eq((draw(p) - half):abs():max():item(), 0, "keywords")
  check.raises("argument 1 (device)", function() p:to("gpu") end)
  check.raises("argument 2 (dtype)", function() p:to("cpu", "fast") end)
  check.raises("option 'torch_device'", function() p:to{torch_device = "tpu"} end)
end

check.raises("can only be set to nil", function() pipe.safety_checker = {} end)
check.raises("cannot be replaced by another", function() pipe.unet = pipe.vae end)
check.raises("pipe:to(\"cuda\")", function() pipe.unet:to("cuda") end)
check.raises("torch_dtype", function() pipe.text_encoder:to(torch.float16) end)
check.raises("unknown device", function() pipe.unet:to("tpu") end)
check.raises("a model", function() torch.compile() end)
print("ok")
