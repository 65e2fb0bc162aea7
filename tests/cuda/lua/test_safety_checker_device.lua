-- The safety checker on "cuda": the pipeline's checker moves with pipe:to, and the seed
-- notebook's img2img (3 pictures, strength 0.8) on tiny-sd-sc gives the CPU's flags and
-- pictures (flagged ones black); in float16 it runs in torch_dtype and still blacks out
-- what it flags.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local model = root .. "/models/tiny-sd-sc"
local init = Image.open(root .. "/reference/safety_checker/i2i_init.png")

local function run(p)
  p:set_progress_bar_config{disable = true}
  return p{prompt = "an astronaut riding a horse", image = init, strength = 0.8,
           num_images_per_prompt = 3, num_inference_steps = 5, output_type = "np",
           generator = torch.Generator():manual_seed(1024)}
end

local cpu = run(StableDiffusionImg2ImgPipeline.from_pretrained(model))
local pipe = StableDiffusionImg2ImgPipeline.from_pretrained(model):to("cuda")
check.eq(tostring(pipe.safety_checker.device), "cuda:0", "the checker moved")
local gpu = run(pipe)
for i = 1, 3 do
  check.eq(gpu.nsfw_content_detected[i], cpu.nsfw_content_detected[i], "flag " .. i)
end
local d = (cpu.images - gpu.images):abs():max():item()
check.truthy(d == d and d < 2e-2, string.format("cuda against cpu %.3g", d))
print(string.format("float32: flags %s %s %s, cuda against cpu %.2e",
                    tostring(gpu.nsfw_content_detected[1]), tostring(gpu.nsfw_content_detected[2]),
                    tostring(gpu.nsfw_content_detected[3]), d))

local half = StableDiffusionImg2ImgPipeline.from_pretrained(model, {torch_dtype = torch.float16})
half = half:to("cuda")
check.eq(tostring(half.safety_checker.dtype), tostring(torch.float16), "torch_dtype")
local h = run(half)
for i = 1, 3 do
  local f = h.nsfw_content_detected[i]
  check.eq(type(f), "boolean", "float16 flag " .. i)
  if f then check.eq(h.images[i]:abs():max():item(), 0, "float16: flagged is black") end
end
print("ok")
