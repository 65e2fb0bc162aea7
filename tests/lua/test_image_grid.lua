-- tests/lua/test_image_grid.lua — image_grid, the diffusers notebook's helper:
-- both ways of giving rows and cols, the layout, black spare cells, and errors.
local check = require("check")

local function solid(v) return Image.new("RGB", {3, 2}, {v, v, v}) end
local a, b, c = solid(10), solid(20), solid(30)

-- As in the notebook: image_grid(images, rows, cols), row by row.
local grid = image_grid({a, b, c}, 1, 3)
check.eq(tostring(grid), "<Image 9x2 RGB>", "1x3 grid")
check.eq(grid:getpixel({0, 0})[1], 10, "cell 1")
check.eq(grid:getpixel({4, 1})[1], 20, "cell 2")
check.eq(grid:getpixel({8, 1})[1], 30, "cell 3")

-- Keyword style, and a spare cell left black.
grid = image_grid({a, b, c}, {rows = 2, cols = 2})
check.eq(tostring(grid), "<Image 6x4 RGB>", "2x2 grid")
check.eq(grid:getpixel({3, 0})[1], 20, "row 1, col 2")
check.eq(grid:getpixel({0, 2})[1], 30, "row 2, col 1")
check.eq(grid:getpixel({5, 3})[1], 0, "the empty cell is black")

-- The first image's mode; others are converted as paste does.
grid = image_grid({Image.new("L", {2, 2}, 50), Image.new("RGB", {2, 2}, {90, 0, 0})}, 2, 1)
check.eq(grid.mode, "L", "mode of the first image")
check.eq(grid:getpixel({0, 3}), 27, "RGB converted to L")
check.eq(image_grid({Image.new("RGBA", {1, 1}, {1, 2, 3, 4})}, 1, 1):getpixel({0, 0})[4], 4, "RGBA kept")

-- Errors say what is wrong.
check.raises("image_grid: 3 images do not fit in a grid of rows = 1, cols = 2", image_grid, {a, b, c}, 1, 2)
check.raises("image_grid: argument 1 (imgs): imgs[2] is 2x2 but imgs[1] is 3x2", image_grid,
  {a, Image.new("RGB", {2, 2})}, 1, 2)
check.raises("image_grid: argument 1 (imgs): imgs[2] is string, expected an open Image", image_grid,
  {a, "b"}, 1, 2)
check.raises("image_grid: argument 1 (imgs): expected a list of Images, got an empty table", image_grid, {}, 1, 1)
check.raises("image_grid: argument 1 (imgs): table expected, got Image", image_grid, a, 1, 1)
check.raises("image_grid: rows and cols must be from 1 to 32768, got 0 and 3", image_grid, {a}, 0, 3)
check.raises("got 1 and 4611686018427387904", image_grid, {a}, 1, 1 << 62)
check.raises("image_grid: argument 3 (cols): integer expected, got no value", image_grid, {a}, 1)
check.raises("image_grid: option 'cols' is required (integer)", image_grid, {a}, {rows = 1})
check.raises("image_grid: unexpected option 'colums' (expected one of: rows, cols)", image_grid, {a},
  {rows = 1, colums = 3})
check.raises("not both", image_grid, {a}, {rows = 1, cols = 1}, 1)
check.raises("over 32768 on a side", image_grid, {Image.new("L", {20000, 1})}, 1, 2)

-- make_image_grid (diffusers.utils): exactly rows * cols images, an RGB grid, optional resize
do
  local red = Image.new("RGB", {4, 3}, {255, 0, 0})
  local green = Image.new("RGBA", {4, 3}, {0, 255, 0, 128})
  local grid = make_image_grid({red, green, green, red}, 2, 2)
  check.eq(tostring(grid), "<Image 8x6 RGB>", "make_image_grid: RGB, 2x2 cells")
  check.eq(table.concat(grid:getpixel{5, 0}, ","), "0,255,0", "cell 2 (RGBA pasted as RGB)")
  check.eq(table.concat(grid:getpixel{0, 3}, ","), "0,255,0", "cell 3: row 2")
  check.eq(table.concat(grid:getpixel{7, 5}, ","), "255,0,0", "cell 4")
  local sized = make_image_grid({red, green}, {rows = 1, cols = 2, resize = 8})
  check.eq(tostring(sized), "<Image 16x8 RGB>", "resize: each 8x8")
  -- images larger than the first overlap the next cell, as PIL pastes them
  local wide = make_image_grid({red, Image.new("RGB", {6, 3}, {0, 0, 255}), red}, 1, 3)
  check.eq(table.concat(wide:getpixel{8, 0}, ","), "255,0,0", "the third cell pasted last")
  check.eq(table.concat(wide:getpixel{6, 0}, ","), "0,0,255", "the second one's own cell")
  check.raises("len(images) must be rows * cols", make_image_grid, {red, green, red}, 2, 2)
  check.raises("images[2] is string", make_image_grid, {red, "x"}, 1, 2)
  check.raises("option 'resize'", make_image_grid, {red}, {rows = 1, cols = 1, resize = 0})
end
