-- T2I-Adapters against diffusers 0.27.2 (tests/models/tiny-t2i-adapter{,-light,-xl},
-- tests/reference/t2i_adapter, made by scripts/reference/make_t2i_adapter_cases.py): the
-- features of a full, a light (one-channel pictures) and an SDXL adapter, an odd size (the
-- average pooling's ceil mode), and UNet calls taking them as
-- down_intrablock_additional_residuals (tiny-sd-a's with a batch-1 feature broadcast and
-- with the mid block's residual, tiny-sdxl's). Features and UNet outputs within 1e-5 and
-- 1e-4 of diffusers', relative to their largest value (as the other UNet calls' tests).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/t2i_adapter/"
local function npy(name) return torch.load_npy(ref .. name .. ".npy") end

local function within(what, got, want, tol, relative)
  for i = 1, 4 do check.eq(got.shape[i], want.shape[i], what .. " shape[" .. i .. "]") end
  local d = (got - want):abs():max():item()
  if relative then d = d / want:abs():max():item() end
  check.truthy(d == d and d < tol, string.format("%s: difference %.3g", what, d))
  print(string.format("%-12s difference %.2e", what, d))
end

local adapters = {}
for _, name in ipairs {"tiny-t2i-adapter", "tiny-t2i-adapter-light", "tiny-t2i-adapter-xl"} do
  adapters[name] = T2IAdapter.from_pretrained(root .. "/models/" .. name)
end

-- the features
local cases = {{"full", "tiny-t2i-adapter", 2}, {"full_odd", "tiny-t2i-adapter", 2},
               {"light", "tiny-t2i-adapter-light", 3}, {"xl", "tiny-t2i-adapter-xl", 4}}
for _, c in ipairs(cases) do
  local features = adapters[c[2]](npy(c[1] .. "_in"))
  check.eq(#features, c[3], c[1] .. ": how many features")
  for k = 1, c[3] do
    within(string.format("%s f%d", c[1], k - 1), features[k], npy(string.format("%s_f%d", c[1], k - 1)), 1e-5, true)
  end
end

-- what the models say of themselves
local full, xl = adapters["tiny-t2i-adapter"], adapters["tiny-t2i-adapter-xl"]
check.eq(full.config.adapter_type, "full_adapter", "config.adapter_type")
check.eq(full.downscale_factor, 4, "downscale_factor")
check.eq(full.total_downscale_factor, 8, "total_downscale_factor")
check.eq(xl.total_downscale_factor, 16, "the XL adapter's total_downscale_factor")
check.eq(adapters["tiny-t2i-adapter-light"].total_downscale_factor, 16, "the light adapter's")
check.eq(#xl.config.channels, 4, "config.channels")

-- UNet calls with the features
local sd = UNet2DConditionModel.from_pretrained(root .. "/models/tiny-sd-a/unet")
for _, run in ipairs {{"sd_full", 2}, {"sd_mid", 3}} do
  local name, n = run[1], run[2]
  local residuals = {}
  for k = 1, n do residuals[k] = npy(string.format("%s_r%d", name, k - 1)) end
  local out = sd(npy(name .. "_x"), npy(name .. "_t"), {encoder_hidden_states = npy(name .. "_context"),
                 down_intrablock_additional_residuals = residuals}).sample
  within(name, out, npy(name .. "_out"), 1e-4, true)
  -- the caller's residuals are not changed (diffusers' pipelines hand the UNet clones)
  check.eq((residuals[1] - npy(name .. "_r0")):abs():max():item(), 0, name .. ": residuals kept")
end
local plain = sd(npy("sd_full_x"), npy("sd_full_t"), {encoder_hidden_states = npy("sd_full_context")}).sample
check.truthy((plain - npy("sd_full_out")):abs():max():item() > 1e-3, "the residuals change the output")

local sdxl = UNet2DConditionModel.from_pretrained(root .. "/models/tiny-sdxl/unet")
local residuals = {}
for k = 1, 4 do residuals[k] = npy(string.format("xl_f%d", k - 1)) end
local out = sdxl(npy("xl_x"), npy("xl_t"), {encoder_hidden_states = npy("xl_context"),
                 added_cond_kwargs = {text_embeds = npy("xl_text_embeds"), time_ids = npy("xl_time_ids")},
                 down_intrablock_additional_residuals = residuals}).sample
within("xl", out, npy("xl_out"), 1e-4, true)

-- mistakes: features for another UNet, pictures of the wrong size or channels
local ok, err = pcall(sd, npy("sd_full_x"), npy("sd_full_t"), {encoder_hidden_states = npy("sd_full_context"),
                      down_intrablock_additional_residuals = {npy("xl_f0")}})
check.truthy(not ok and tostring(err):find("down_intrablock_additional_residuals%[1%] does not fit"),
             "another UNet's features: " .. tostring(err))
ok, err = pcall(full, torch.zeros(1, 3, 30, 32))
check.truthy(not ok and tostring(err):find("multiples of its downscale_factor 4"),
             "a size the adapter cannot take: " .. tostring(err))
ok, err = pcall(full, torch.zeros(1, 1, 32, 32))
check.truthy(not ok and tostring(err):find("it takes 3 channels"), "channels: " .. tostring(err))
ok, err = pcall(sd, npy("sd_full_x"), npy("sd_full_t"), {encoder_hidden_states = npy("sd_full_context"),
                down_intrablock_additional_residuals = 5})
check.truthy(not ok and tostring(err):find("down_intrablock_additional_residuals.: table expected"), "not a list: " .. tostring(err))
print("ok")
