-- ImageDraw.Draw's rectangle, ellipse, polygon and line against Pillow 13 (tests/fixtures/pil_draw, made by
-- scripts/reference/make_draw_cases.py, whose CASES these are, in order): filled and outlined,
-- widths, both inks, the default ink, off the canvas, degenerate boxes, float coordinates and
-- named colours, on L, RGB and RGBA canvases. Then the ways to call them and the errors.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/fixtures/pil_draw/"
local base = {L = 100, RGB = {100, 110, 120}, RGBA = {100, 110, 120, 130}}
local ink = {L = 255, RGB = {255, 0, 0}, RGBA = {255, 0, 0, 200}}
local ink2 = {L = 30, RGB = {0, 0, 255}, RGBA = {0, 0, 255, 255}}

local cases = {
  {"rectangle", {5, 4, 20, 15}, {fill = "ink"}},
  {"rectangle", {5, 4, 20, 15}, {outline = "ink"}},
  {"rectangle", {5, 4, 20, 15}, {outline = "ink", width = 3}},
  {"rectangle", {5, 4, 20, 15}, {fill = "ink2", outline = "ink", width = 2}},
  {"rectangle", {5, 4, 20, 15}, {}},
  {"rectangle", {-5, -3, 12, 40}, {fill = "ink"}},
  {"rectangle", {30, 20, 60, 50}, {outline = "ink", width = 4}},
  {"rectangle", {7, 7, 7, 20}, {fill = "ink"}},
  {"rectangle", {2.7, 3.2, 9.9, 8.5}, {fill = "ink"}},
  {"rectangle", {10, 10, 14, 12}, {outline = "ink", width = 5}},
  {"rectangle", {1, 1, 38, 28}, {fill = "white"}},
  {"ellipse", {5, 4, 30, 25}, {fill = "ink"}},
  {"ellipse", {5, 4, 30, 25}, {outline = "ink"}},
  {"ellipse", {5, 4, 30, 25}, {outline = "ink", width = 3}},
  {"ellipse", {5, 4, 30, 25}, {fill = "ink2", outline = "ink", width = 2}},
  {"ellipse", {2, 2, 6, 5}, {fill = "ink"}},
  {"ellipse", {10, 10, 11, 11}, {fill = "ink"}},
  {"ellipse", {10, 10, 10, 20}, {fill = "ink"}},
  {"ellipse", {-10, -8, 20, 12}, {fill = "ink"}},
  {"ellipse", {0, 0, 39, 29}, {outline = "ink", width = 4}},
  {"ellipse", {3.9, 4.1, 17.5, 22.8}, {fill = "ink"}},
  {"ellipse", {8, 5, 33, 27}, {}},
  {"ellipse", {4, 4, 35, 25}, {fill = "#00ff80"}},
  {"polygon", {{5, 25}, {20, 3}, {35, 25}}, {fill = "ink"}},
  {"polygon", {20, 1, 25, 12, 38, 12, 27, 19, 31, 29, 20, 22, 9, 29, 13, 19, 2, 12, 15, 12},
   {fill = "ink"}},
  {"polygon", {{5, 5}, {30, 5}, {30, 20}, {5, 20}}, {fill = "ink"}},
  {"polygon", {{5, 5}, {15, 5}, {25, 5}, {25, 20}, {5, 20}}, {fill = "ink"}},
  {"polygon", {{-10, -5}, {50, 10}, {10, 40}}, {fill = "ink"}},
  {"polygon", {{5, 25}, {20, 3}, {35, 25}}, {outline = "ink"}},
  {"polygon", {{5, 25}, {20, 3}, {35, 25}, {20, 15}}, {fill = "ink2", outline = "ink"}},
  {"polygon", {{3.7, 2.2}, {36.9, 8.8}, {18.5, 27.9}}, {fill = "ink"}},
  {"polygon", {{5, 5}, {30, 20}}, {fill = "ink"}},
  {"polygon", {{2, 2}, {37, 27}, {37, 2}, {2, 27}}, {fill = "ink"}},
  {"polygon", {{8, 3}, {33, 9}, {21, 26}}, {}},
  {"line", {{2, 3}, {37, 26}}, {fill = "ink"}},
  {"line", {2, 3, 37, 26, 30, 2, 5, 20}, {fill = "ink"}},
  {"line", {{2, 3}, {37, 26}}, {fill = "ink", width = 2}},
  {"line", {{2, 3}, {37, 26}}, {fill = "ink", width = 5}},
  {"line", {{5, 15}, {35, 15}}, {fill = "ink", width = 8}},
  {"line", {{20, 2}, {20, 28}}, {fill = "ink", width = 7}},
  {"line", {{3, 25}, {12, 2}, {27, 27}, {36, 4}}, {fill = "ink", width = 12}},
  {"line", {{-5, 10}, {50, 20}}, {fill = "ink", width = 3}},
  {"line", {{10, 10}, {10, 10}}, {fill = "ink", width = 6}},
  {"line", {{2.6, 3.9}, {36.2, 20.7}}, {fill = "ink", width = 4}},
  {"line", {{4, 27}, {36, 3}}, {}},
  {"line", {{4, 4}, {36, 26}}, {fill = "ink", width = 0}},
}

local n = 0
for _, mode in ipairs{"L", "RGB", "RGBA"} do
  for i, c in ipairs(cases) do
    local im = Image.new(mode, {40, 30}, base[mode])
    local draw = ImageDraw.Draw(im)
    local opts = {}
    for k, v in pairs(c[3]) do
      opts[k] = v == "ink" and ink[mode] or v == "ink2" and ink2[mode] or v
    end
    draw[c[1]](draw, c[2], opts)
    local want = Image.fromarray(torch.load_npy(root .. string.format("%s_%s_%d.npy", c[1],
                                                                       mode:lower(), i - 1)))
    check.truthy(im:tobytes() == want:tobytes(),
                 string.format("%s %d on %s: Pillow's pixels", c[1], i - 1, mode))
    n = n + 1
  end
end

-- positional fill, outline and width; two points for xy; a packed number for RGB
local a = Image.new("RGB", {40, 30}, {100, 110, 120})
ImageDraw.Draw(a):rectangle({5, 4, 20, 15}, {0, 0, 255}, {255, 0, 0}, 2)
check.truthy(a:tobytes() == Image.fromarray(torch.load_npy(root .. "rectangle_rgb_3.npy")):tobytes(),
             "rectangle(xy, fill, outline, width)")
local b = Image.new("RGB", {40, 30}, {100, 110, 120})
ImageDraw.Draw(b):ellipse({{5, 4}, {30, 25}}, 0x0000ff)
check.truthy(b:tobytes() == Image.fromarray(torch.load_npy(root .. "ellipse_rgb_11.npy")):tobytes(),
             "ellipse({{x0, y0}, {x1, y1}}, packed red)")

-- errors name what was wrong, and the image is left as it was
local m = Image.new("L", {8, 8})
local d = ImageDraw.Draw(m)
check.raises("x1 must be greater than or equal to x0", d.rectangle, d, {5, 0, 2, 3})
check.raises("y1 must be greater than or equal to y0", d.ellipse, d, {0, 5, 2, 3})
check.raises("argument 1 (xy)", d.rectangle, d, {1, 2, 3})
check.raises("unknown color \"navy\"", d.rectangle, d, {1, 1, 3, 3}, {fill = "navy"})
check.raises("fill: expected a number or {v}", d.rectangle, d, {1, 1, 3, 3}, {255, 0, 0})
check.raises("at least 2 coordinates", d.polygon, d, {{1, 1}})
check.raises("outlines wider than 1 pixel", d.polygon, d, {1, 1, 5, 5, 1, 5},
             {outline = 255, width = 3})
check.raises("joint = \"curve\" is not drawn here", d.line, d, {1, 1, 5, 5}, {width = 6,
             joint = "curve"})
check.raises("width must be >= 0", d.line, d, {1, 1, 5, 5}, 255, -2)
check.eq(m:getextrema()[2], 0, "nothing drawn by the failed calls")
m:close()
check.raises("closed", d.rectangle, d, {1, 1, 3, 3}, {fill = 255})
print(string.format("ImageDraw: %d cases equal to Pillow's", n))
