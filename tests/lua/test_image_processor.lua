-- VaeImageProcessor (pipe.image_processor) against diffusers 0.27.2 with Pillow 13
-- (tests/reference/image_processor, scripts/reference/make_image_processor_cases.py; the
-- cases below are its manifest's). Pictures are resized by our Pillow-exact Lanczos, so
-- preprocess matches to float32 rounding (1e-6); postprocess to "pil" must be byte-equal,
-- to "np" and "pt" within 1e-6.
local check = require "check"

local dir = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/reference/image_processor/"
local function npy(name) return torch.load_npy(dir .. name .. ".npy") end
local function pic(name) return Image.open(dir .. name .. ".png") end

local function same(got, want, tol, what)
  check.eq(#got.shape, #want.shape, what .. " rank")
  for i = 1, #want.shape do check.eq(got.shape[i], want.shape[i], what .. " shape[" .. i .. "]") end
  local d = (got:float() - want:float()):abs():max():item()
  check.truthy(d == d and d <= tol, what .. string.format(": max difference %.3g", d))
end

-- preprocess: pictures
for _, c in ipairs {
  {"rgb", {}, {"rgb"}, {}},
  {"rgba", {}, {"rgba"}, {}},
  {"l", {}, {"l"}, {}},
  {"list_hw", {}, {"rgb", "rgb2"}, {height = 30, width = 50}},
  {"factor4", {vae_scale_factor = 4}, {"rgb"}, {}},
  {"convert_rgb", {do_convert_rgb = true}, {"rgba"}, {}},
  {"grayscale", {do_convert_grayscale = true}, {"rgb"}, {}},
  {"no_normalize", {do_normalize = false}, {"rgb"}, {}},
  {"no_resize", {do_resize = false}, {"rgb"}, {}},
} do
  local name, kw, names, call = c[1], c[2], c[3], c[4]
  local pics = {}
  for i, n in ipairs(names) do pics[i] = pic(n) end
  local proc = VaeImageProcessor(kw)
  same(proc:preprocess(#pics == 1 and pics[1] or pics, call), npy("pre_" .. name), 1e-6,
       "preprocess " .. name)
end

-- preprocess: tensors
for _, c in ipairs {
  {"t01", {}, {}}, {"t_neg", {}, {height = 12, width = 20}}, {"t_latent", {}, {}},
  {"t_chw", {}, {}}, {"t_no_normalize", {do_normalize = false}, {}},
} do
  local name, kw, call = c[1], c[2], c[3]
  same(VaeImageProcessor(kw):preprocess(npy("pre_in_" .. name), call), npy("pre_" .. name), 1e-6,
       "preprocess " .. name)
end

-- postprocess
local proc = VaeImageProcessor()
for _, c in ipairs {
  {"pil", "x3", {output_type = "pil"}, "RGB"},
  {"np", "x3", {output_type = "np"}},
  {"pt", "x3", {output_type = "pt"}},
  {"pt_mixed", "x3", {output_type = "pt", do_denormalize = {true, false}}},
  {"pil_l", "x1", {output_type = "pil"}, "L"},
  {"pil_rgba", "x4", {output_type = "pil"}, "RGBA"},
} do
  local name, input, call, mode = c[1], c[2], c[3], c[4]
  local out = proc:postprocess(npy("post_in_" .. input), call)
  local want = npy("post_" .. name)
  if mode then
    check.eq(#out, want.shape[1], name .. " pictures")
    for i = 1, #out do
      check.eq(out[i].mode, mode, name .. " mode")
      local arr = torch.tensor(out[i])
      if mode == "L" then arr = arr:unsqueeze(3) end
      local w = want[i]
      if #w.shape == 2 then w = w:unsqueeze(3) end
      same(arr, w, 0, "postprocess " .. name .. " picture " .. i)
    end
  else
    same(out, want, 1e-6, "postprocess " .. name)
  end
end
local x3 = npy("post_in_x3")
check.truthy(rawequal(proc:postprocess(x3, {output_type = "latent"}), x3), "latent passes through")

-- The pipeline's, and the config as diffusers shows it.
local pipe = StableDiffusionPipeline.from_pretrained((os.getenv("SDREPL_SOURCE_DIR") or ".") ..
                                                     "/tests/models/tiny-sd-a")
check.eq(pipe.image_processor.config.vae_scale_factor, pipe.vae_scale_factor, "pipe's factor")
check.eq(VaeImageProcessor().config.vae_scale_factor, 8, "default factor")
check.eq(VaeImageProcessor().config.resample, "lanczos", "resample")

-- numpy_to_pil (the pipeline's and the processor's): the pictures output_type "pil" gives from
-- the "np" array, byte for byte; one (H, W, C) array is a list of one; one channel is mode L.
pipe:set_progress_bar_config{disable = true}
local function run(kind)
  return pipe{prompt = "a cat", num_inference_steps = 2, output_type = kind,
              generator = torch.Generator():manual_seed(3)}.images
end
local arr, pils = run("np"), run("pil")
local made = pipe:numpy_to_pil(arr)
check.eq(#made, #pils, "numpy_to_pil: as many pictures")
for i = 1, #pils do
  check.eq(made[i].mode, "RGB", "numpy_to_pil: mode")
  check.truthy(made[i]:tobytes() == pils[i]:tobytes(), "numpy_to_pil: the pil output's bytes")
end
local one = VaeImageProcessor.numpy_to_pil(arr[1])
check.eq(#one, 1, "an (H, W, C) array: one picture")
check.truthy(one[1]:tobytes() == pils[1]:tobytes(), "an (H, W, C) array: its bytes")
local grey = proc:numpy_to_pil(torch.tensor({{{0.0}, {0.5}}, {{1.0}, {0.25}}}))
check.eq(grey[1].mode, "L", "one channel: mode L")
check.eq(grey[1]:getpixel({1, 0}), 128, "0.5 * 255 rounds half to even")
check.eq(grey[1]:getpixel({1, 1}), 64, "0.25 * 255 = 63.75 rounds to 64")
check.raises("1, 3 or 4 channels", pipe.numpy_to_pil, pipe, torch.zeros({1, 4, 4, 2}))

-- Mistakes are errors that name what was wrong.
check.raises("height and width must be at least", function() proc:preprocess(pic("l"), {height = 7}) end)
check.raises("a (B, C, H, W) or (C, H, W) tensor expected", function() proc:preprocess("x.png") end)
check.raises("a batch needs one size and mode", function() proc:preprocess({pic("rgb"), pic("l")}) end)
check.raises("can not both be set", function()
  VaeImageProcessor{do_convert_rgb = true, do_convert_grayscale = true}
end)
check.raises("1, 3 or 4 channels", function() proc:postprocess(torch.zeros({1, 2, 4, 4})) end)
