-- One UNet call and the VAE's encoder and decoder against diffusers on both tiny
-- models (tests/reference/<model>/unet_*.npy, vae_*.npy from
-- scripts/reference/make_tiny_models.py). Tolerance: max |ours - theirs| / max |theirs|
-- below 1e-4 per tensor, in float32 (weights widened from float16 for tiny-sd-b).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local TOL = 1e-4

local rel_err = check.rel_err

for _, name in ipairs {"tiny-sd-a", "tiny-sd-b"} do
  local ref = root .. "/reference/" .. name .. "/"
  local function npy(f) return torch.load_npy(ref .. f .. ".npy") end
  local model = root .. "/models/" .. name

  local unet = UNet2DConditionModel.from_pretrained(model, {subfolder = "unet"})
  local out = unet(npy("unet_sample"), npy("unet_timesteps"),
                   {encoder_hidden_states = npy("unet_context")}).sample
  local e = rel_err(out, npy("unet_out"), name .. " unet")
  check.truthy(e < TOL, name .. " unet relative error " .. e)
  print(string.format("%s unet: relative error %.2e", name, e))

  local vae = AutoencoderKL.from_pretrained(model, {subfolder = "vae"})
  local dist = vae:encode(npy("vae_encode_input")).latent_dist
  for _, k in ipairs {"mean", "std"} do
    local ek = rel_err(dist[k], npy("vae_" .. k), name .. " vae " .. k)
    check.truthy(ek < TOL, name .. " vae " .. k .. " relative error " .. ek)
  end
  local dec = vae:decode(npy("vae_decode_input")).sample
  local ed = rel_err(dec, npy("vae_decode_output"), name .. " vae decode")
  check.truthy(ed < TOL, name .. " vae decode relative error " .. ed)
  print(string.format("%s vae: decode relative error %.2e", name, ed))

  -- The posterior sample draws from the generator given, as diffusers does.
  local g1 = torch.Generator():manual_seed(3)
  local s1 = dist:sample(g1)
  local g2 = torch.Generator():manual_seed(3)
  local eps = torch.randn(dist.mean.shape, {generator = g2})
  check.eq(rel_err(s1, dist.mean + dist.std * eps, "sample"), 0, "sample = mean + std * eps")
end

-- A timestep as a number is the same as one per batch entry.
local unet = UNet2DConditionModel.from_pretrained(root .. "/models/tiny-sd-a/unet")
local x = torch.randn({1, 4, 16, 16}, {generator = torch.Generator():manual_seed(1)})
local ctx = torch.randn({1, 77, 32}, {generator = torch.Generator():manual_seed(2)})
local a = unet(x, 500, {encoder_hidden_states = ctx}).sample
local b = unet(x, torch.tensor({500.0}), {encoder_hidden_states = ctx}).sample
check.eq((a - b):abs():max():item(), 0, "number and tensor timesteps agree")

-- Bad input is a clear error; the model stays usable.
check.raises("option 'encoder_hidden_states' is required", function() unet(x, 1, {}) end)
-- Sides that do not halve evenly come back at their size, as diffusers' upsample_size
-- makes them (their values: tests/lua/test_img2img_inputs.lua's odd sizes).
check.eq(table.concat(unet(torch.zeros({1, 4, 15, 16}), 1, {encoder_hidden_states = ctx}).sample.shape, ","),
         "1,4,15,16", "odd sides")
check.raises("the context is 24 wide, the layer takes 32", function()
  unet(x, 1, {encoder_hidden_states = torch.zeros({1, 77, 24})})
end)
check.raises("no model folder at", function() AutoencoderKL.from_pretrained(root .. "/models/none") end)
check.eq(unet(x, 500, {encoder_hidden_states = ctx}).sample.shape[2], 4, "still usable")

-- vae:enable_tiling() gives diffusers' tiled pictures (tests/reference/vae_tiling,
-- made by scripts/reference/make_vae_tiling_cases.py), and the untiled ones otherwise.
local tv = AutoencoderKL.from_pretrained(root .. "/models/tiny-vae-tiling")
local tref = root .. "/reference/vae_tiling/"
local z = torch.load_npy(tref .. "dec_48x80_b2_in.npy")
local want = torch.load_npy(tref .. "dec_48x80_b2_out.npy")
local untiled = tv:decode(z).sample
tv:enable_tiling()
local tiled = tv:decode(z).sample
local et = rel_err(tiled, want, "tiled decode")
check.truthy(et < TOL, "tiled decode relative error " .. et)
check.truthy(rel_err(untiled, want, "untiled decode") > 1e-2, "tiling changes the picture, as in diffusers")
tv:disable_tiling()
check.eq(rel_err(tv:decode(z).sample, untiled, "untiled again"), 0, "disable_tiling")
