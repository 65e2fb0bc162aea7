-- ControlNet on "cuda": the same pictures as on the CPU, with one net (guess mode with
-- guidance: the net on the text half inside the recorded CUDA graph), two nets whose step
-- ranges differ (a graph per set of acting nets), in float16, and img2img with a ControlNet
-- (StableDiffusionControlNetImg2ImgPipeline, strength 0.8) and inpainting with a 9-channel UNet
-- (the nets see the latents only); the nets follow the pipeline to the device.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/controlnet/"
local models = root .. "/models/"

local function pipeline(names, opts, cls, model)
  local nets = {}
  for i, n in ipairs(names) do nets[i] = ControlNetModel.from_pretrained(models .. n) end
  opts = opts or {}
  opts.controlnet = #nets == 1 and nets[1] or nets
  local p = (cls or StableDiffusionControlNetPipeline).from_pretrained(
    models .. (model or "tiny-sd-a"), opts)
  p:set_progress_bar_config{disable = true}
  return p
end

local function run(p, args)
  local a = {prompt = "a cat on a bench", num_inference_steps = 5, output_type = "np",
             generator = torch.Generator():manual_seed(3)}
  for k, v in pairs(args) do a[k] = v end
  return p(a).images
end

-- opts (torch_dtype) for both: the noise is drawn in it on either device
local function same(what, names, args, tol, opts, cls, model)
  local cpu = run(pipeline(names, opts and {torch_dtype = opts.torch_dtype}, cls, model), args)
  local p = pipeline(names, opts, cls, model):to("cuda")
  local net = p.controlnet.nets and p.controlnet.nets[1] or p.controlnet
  check.eq(tostring(net.device), "cuda:0", what .. ": the nets follow the pipeline")
  local d = (cpu - run(p, args)):abs():max():item()
  check.truthy(d == d and d < tol, string.format("%s: cuda against cpu %.3g", what, d))
  print(string.format("%-10s cuda against cpu %.2e", what, d))
end

local sketch = Image.open(ref .. "sketch64.png")
local rings = Image.open(ref .. "rings64.png")
same("guess", {"tiny-controlnet-a"}, {image = sketch, guess_mode = true,
                                      controlnet_conditioning_scale = 0.8}, 2e-2)
same("multi", {"tiny-controlnet-a", "tiny-controlnet-a2"},
     {image = {sketch, rings}, controlnet_conditioning_scale = {1.0, 0.6},
      control_guidance_start = {0.0, 0.3}, control_guidance_end = {1.0, 0.8}}, 2e-2)
same("float16", {"tiny-controlnet-a"}, {image = sketch}, 5e-2, {torch_dtype = torch.float16})
same("img2img", {"tiny-controlnet-a"}, {image = rings, control_image = sketch}, 2e-2, nil,
     StableDiffusionControlNetImg2ImgPipeline)
same("inpaint9", {"tiny-controlnet-b"},
     {image = sketch, mask_image = Image.open(ref .. "box64.png"), control_image = rings}, 2e-2,
     nil, StableDiffusionControlNetInpaintPipeline, "tiny-sd-inpaint")
print("ok")
