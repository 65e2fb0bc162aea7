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

check.raises("can only be set to nil", function() pipe.safety_checker = {} end)
check.raises("cannot be replaced by another", function() pipe.unet = pipe.vae end)
check.raises("pipe:to(\"cuda\")", function() pipe.unet:to("cuda") end)
check.raises("torch_dtype", function() pipe.text_encoder:to(torch.float16) end)
check.raises("unknown device", function() pipe.unet:to("tpu") end)
check.raises("a model", function() torch.compile() end)
print("ok")
