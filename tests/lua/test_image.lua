-- tests/lua/test_image.lua — the Lua Image: PIL's API as Lua users see it, its errors,
-- and a save/open round trip. (Pixel parity with Pillow is checked in C.)
local check = require("check")
local root = os.getenv("SDREPL_SOURCE_DIR") or "."

local function pixel_eq(got, want, what)
  if type(want) == "table" then
    check.eq(#got, #want, what .. " channels")
    for i = 1, #want do check.eq(got[i], want[i], what .. "[" .. i .. "]") end
  else
    check.eq(got, want, what)
  end
end

-- Constants: PIL's numbers, also as Image.Resampling (Pillow >= 9).
local filters = {NEAREST = 0, LANCZOS = 1, BILINEAR = 2, BICUBIC = 3, BOX = 4, HAMMING = 5}
for name, value in pairs(filters) do
  check.eq(Image[name], value, "Image." .. name)
  check.eq(Image.Resampling[name], value, "Image.Resampling." .. name)
end

-- Image.new: modes, sizes, colors as PIL reads them.
local img = Image.new("RGB", {4, 3}, {10, 20, 30})
check.eq(tostring(img), "<Image 4x3 RGB>", "tostring")
check.eq(getmetatable(img).__name, "Image", "__name")
check.eq(img.width, 4, "width")
check.eq(img.height, 3, "height")
check.eq(img.mode, "RGB", "mode")
check.eq(img.size[1], 4, "size[1]")
check.eq(img.size[2], 3, "size[2]")
check.eq(#img.size, 2, "#size")
check.eq(next(img.info), nil, "info of a new image is empty")
check.eq(img.nonexistent, nil, "a missing field is nil")
check.eq(Image.Image.resize, img.resize, "methods are Image.Image's")
pixel_eq(img:getpixel({3, 2}), {10, 20, 30}, "filled pixel")
pixel_eq(Image.new("RGBA", {1, 1}):getpixel({0, 0}), {0, 0, 0, 0}, "default RGBA is transparent")
pixel_eq(Image.new("RGBA", {1, 1}, {1, 2, 3}):getpixel({0, 0}), {1, 2, 3, 255}, "alpha defaults to 255")
pixel_eq(Image.new("RGB", {1, 1}, 255):getpixel({0, 0}), {255, 0, 0}, "a number is packed 0xBBGGRR")
pixel_eq(Image.new("RGBA", {1, 1}, 0x80ff0010):getpixel({0, 0}), {16, 0, 255, 128}, "packed RGBA")
pixel_eq(Image.new("RGB", {1, 1}, {300, -5, 3}):getpixel({0, 0}), {255, 0, 3}, "clipped")
pixel_eq(Image.new("RGBA", {1, 1}, {5}):getpixel({0, 0}), {5, 0, 0, 0}, "{v} as PIL")
check.eq(Image.new("L", {2, 2}, 300):getpixel({1, 1}), 255, "L color clipped")
check.eq(Image.new("L", {2, 2}, {7}):getpixel({0, 1}), 7, "L {v}")
check.eq(Image.new("L", {0, 5}).width, 0, "empty images exist, as in PIL")

check.raises('Image.new: argument 1 (mode): expected "L", "RGB" or "RGBA", got "CMYK"', Image.new,
  "CMYK", {1, 1})
check.raises("Image.new: argument 1 (mode): string expected, got number", Image.new, 3, {1, 1})
check.raises("Image.new: argument 2 (size): expected {width, height} with whole numbers from 0 to 32768, got {1}",
  Image.new, "RGB", {1})
check.raises("got {2, 2.5}", Image.new, "RGB", {2, 2.5})
check.raises("got {-1, 2}", Image.new, "RGB", {-1, 2})
check.raises("got {40000, 2}", Image.new, "RGB", {40000, 2})
check.raises("Image.new: argument 2 (size): table expected, got no value", Image.new, "RGB")
check.raises("Image.new: argument 3 (color): expected a whole number or {v} for mode L, got {1, 2, 3}",
  Image.new, "L", {1, 1}, {1, 2, 3})
check.raises("expected a whole number or {r, g, b[, a]}, got {1, 2}", Image.new, "RGB", {1, 1}, {1, 2})
check.raises("argument 3 (color): integer|table expected, got number", Image.new, "L", {1, 1}, 2.5)
check.raises("Image.new: takes at most 3 arguments, got 4", Image.new, "L", {1, 1}, 0, 0)

-- frombytes, tobytes, getpixel, putpixel.
local raw = Image.frombytes("RGB", {2, 1}, "\1\2\3\4\5\6")
check.eq(raw:tobytes(), "\1\2\3\4\5\6", "tobytes")
pixel_eq(raw:getpixel({-1, 0}), {4, 5, 6}, "negative x counts from the end")
raw:putpixel({0, 0}, {9, 8, 7})
check.eq(raw:tobytes(), "\9\8\7\4\5\6", "putpixel")
check.raises("Image.frombytes: argument 3 (data): not enough image data", Image.frombytes, "L", {2, 2}, "abc")
check.raises("Image:getpixel: image index out of range: {2, 0} in 2x1", raw.getpixel, raw, {2, 0})
check.raises("Image:getpixel: self: Image expected, got table (call it as x:getpixel(...))",
  raw.getpixel, {}, {0, 0})

-- convert: PIL's fixed-point luma, alpha dropped or made opaque.
local c = Image.new("RGB", {1, 1}, {10, 20, 30})
check.eq(c:convert("L"):getpixel({0, 0}), 18, "(10*19595 + 20*38470 + 30*7471 + 0x8000) >> 16")
pixel_eq(c:convert("RGBA"):getpixel({0, 0}), {10, 20, 30, 255}, "RGB to RGBA")
pixel_eq(Image.new("RGBA", {1, 1}, {10, 20, 30, 0}):convert("RGB"):getpixel({0, 0}), {10, 20, 30},
  "RGBA to RGB drops alpha, no compositing")
pixel_eq(Image.new("L", {1, 1}, 99):convert("RGBA"):getpixel({0, 0}), {99, 99, 99, 255}, "L to RGBA")
check.eq(c:convert("RGB") == c, true, "convert to the same mode is an equal copy")
check.raises('Image:convert: argument 1 (mode): expected "L", "RGB" or "RGBA", got "P"', c.convert, c, "P")

-- resize: sizes, the default filter (BICUBIC, as Pillow), errors.
local g = Image.new("RGB", {8, 8})
for y = 0, 7 do for x = 0, 7 do g:putpixel({x, y}, {x * 30, y * 30, (x + y) * 15}) end end
local r = g:resize({5, 3})
check.eq(tostring(r), "<Image 5x3 RGB>", "resized")
check.eq(r == g:resize({5, 3}, Image.BICUBIC), true, "BICUBIC is the default")
check.eq(r == g:resize({5, 3}, Image.NEAREST), false, "NEAREST differs")
check.eq(g:resize({8, 8}) == g, true, "same size: a copy")
check.eq(g:resize({16, 2}, Image.Resampling.LANCZOS).size[1], 16, "Resampling.LANCZOS")
check.raises("Image:resize: argument 1 (size): expected {width, height} with whole numbers from 1 to 32768, got {0, 4}",
  g.resize, g, {0, 4})
check.raises("unknown resampling filter (9)", g.resize, g, {2, 2}, 9)
check.raises("Image:resize: argument 2 (resample): integer expected, got string", g.resize, g, {2, 2}, "bicubic")

-- crop: outside the image is zero; coordinates rounded as Python's round().
local cr = g:crop({-1, -1, 2, 2})
check.eq(tostring(cr), "<Image 3x3 RGB>", "crop size")
pixel_eq(cr:getpixel({0, 0}), {0, 0, 0}, "outside is zero")
pixel_eq(cr:getpixel({2, 2}), g:getpixel({1, 1}), "inside is copied")
check.eq(g:crop({1.5, 0.5, 2.5, 2.5}).width, 0, "round half to even: 2 and 2")
check.eq(g:crop() == g, true, "crop() copies")
check.raises("Image:crop: argument 1 (box): expected {left, upper, right, lower}, got {1, 2, 3}", g.crop, g, {1, 2, 3})
check.raises("right is less than left", g.crop, g, {3, 0, 1, 1})

-- paste: position, 4-tuple, mask, color fill, mode conversion; in place.
local dst = Image.new("RGB", {4, 4})
local white = Image.new("L", {2, 2}, 200)
check.eq(dst:paste(white, {3, -1}), nil, "paste returns nothing")
pixel_eq(dst:getpixel({3, 0}), {200, 200, 200}, "L pasted into RGB, clipped")
pixel_eq(dst:getpixel({2, 0}), {0, 0, 0}, "outside the box untouched")
dst:paste(white, {0, 0, 2, 2}, Image.new("L", {2, 2}, 128))
pixel_eq(dst:getpixel({1, 1}), {100, 100, 100}, "L mask blends with PIL's rounding")
dst:paste(white, Image.new("RGBA", {2, 2}, {0, 0, 0, 255}))
pixel_eq(dst:getpixel({0, 0}), {200, 200, 200}, "paste(im, mask): an RGBA mask's alpha")
dst:paste({1, 2, 3}, {2, 2, 4, 4})
pixel_eq(dst:getpixel({3, 3}), {1, 2, 3}, "a color fills the box")
local m = Image.new("RGBA", {3, 3})
m:paste({255, 0, 0, 255}, {0, 0, 2, 2}, Image.new("L", {2, 2}, 128))
pixel_eq(m:getpixel({0, 0}), {255, 0, 0, 128}, "fill over transparent RGBA: PIL's fill_mask_L")
m = Image.new("RGBA", {3, 3}, {0, 0, 255, 100})
m:paste({255, 0, 0, 255}, {0, 0, 2, 2}, Image.new("L", {2, 2}, 128))
pixel_eq(m:getpixel({1, 1}), {128, 0, 127, 178}, "fill over RGBA, blended")
check.raises("Image:paste: images do not match", dst.paste, dst, white, {0, 0, 3, 3})
check.raises("Image:paste: cannot determine region size; use a 4-item box", dst.paste, dst, 5)
check.raises("bad transparency mask", dst.paste, dst, white, {0, 0}, Image.new("RGB", {2, 2}))
check.raises("does not match", dst.paste, dst, white, {0, 0}, Image.new("L", {3, 2}))
check.raises("Image:paste: argument 1 (im): Image|integer|table expected, got string", dst.paste, dst, "red")

-- copy and equality: by content, as PIL.
local copy = dst:copy()
check.eq(copy == dst, true, "copy equals")
copy:putpixel({0, 0}, {9, 9, 9})
check.eq(copy == dst, false, "a changed copy differs")
pixel_eq(dst:getpixel({0, 0}), {200, 200, 200}, "the original is untouched")
check.eq(Image.new("L", {1, 1}) == Image.new("RGB", {1, 1}), false, "modes differ")

-- close and <close>: freed, and every later use is an error.
local closed
do
  local tmp <close> = Image.new("RGB", {2, 2})
  closed = tmp
end
check.eq(tostring(closed), "<Image closed>", "closed by <close>")
check.raises("Image:resize: operation on closed image", closed.resize, closed, {1, 1})
check.raises("operation on closed image", function() return closed.size end)
check.raises("Image:paste: argument 1 (im): image is closed", dst.paste, dst, closed)
local other = Image.new("L", {1, 1})
other:close()
check.raises("Image:copy: operation on closed image", other.copy, other)
check.eq(image_grid ~= nil, true, "image_grid is a global")

-- save and open: PNG keeps pixels and the parameters text; JPEG is close; errors name paths.
local dir = check.tmpdir()
local fixture = root .. "/tests/fixtures/pil/rgb_text.png"
local withtext = Image.open(fixture)
check.eq(tostring(withtext), "<Image 37x23 RGB>", "fixture opened")
check.eq(withtext.info.parameters, "a photo of a cat\nSteps: 20, Sampler: PNDM, Seed: 1", "info.parameters")
withtext:save(dir .. "/again.png")
local again = Image.open(dir .. "/again.png")
check.eq(again == withtext, true, "PNG round trip: pixels")
check.eq(again.info.parameters, withtext.info.parameters, "PNG round trip: parameters")
check.eq(again:resize({10, 10}).info.parameters, withtext.info.parameters, "info follows derived images")
Image.open(root .. "/tests/fixtures/pil/l_latin1.png"):save(dir .. "/grey.PNG")
check.eq(Image.open(dir .. "/grey.PNG").mode, "L", "grey opens as L")
g:save(dir .. "/g.jpg")
local j = Image.open(dir .. "/g.jpg")
check.eq(tostring(j), "<Image 8x8 RGB>", "JPEG round trip")
check.raises("Image:save: cannot save " .. dir .. "/x.gif: unknown file extension '.gif'", g.save, g, dir .. "/x.gif")
check.raises("cannot write mode RGBA as JPEG", g.save, Image.new("RGBA", {1, 1}), dir .. "/a.jpg")
check.raises("Image:save: cannot write " .. dir .. "/no/x.png: No such file or directory", g.save, g,
  dir .. "/no/x.png")
check.raises("Image.open: cannot open " .. dir .. "/missing.png: No such file or directory", Image.open,
  dir .. "/missing.png")
local junk = assert(io.open(dir .. "/junk.png", "wb"))
junk:write("\137PNG\r\n\26\n this is not the rest of a PNG")
junk:close()
check.raises("Image.open: " .. dir .. "/junk.png: cannot identify image file (", Image.open, dir .. "/junk.png")
local p = io.popen("ls -A '" .. dir .. "'")
local listing = p:read("a")
p:close()
check.eq(listing, "again.png\ng.jpg\ngrey.PNG\njunk.png\n", "no temporary files left")
os.execute("rm -rf '" .. dir .. "'")

-- help comes from the same declarations as the checks.
local printed = {}
local real_print = print
print = function(s) printed[#printed + 1] = s end
help(Image.new)
help(Image.Image.resize)
print = real_print
check.truthy(printed[1]:find("Image.new(mode, size, color=0)", 1, true), "help(Image.new)")
check.truthy(printed[2]:find("Image:resize(size, resample=Image.BICUBIC, box=nil, reducing_gap=nil)", 1, true),
             "help(resize)")

-- A JPEG-like file (a fill byte before its start marker) whose Huffman table claims more
-- than 256 codes overran stb_image's arrays (found by fuzzing). libjpeg decodes JPEG now and,
-- as in PIL, does not take it for a JPEG at all.
check.raises("cannot identify image file (Not a JPEG file",
             Image.open, (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/fixtures/hostile/jpeg_dht_overflow.jpg")

-- ImageOps.invert, grayscale, mirror and flip, as Pillow computes them: a 3x2 RGB picture.
local px = Image.fromarray(torch.tensor({{{0, 10, 20}, {30, 40, 50}, {60, 70, 255}},
                                         {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}):to(torch.uint8))
local inv = ImageOps.invert(px)
check.eq(inv.mode, "RGB", "invert keeps the mode")
check.eq(inv:getpixel({0, 0})[2], 245, "invert: 255 - value")
check.eq(inv:getpixel({2, 0})[3], 0, "invert: 255 becomes 0")
check.eq(ImageOps.invert(px:convert("L")):getpixel({1, 1}), 255 - px:convert("L"):getpixel({1, 1}),
         "invert of an L picture")
check.raises("not supported for this image mode", ImageOps.invert, px:convert("RGBA"))
check.truthy(ImageOps.grayscale(px):tobytes() == px:convert("L"):tobytes(), "grayscale is convert L")
check.eq(ImageOps.mirror(px):getpixel({0, 0})[3], 255, "mirror: the right edge comes left")
check.eq(ImageOps.flip(px):getpixel({0, 0})[1], 1, "flip: the bottom row comes up")
check.eq(px:getpixel({0, 0})[1], 0, "the original is unchanged")

-- A PNG whose IDAT chunk claims 1.8 GB in a 116-byte file (found by fuzzing: stb_image would
-- first grow its buffer to 2 GB); refused as truncated before stb sees it.
check.raises("image file is truncated",
             Image.open, (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/fixtures/hostile/png_idat_overlong.png")
