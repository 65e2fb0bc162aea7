-- safetensors.torch.load_file and save_file: tensors of several dtypes written and read back
-- equal, the metadata kept, a file read by the Python library's rules (the committed SDXL
-- embedding, made by safetensors' own save_file), and what bad input gets.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local dir = check.tmpdir()
local path = dir .. "/t.safetensors"

local tensors = {
  a = torch.arange(0, 12):reshape(3, 4):to(torch.float32) / 7,
  b = torch.arange(0, 6):to(torch.float32):to(torch.float16),
  ["c.weight"] = torch.arange(0, 5):to(torch.int64),
}
safetensors.torch.save_file(tensors, path, {format = "pt"})
local back = safetensors.torch.load_file(path)
for name, t in pairs(tensors) do
  check.truthy(back[name], "read back: " .. name)
  check.eq(tostring(back[name].dtype), tostring(t.dtype), name .. " dtype")
  check.eq((back[name]:to(torch.float32) - t:to(torch.float32)):abs():max():item(), 0, name .. " values")
end

-- a file the Python library wrote
local emb = safetensors.torch.load_file(src .. "/tests/fixtures/textual_inversion/xl/embedding.safetensors")
check.truthy(emb.clip_l and emb.clip_g, "the SDXL embedding's two halves")
check.eq(emb.clip_l:size(1), 2, "clip_l vectors")

-- bad input: a message, and nothing written over the old file
check.raises("names mapped to tensors expected", function()
  safetensors.torch.save_file({a = 1}, path)
end)
check.eq(safetensors.torch.load_file(path).a:size(1), 3, "the old file is still whole")
local f = assert(io.open(dir .. "/cut.safetensors", "wb"))
f:write(string.pack("<I8", 200), "{")
f:close()
check.raises("cut.safetensors", function() safetensors.torch.load_file(dir .. "/cut.safetensors") end)
check.raises("No such file", function() safetensors.torch.load_file(dir .. "/none.safetensors") end)
print("ok")
