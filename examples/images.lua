-- %% [markdown]
-- # Images in sdrepl
--
-- `Image` follows **PIL**: `Image.new(mode, size, color)` makes a picture,
-- `img:resize(size)` scales it, and `image_grid(images, rows, cols)` is the
-- helper from the diffusers notebooks. A cell's last expression is shown, as in
-- Jupyter: an Image is displayed, anything else printed; `display(x)` shows a
-- picture in the middle of a cell, and a trailing `;` shows nothing.
--
-- - sizes are `{width, height}`, as PIL's tuples
-- - colors are `{r, g, b}`
--
-- Run it with `sdrepl examples/images.lua`, or write a record of the run with
-- `sdrepl --export images.html examples/images.lua` (or `.md`, `.ipynb`).

-- %% Three solid colors
red = Image.new("RGB", {64, 64}, {220, 40, 40})
green = Image.new("RGB", {64, 64}, {40, 170, 70})
blue = Image.new("RGB", {64, 64}, {40, 80, 220})
print(red, green, blue)
red

-- %% Resizing
small = blue:resize({32, 32})
print("small:", small)
display(small)
green:resize({128, 32})

-- %% Quiet
-- A trailing ';' runs the cell and shows nothing.
tiny = red:resize({8, 8});

-- %% A grid, as in the diffusers notebook
image_grid({red, green, blue}, 1, 3)
