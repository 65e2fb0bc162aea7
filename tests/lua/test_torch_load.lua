-- torch.load: what torch.save wrote, read without running anything, as a table of tensors.
-- Values from torch 1.13's torch.load of the same fixture (tests/fixtures/torch/dtypes.pt).
local check = require "check"
local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"

local sd = torch.load(root .. "/fixtures/torch/dtypes.pt")
local want = {
  f32 = {"torch.float32", {2, 3}, {0.5220499634742737, 1.2379167079925537, -0.8646355867385864}},
  f16 = {"torch.float16", {3}, {0.92626953125, 0.81591796875, 0.4951171875}},
  bf16 = {"torch.bfloat16", {4}, {-0.1640625, -0.6796875, -1.0625}},
  f64 = {"torch.float64", {2}, {0.23891741037368774, -0.39215022325515747}},
  i64 = {"torch.int64", {3}, {1, -2, 3298534883328}},
  i32 = {"torch.int32", {2}, {7, -8}},
  u8 = {"torch.uint8", {2}, {250, 3}},
  view = {"torch.float32", {3}, {0.08897809684276581, -0.6137180328369141, 0.04618244990706444}},
}
for name, w in pairs(want) do
  local t = sd[name]
  check.truthy(t ~= nil, name .. " is there")
  check.eq(tostring(t.dtype), w[1], name .. " dtype")
  for i, n in ipairs(w[2]) do check.eq(t.shape[i], n, name .. " shape") end
  local flat = t:flatten():tolist()
  for i, v in ipairs(w[3]) do check.near(flat[i], v, 1e-12, name .. " value " .. i) end
end

-- a state dict loaded so goes where a path goes
local pipe = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a")
pipe:load_textual_inversion(torch.load(root .. "/fixtures/textual_inversion/cat-toy/learned_embeds.bin"))
check.eq(pipe.tokenizer:convert_tokens_to_ids("<cat-toy>"), 1514, "the token from a loaded dict")

check.raises("not a file torch.save writes",
             function() torch.load(root .. "/fixtures/textual_inversion/shiny/learned_embeds.safetensors") end)
check.raises("option 'map_location'", function() torch.load(root .. "/fixtures/torch/dtypes.pt", {map_location = "tpu"}) end)
check.raises("/nonexistent.pt", function() torch.load("/nonexistent.pt") end)
