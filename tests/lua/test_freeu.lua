-- pipe:enable_freeu / unet:enable_freeu against diffusers 0.27.2 (tests/reference/freeu, made
-- by scripts/reference/make_freeu_cases.py): txt2img runs on tiny-sd-a and tiny-sd-b (planes
-- of odd and non-power-of-two sizes in the up blocks, fourier_filter's float32 branch), a
-- factor of 0 (diffusers then runs without FreeU), one UNet call, and disable_freeu. Images
-- within 2e-3 as the other whole runs; the UNet call within 1e-4 of its largest value.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/freeu/"
local PROMPT = "a watercolor of a lighthouse"

local function load(model)
  local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/" .. model)
  pipe:set_progress_bar_config{disable = true}
  return pipe
end

local function run(pipe, name, h, w)
  local images = pipe{prompt = PROMPT, num_inference_steps = 3, height = h, width = w,
                      output_type = "np", generator = torch.Generator():manual_seed(7)}.images
  local d = (images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", name, d))
  print(string.format("%-11s max difference %.2e", name, d))
  return images
end

local cases = {
  {"a_sd15", "tiny-sd-a", {0.9, 0.2, 1.2, 1.4}},
  {"a_strong", "tiny-sd-a", {0.5, 0.3, 1.6, 1.8}},
  {"a_zero", "tiny-sd-a", {0.9, 0.0, 1.2, 1.4}},
  {"b_odd", "tiny-sd-b", {0.9, 0.2, 1.2, 1.4}, 96, 80},
  {"b_64", "tiny-sd-b", {0.7, 0.4, 1.1, 1.3}, 64, 64},
}
local plain = load("tiny-sd-a")
local without = plain{prompt = PROMPT, num_inference_steps = 3, output_type = "np",
                      generator = torch.Generator():manual_seed(7)}.images
for _, c in ipairs(cases) do
  local pipe = load(c[2])
  local f = c[3]
  if c[1] == "a_strong" then
    pipe:enable_freeu(f[1], f[2], f[3], f[4]) -- positional, as Python's
  else
    pipe:enable_freeu{s1 = f[1], s2 = f[2], b1 = f[3], b2 = f[4]}
  end
  local images = run(pipe, c[1], c[4], c[5])
  if c[1] == "a_sd15" then
    check.truthy((images - without):abs():max():item() > 1e-2, "FreeU changes the picture")
  elseif c[1] == "a_zero" then
    check.eq((images - without):abs():max():item(), 0, "a zero factor: no FreeU at all")
  end
end

-- the UNet on its own (pipe.unet shares the pipeline's), then disable_freeu
local pipe = load("tiny-sd-a")
pipe.unet:enable_freeu{s1 = 0.9, s2 = 0.2, b1 = 1.2, b2 = 1.4}
local out = pipe.unet(torch.load_npy(ref .. "unet_x.npy"), 500,
                      {encoder_hidden_states = torch.load_npy(ref .. "unet_ctx.npy")}).sample
local want = torch.load_npy(ref .. "unet_out.npy")
local e = (out - want):abs():max():item() / want:abs():max():item()
check.truthy(e < 1e-4, "UNet call with FreeU: relative error " .. e)
print(string.format("unet call   relative error %.2e", e))
pipe:disable_freeu()
run(pipe, "a_disabled")

check.raises("'b1'", function() pipe:enable_freeu{s1 = 0.9, s2 = 0.2} end)
check.raises("(s1)", function() pipe:enable_freeu() end)
print("ok")
