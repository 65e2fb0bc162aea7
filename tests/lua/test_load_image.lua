-- load_image (diffusers.utils.load_image) and ImageOps.exif_transpose against diffusers
-- 0.27.2 with Pillow 13 (tests/fixtures/exif, made by
-- scripts/reference/make_load_image_cases.py): a 5x3 PNG with each of the 8 EXIF
-- orientations turned upright pixel for pixel, an L one converted to RGB, and a phone-style
-- JPEG with orientation 6 (decoded by libjpeg-turbo, as PIL decodes it: the same bytes).
-- Image:transpose's seven methods, convert_method, and the errors.
local check = require "check"

local dir = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/fixtures/exif/"

local function same(img, name, tol)
  local want = torch.load_npy(dir .. name:gsub("%.", "_") .. ".npy"):float()
  local got = torch.tensor(img):float()
  check.eq(table.concat(got:size(), "x"), table.concat(want:size(), "x"), name .. " size")
  local d = (got - want):abs():max():item()
  check.truthy(d <= tol, string.format("%s: max difference %g", name, d))
end

for o = 1, 8 do same(load_image(dir .. "o" .. o .. ".png"), "o" .. o .. ".png", 0) end
same(load_image(dir .. "plain.png"), "plain.png", 0)
local grey = load_image(dir .. "o6_l.png")
check.eq(grey.mode, "RGB", "converted to RGB")
same(grey, "o6_l.png", 0)
same(load_image(dir .. "o6.jpg"), "o6.jpg", 0)

-- an Image: turned upright by the orientation of the file it came from
local opened = Image.open(dir .. "o6.png")
check.eq(opened.size[1], 5, "Image.open leaves it as stored, as PIL")
same(load_image(opened), "o6.png", 0)
same(ImageOps.exif_transpose(opened):convert("RGB"), "o6.png", 0)
local upright = ImageOps.exif_transpose(opened)
check.eq(ImageOps.exif_transpose(upright).size[1], 3, "the orientation is gone once applied")
same(load_image(opened:resize({5, 3})), "o6.png", 0) -- resize keeps the file's info, as PIL

-- convert_method instead of convert("RGB")
local l = load_image(dir .. "o1.png", function(img) return img:convert("L") end)
check.eq(l.mode, "L", "convert_method")

-- the seven transposes on a 3x2 picture: where the top-left pixel goes
local t = Image.new("RGB", {3, 2}, {0, 0, 0})
t:putpixel({0, 0}, {255, 0, 0})
local where = {
  [Image.FLIP_LEFT_RIGHT] = {3, 2, 2, 0}, [Image.FLIP_TOP_BOTTOM] = {3, 2, 0, 1},
  [Image.ROTATE_90] = {2, 3, 0, 2}, [Image.ROTATE_180] = {3, 2, 2, 1},
  [Image.ROTATE_270] = {2, 3, 1, 0}, [Image.TRANSPOSE] = {2, 3, 0, 0},
  [Image.TRANSVERSE] = {2, 3, 1, 2},
}
for m, w in pairs(where) do
  local r = t:transpose(m)
  check.eq(r.size[1] .. "x" .. r.size[2], w[1] .. "x" .. w[2], "transpose " .. m .. " size")
  check.eq(r:getpixel{w[3], w[4]}[1], 255, "transpose " .. m .. " corner")
end
check.eq(Image.Transpose.ROTATE_90, Image.ROTATE_90, "Image.Transpose")

-- errors, in diffusers' words
check.raises("Incorrect path or URL", function() load_image(dir .. "missing.png") end)
check.raises("argument 1 (image)", function() load_image(5) end)
check.raises("got 9", function() t:transpose(9) end)
print("ok")
