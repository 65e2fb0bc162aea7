-- Inpainting's padding_mask_crop against diffusers 0.27.2 with Pillow 13
-- (tests/reference/mask_crop, scripts/reference/make_mask_crop_cases.py; the cases below are
-- its manifest's): get_crop_region's boxes exactly, the pictures _resize_and_fill,
-- _resize_and_crop and apply_overlay make byte for byte, and whole runs of the inpainting
-- pipelines with the option, whose PIL pictures are within 2 levels of diffusers' (their
-- float pictures agree to about 2e-5 before the rounding to 8 bits; the overlay outside the
-- mask is the original's exactly).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local dir = root .. "/reference/mask_crop/"
local function pic(name) return Image.open(dir .. name .. ".png") end

-- the largest difference of two pictures' bytes (same size and mode)
local function max_diff(a, b, what)
  check.eq(a.size[1], b.size[1], what .. " width")
  check.eq(a.size[2], b.size[2], what .. " height")
  check.eq(a.mode, b.mode, what .. " mode")
  local x, y, d = a:tobytes(), b:tobytes(), 0
  for i = 1, #x do
    local e = math.abs(x:byte(i) - y:byte(i))
    if e > d then d = e end
  end
  return d
end

local proc = VaeImageProcessor()

-- (mask, width, height, pad, diffusers' box)
for _, c in ipairs {
  {"spot", 64, 64, 0, {60, 19, 77, 36}},
  {"spot", 64, 64, 8, {52, 11, 85, 44}},
  {"spot", 48, 32, 4, {52, 16, 86, 39}},
  {"spot", 32, 48, 16, {44, 0, 93, 64}},
  {"tall", 64, 64, 0, {0, 5, 56, 61}},
  {"tall", 64, 64, 8, {0, 0, 64, 64}},
  {"tall", 48, 32, 4, {0, 1, 94, 64}},
  {"tall", 32, 48, 16, {0, 0, 42, 64}},
  {"edge", 64, 64, 0, {82, 50, 96, 64}},
  {"edge", 64, 64, 8, {74, 42, 96, 64}},
  {"edge", 48, 32, 4, {69, 46, 96, 64}},
  {"edge", 32, 48, 16, {69, 24, 96, 64}},
  {"grey", 64, 64, 0, {25, 12, 64, 51}},
  {"grey", 64, 64, 8, {17, 4, 72, 59}},
  {"grey", 48, 32, 4, {10, 8, 80, 55}},
  {"grey", 32, 48, 16, {14, 0, 75, 64}},
} do
  local box = proc:get_crop_region(pic(c[1]), c[2], c[3], c[4])
  check.eq(table.concat(box, ","), table.concat(c[5], ","),
           string.format("get_crop_region(%s, %d, %d, pad=%d)", c[1], c[2], c[3], c[4]))
end
check.raises("the mask is black everywhere",
             function() proc:get_crop_region(Image.new("L", {16, 16}), 16, 16, 0) end)

-- _resize_and_fill of a crop: (name, picture, box, width, height)
for _, c in ipairs {
  {"fill_wide", "sketch", {10, 20, 90, 40}, 64, 64},
  {"fill_tall", "sketch", {30, 0, 50, 64}, 48, 32},
  {"fill_same", "sketch", {16, 0, 80, 64}, 32, 32},
  {"fill_rgba", "rgba", {5, 10, 85, 30}, 48, 48},
  {"fill_mask", "spot", {40, 8, 96, 48}, 64, 64},
} do
  local got = proc:resize(pic(c[2]):crop(c[3]), c[5], c[4], "fill")
  check.eq(max_diff(got, pic(c[1]), c[1]), 0, c[1] .. " byte for byte")
end
-- _resize_and_crop: (name, picture, width, height)
for _, c in ipairs {
  {"cover_wide", "sketch", 32, 32},
  {"cover_tall", "sketch", 24, 56},
} do
  local got = proc:resize(pic(c[2]), c[4], c[3], "crop")
  check.eq(max_diff(got, pic(c[1]), c[1]), 0, c[1] .. " byte for byte")
end
-- apply_overlay: (name, mask, init picture, generated picture, box)
for _, c in ipairs {
  {"overlay_spot", "spot", "sketch", "rings", {36, 4, 96, 64}},
  {"overlay_grey", "grey", "rgba", "rings", {0, 0, 64, 64}},
} do
  local got = proc:apply_overlay(pic(c[2]), pic(c[3]), pic(c[4]), c[5])
  check.eq(max_diff(got, pic(c[1]), c[1]), 0, c[1] .. " byte for byte")
end
-- preprocess with crops_coords and resize_mode, as the pipelines call it (float32 exactly)
local function same(got, name)
  local want = torch.load_npy(dir .. name .. ".npy")
  check.eq(table.concat(got.shape, "x"), table.concat(want.shape, "x"), name .. " shape")
  check.eq((got - want):abs():max():item(), 0, name)
end
local masks = VaeImageProcessor{do_normalize = false, do_binarize = true,
                                do_convert_grayscale = true}
local box = {52, 11, 85, 44}
same(proc:preprocess(pic("sketch"), {height = 64, width = 64, crops_coords = box,
                                     resize_mode = "fill"}), "pre_image_fill")
same(masks:preprocess(pic("spot"), {height = 64, width = 64, crops_coords = box,
                                    resize_mode = "fill"}), "pre_mask_fill")
same(proc:preprocess(pic("sketch"), {height = 48, width = 32, resize_mode = "crop"}),
     "pre_image_crop")
check.raises("Only PIL image input is supported for resize_mode fill",
             function() proc:preprocess(torch.zeros{1, 3, 8, 8}, {resize_mode = "fill"}) end)
print("padding_mask_crop's helpers: byte for byte")

-- whole runs
local function run(name, pipe, args, n)
  pipe:set_progress_bar_config{disable = true}
  local images = pipe(args).images
  check.eq(#images, n, name .. " pictures")
  for i = 1, n do
    local d = max_diff(images[i], pic(string.format("%s_%d", name, i - 1)), name)
    check.truthy(d <= 2, string.format("%s picture %d: %d levels off diffusers'", name, i, d))
    print(string.format("%s picture %d: within %d levels", name, i, d))
  end
  return images
end
local sketch = pic("sketch")
local function base(extra)
  local a = {image = sketch, generator = torch.Generator():manual_seed(extra.seed)}
  for k, v in pairs(extra) do if k ~= "seed" then a[k] = v end end
  return a
end

local in9 = StableDiffusionInpaintPipeline.from_pretrained(root .. "/models/tiny-sd-inpaint",
                                                           {safety_checker = false})
run("run_in9", in9, base {prompt = "a cat on a bench", mask_image = pic("spot"),
                          padding_mask_crop = 8, height = 64, width = 64,
                          num_inference_steps = 4, seed = 3}, 1)
local legacy = StableDiffusionInpaintPipeline.from_pretrained(root .. "/models/tiny-sd-a",
                                                              {safety_checker = false})
run("run_legacy", legacy, base {prompt = "a red door", mask_image = pic("tall"),
                                padding_mask_crop = 4, height = 48, width = 32, strength = 0.8,
                                num_inference_steps = 5, num_images_per_prompt = 2, seed = 4}, 2)
local xl = StableDiffusionXLInpaintPipeline.from_pretrained(root .. "/models/tiny-sdxl-inpaint")
run("run_xl", xl, base {prompt = "a lighthouse", mask_image = pic("edge"), padding_mask_crop = 6,
                        height = 64, width = 64, num_inference_steps = 3, seed = 5}, 1)
local cn = StableDiffusionControlNetInpaintPipeline.from_pretrained(
  root .. "/models/tiny-sd-inpaint",
  {controlnet = ControlNetModel.from_pretrained(root .. "/models/tiny-controlnet-b"),
   safety_checker = false})
run("run_controlnet", cn, base {prompt = "a castle", mask_image = pic("spot"),
                                control_image = pic("rings"), padding_mask_crop = 10,
                                num_inference_steps = 4, seed = 6}, 1)

-- diffusers' conditions, in its words
check.raises("The image should be a PIL image when inpainting mask crop", function()
  in9{prompt = "x", image = {sketch}, mask_image = pic("spot"), padding_mask_crop = 8}
end)
check.raises("The mask image should be a PIL image when inpainting mask crop", function()
  in9{prompt = "x", image = sketch, mask_image = torch.zeros{64, 96}, padding_mask_crop = 8}
end)
check.raises("The output type should be PIL when inpainting mask crop, but is np.", function()
  in9{prompt = "x", image = sketch, mask_image = pic("spot"), padding_mask_crop = 8,
      output_type = "np"}
end)
