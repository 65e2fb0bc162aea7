-- ImageFilter.GaussianBlur and BoxBlur through Image:filter, diffusers'
-- mask_processor:blur, Image.blend, Image.composite and Image.alpha_composite, against
-- Pillow 13's own pixels (tests/fixtures/pil_ops, made by scripts/reference/
-- make_pil_ops_cases.py from the PIL sources in tests/fixtures/pil): every byte equal, for L,
-- RGB and RGBA pictures; blur radii under a pixel, fractional, one per axis, zero on one axis
-- and wider than the picture; blend weights inside and outside [0, 1].
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/fixtures/"
local function pic(path) return Image.fromarray(torch.load_npy(root .. path)) end

-- the script's CASES, in its order (the files are numbered by it)
local cases = {{"gaussian", 0.5}, {"gaussian", 1}, {"gaussian", 2.7}, {"gaussian", 4},
               {"gaussian", 33}, {"gaussian", {1, 3}}, {"gaussian", {0, 2}}, {"box", 0.5},
               {"box", 1}, {"box", 3.3}, {"box", {2, 0.4}}, {"box", 40}}
local n = 0
for _, src in ipairs{"l", "rgb", "rgba"} do
  local img = pic("pil/src_" .. src .. ".npy")
  local before = img:tobytes()
  for i, c in ipairs(cases) do
    local f = c[1] == "gaussian" and ImageFilter.GaussianBlur(c[2]) or ImageFilter.BoxBlur(c[2])
    local got = img:filter(f)
    local want = pic(string.format("pil_ops/%s_%s_%d.npy", c[1], src, i - 1))
    check.eq(got.mode, want.mode, tostring(f) .. " mode")
    check.truthy(got:tobytes() == want:tobytes(),
                 string.format("%s of %s: Pillow's bytes", tostring(f), src))
    n = n + 1
  end
  check.truthy(img:tobytes() == before, "the source is unchanged")
end

-- diffusers' mask_processor.blur(mask, blur_factor) is a GaussianBlur (4 by default)
local mask = pic("pil/src_l.npy")
local proc = VaeImageProcessor{do_normalize = false, do_binarize = true, do_convert_grayscale = true}
check.truthy(proc:blur(mask):tobytes() == pic("pil_ops/gaussian_l_3.npy"):tobytes(),
             "blur's default factor 4")
check.truthy(proc:blur(mask, 2.7):tobytes() == pic("pil_ops/gaussian_l_2.npy"):tobytes(),
             "blur_factor 2.7")

-- blend, composite, alpha_composite, the second picture the first turned half a turn
local blends = {0.0, 0.3, 0.5, 0.77, 1.0, -0.4, 1.6}
for _, src in ipairs{"l", "rgb", "rgba"} do
  local a = pic("pil/src_" .. src .. ".npy")
  local b = a:transpose(Image.ROTATE_180)
  for i, alpha in ipairs(blends) do
    check.truthy(Image.blend(a, b, alpha):tobytes() ==
                 pic(string.format("pil_ops/blend_%s_%d.npy", src, i - 1)):tobytes(),
                 string.format("blend of %s at %g: Pillow's bytes", src, alpha))
    n = n + 1
  end
  for _, m in ipairs{"l", "rgba"} do
    check.truthy(Image.composite(a, b, pic("pil/src_" .. m .. ".npy")):tobytes() ==
                 pic(string.format("pil_ops/composite_%s_%s.npy", src, m)):tobytes(),
                 string.format("composite of %s through an %s mask: Pillow's bytes", src, m))
    n = n + 1
  end
end
local rgba = pic("pil/src_rgba.npy")
check.truthy(Image.alpha_composite(rgba, rgba:transpose(Image.ROTATE_180)):tobytes() ==
             pic("pil_ops/alpha_composite_rgba.npy"):tobytes(), "alpha_composite: Pillow's bytes")
check.raises("images do not match", Image.blend, rgba, mask, 0.5)
check.raises("images do not match", Image.composite, rgba, rgba, Image.new("L", {3, 3}))

-- Image:thumbnail (in place), Image:reduce and resize's reducing_gap through Lua, against
-- Pillow's bytes (tests/fixtures/pil_reduce; every case is in tests/unit/test_image_reduce.c).
do
  local big = pic("pil_reduce/src_rgba.npy")
  local t = big:copy()
  check.eq(t:thumbnail({64, 64}), nil, "thumbnail returns nothing, as PIL's")
  check.eq(t.size[1] .. "x" .. t.size[2], "64x41", "thumbnail keeps the aspect")
  check.truthy(t:tobytes() == pic("pil_reduce/thumbnail_rgba_0.npy"):tobytes(),
               "thumbnail: Pillow's bytes")
  check.eq(big.size[1], 157, "the original is unchanged")
  local fits = big:copy()
  fits:thumbnail({300, 300})
  check.truthy(fits:tobytes() == big:tobytes(), "a picture that fits is left as it is")
  local rgb = pic("pil_reduce/src_rgb.npy")
  check.truthy(rgb:reduce({7, 4}):tobytes() == pic("pil_reduce/reduce_rgb_12.npy"):tobytes(),
               "reduce({7, 4}): Pillow's bytes")
  check.truthy(rgb:reduce({3, 2}, {3, 2, 30, 20}):tobytes() ==
               pic("pil_reduce/reduce_rgb_14.npy"):tobytes(), "reduce with a box")
  check.truthy(rgb:resize({20, 13}, Image.LANCZOS, nil, 2.0):tobytes() ==
               pic("pil_reduce/resize_rgb_1.npy"):tobytes(), "resize with reducing_gap 2")
  check.raises("reducing_gap must be 1.0 or greater", rgb.resize, rgb, {20, 13}, Image.LANCZOS,
               nil, 0.5)
  check.raises("scale must be > 0", rgb.reduce, rgb, 0)
  check.raises("argument 1 (factor)", rgb.reduce, rgb, {2})
  check.raises("size must be at least 1", t.thumbnail, t, {0, 10})
  n = n + 6
end

-- thumbnail on a JPEG just opened: Pillow's draft decodes it at 1/2, 1/4 or 1/8 first; not once
-- something has read the pixels (tests/fixtures/jpeg, make_jpeg_cases.py's thumbnails).
do
  local thumbs = {{{64, 64}, 2.0}, {{40, 30}, 2.0}, {{10, 10}, 2.0}, {{200, 150}, 1.0},
                  {{64, 64}, false}, {{64, 64}, 2.0, "loaded"}, {{33.5, 90}, 3.0}}
  for i, c in ipairs(thumbs) do
    local im = Image.open(root .. "jpeg/photo.jpg")
    if c[3] then im = im:convert("RGB") end
    im:thumbnail(c[1], Image.BICUBIC, c[2])
    check.truthy(im:tobytes() == pic("jpeg/thumbnail_" .. (i - 1) .. ".npy"):tobytes(),
                 string.format("thumbnail %d of a JPEG (%s): Pillow's bytes", i - 1,
                               c[3] or "just opened"))
    n = n + 1
  end
  local im = Image.open(root .. "jpeg/photo.jpg")
  check.eq(im.size[1], 400, "size does not read the pixels")
  im:thumbnail({64, 64})
  check.truthy(im:tobytes() == pic("jpeg/thumbnail_0.npy"):tobytes(), "reducing_gap 2 by default")
end

-- ImageOps.fit, contain, cover, pad and expand: make_imageops_cases.py's CASES, in its order,
-- against Pillow's bytes (tests/fixtures/pil_imageops).
do
  local color = {l = 200, rgb = {255, 0, 0}, rgba = {255, 0, 0, 128}}
  local B = Image.BICUBIC
  local ops = {
    {"fit", {64, 64}, function(k) return B, 0.0, nil end},
    {"fit", {50, 80}, function(k) return Image.LANCZOS end},
    {"fit", {64, 64}, function(k) return B, 0.1, {0.0, 1.0} end},
    {"fit", {200, 50}, function(k) return B, 0.0, {0.3, 0.7} end},
    {"fit", {157, 101}, function(k) return nil end},
    {"fit", {30, 19}, function(k) return B, 0.25 end},
    {"contain", {64, 64}, function(k) return nil end},
    {"contain", {80, 30}, function(k) return Image.LANCZOS end},
    {"contain", {1000, 50}, function(k) return nil end},
    {"cover", {64, 64}, function(k) return nil end},
    {"cover", {80, 30}, function(k) return nil end},
    {"pad", {64, 64}, function(k) return nil end},
    {"pad", {64, 64}, function(k) return B, color[k], {0.0, 0.0} end},
    {"pad", {40, 90}, function(k) return B, color[k], {1.0, 1.0} end},
    {"pad", {90, 40}, function(k) return B, nil, {0.3, 0.5} end},
    {"expand", 5, function(k) return nil end},
    {"expand", {3, 7}, function(k) return color[k] end},
    {"expand", {1, 2, 3, 4}, function(k) return color[k] end},
  }
  for _, k in ipairs{"l", "rgb", "rgba"} do
    local src = pic("pil_reduce/src_" .. k .. ".npy")
    for i, c in ipairs(ops) do
      local name = string.format("pil_imageops/%s_%s_%d.npy", c[1], k, i - 1)
      check.truthy(ImageOps[c[1]](src, c[2], c[3](k)):tobytes() == pic(name):tobytes(),
                   name .. ": Pillow's bytes")
      n = n + 1
    end
  end
  check.raises("argument 2 (border)", ImageOps.expand, pic("pil/src_rgb.npy"), {1, 2, 3})
  check.raises("argument 5 (centering)", ImageOps.pad, pic("pil/src_rgb.npy"), {9, 9}, nil, nil,
               {0.5})
end

-- Bands: split, getchannel, merge, putalpha, point, getbbox, getextrema. point's values are
-- rounded half to even and clipped, as Pillow 13 gave them for v * 1.7 (0 2 3 5 7 8 10 12)
-- and for -5 / 300.
do
  local im = Image.fromarray(torch.tensor({{{0, 10, 20, 0}, {30, 40, 50, 255}},
                                           {{1, 2, 3, 0}, {4, 5, 6, 7}}}):to(torch.uint8))
  local bands = im:split()
  check.eq(#bands, 4, "split: one L picture per band")
  check.eq(bands[4].mode, "L", "split: L pictures")
  check.truthy(im:getchannel("A"):tobytes() == "\0\255\0\7", "getchannel('A')")
  check.truthy(im:getchannel(3):tobytes() == bands[4]:tobytes(), "getchannel(3) is 0-based")
  check.raises("the band 'A' is not in mode RGB", im:convert("RGB").getchannel, im:convert("RGB"), "A")
  check.truthy(Image.merge("RGBA", bands):tobytes() == im:tobytes(), "merge(split()) is the picture")
  check.raises("wrong number of bands", Image.merge, "RGB", {bands[1]})
  check.raises("mode mismatch", Image.merge, "L", {im})
  check.eq(table.concat(im:getbbox(), ","), "1,0,2,2", "getbbox: alpha alone by default")
  check.eq(table.concat(im:getbbox(false), ","), "0,0,2,2", "getbbox(false): every band")
  check.eq(Image.new("L", {3, 3}):getbbox(), nil, "getbbox of zeros is nil")
  local e = im:getextrema()
  check.eq(e[1][2] .. " " .. e[4][1] .. " " .. e[4][2], "30 0 255", "getextrema per band")
  check.eq(table.concat(bands[2]:getextrema(), " "), "2 40", "getextrema of L")
  local ramp = Image.fromarray(torch.arange(0, 8):to(torch.uint8):reshape({1, 8}))
  check.eq(ramp:point(function(v) return v * 1.7 end):tobytes(), "\0\2\3\5\7\8\10\12",
           "point rounds half to even, as Pillow")
  check.eq(ramp:point(function(v) return v < 3 and -5 or 300 end):tobytes():byte(1, 4), 0,
           "point clips")
  local lut = {}
  for i = 1, 256 do lut[i] = 255 - (i - 1) end
  check.eq(ramp:point(lut):tobytes():byte(2), 254, "point with a table")
  check.raises("a function, or a table of 256 numbers", ramp.point, ramp, {1, 2})
  local rgb = im:convert("RGB")
  rgb:putalpha(im:getchannel("A"))
  check.truthy(rgb:tobytes() == im:tobytes(), "putalpha makes RGB into RGBA, in place")
  rgb:putalpha(300)
  check.eq(rgb:getpixel({0, 0})[4], 255, "putalpha of a number")
  check.raises("images do not match", rgb.putalpha, rgb, Image.new("L", {3, 3}))
  check.raises("has not", ramp.putalpha, ramp, 9)
  n = n + 1
end

-- Mistakes are errors that name what was wrong.
check.raises("radius must be >= 0", ImageFilter.GaussianBlur, -1)
check.raises("radius must be >= 0", ImageFilter.BoxBlur, {1, -2})
check.raises("an ImageFilter.GaussianBlur or BoxBlur expected", mask.filter, mask, {radius = 2})
print(string.format("image operations: %d cases equal to Pillow's", n + 1))
