-- Devices as a notebook meets them: torch.cuda answers as torch does, a pipeline
-- without a GPU says so when moved to "cuda" and goes on working, and
-- pipe:to("cpu") on the CPU changes nothing. Where a GPU is present (the GPU
-- machine), the move itself is checked by tests/cuda/test_cuda_models.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local model = root .. "/models/tiny-sd-a"

check.eq(type(torch.cuda.is_available()), "boolean", "torch.cuda.is_available()")
check.eq(math.type(torch.cuda.device_count()), "integer", "torch.cuda.device_count()")
check.eq(torch.cuda.is_available(), torch.cuda.device_count() > 0, "is_available() and device_count() agree")

local pipe = StableDiffusionPipeline.from_pretrained(model)
check.eq(pipe.device, "cpu", "a pipeline starts on the CPU")
check.eq(pipe:to("cpu"), pipe, "pipe:to('cpu') returns the pipeline")
check.raises('"cpu" or "cuda"', function() pipe:to("tpu") end)

local function run()
  return pipe{prompt = "a red cube", num_inference_steps = 2, output_type = "np",
              generator = torch.Generator():manual_seed(1)}.images
end
local before = run()

if not torch.cuda.is_available() then
  -- The message says what is wrong and what to do; the session and the pipeline go on.
  local err = check.raises("CUDA is not available", function() pipe:to("cuda") end)
  check.truthy(err:find("CPU", 1, true), "the message points to the CPU: " .. err)
  check.raises("CUDA is not available", function() torch.zeros({2}, {device = "cuda"}) end)
  check.raises("CUDA is not available", function() pipe:enable_model_cpu_offload() end)
  check.eq(pipe.device, "cpu", "a failed move leaves the pipeline where it was")
  local after = run()
  check.eq((after - before):abs():max():item(), 0.0, "the same picture after the failed move")
end

-- A CUDA generator draws torch's CUDA numbers on any machine (the seed notebook's
-- torch.Generator("cuda") seeds reproduce on the CPU).
local g = torch.Generator("cuda"):manual_seed(0)
check.eq(g.device, "cuda", "generator device")
print("devices: all checks passed")
