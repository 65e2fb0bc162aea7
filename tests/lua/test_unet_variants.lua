-- UNet configs diffusers builds but SD's own never use, one call each against diffusers
-- 0.27.2 (tests/models/unet-variants, tests/reference/unet_variants, made by
-- scripts/reference/make_unet_variant_cases.py): no mid block, a centred input sample,
-- transformer layers per block as a list, one head as wide as its block, upcast
-- attention, cos-first sinusoids with freq_shift 1, latents halved unevenly, the x4
-- upscaler's class labels and only_cross_attention, an asymmetric UNet (SSD-1B's per-layer
-- transformer depths with reverse_transformer_layers_per_block). Tolerance:
-- max |ours - theirs| / max |theirs| below 1e-4, as the tiny models' UNet call.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local TOL = 1e-4

-- the x4 upscaler's UNet takes the noise level as its class label
local labels = {upscaler = torch.tensor({20, 350})}
for _, name in ipairs {"nomid", "deep", "upscaler", "asymmetric", "pad0"} do
  local function npy(k) return torch.load_npy(root .. "/reference/unet_variants/" .. name .. "_" .. k .. ".npy") end
  local unet = UNet2DConditionModel.from_pretrained(root .. "/models/unet-variants/" .. name)
  local got = unet(npy("sample"), npy("timesteps"), {encoder_hidden_states = npy("context"),
                                                     class_labels = labels[name]}).sample
  local want = npy("out")
  for i = 1, 4 do check.eq(got.shape[i], want.shape[i], name .. " shape[" .. i .. "]") end
  local e = (got - want):abs():max():item() / want:abs():max():item()
  check.truthy(e == e and e < TOL, name .. " relative error " .. e)
  print(string.format("%s: relative error %.2e", name, e))
end

-- class labels: needed where the UNet has num_class_embeds, refused where not, in range
do
  local up = UNet2DConditionModel.from_pretrained(root .. "/models/unet-variants/upscaler")
  local x, ctx = torch.zeros(1, 7, 8, 8), torch.zeros(1, 77, 24)
  check.raises("class_labels should be provided", function() up(x, 10, {encoder_hidden_states = ctx}) end)
  check.raises("is not a class of 0 to 999", function()
    up(x, 10, {encoder_hidden_states = ctx, class_labels = 1000})
  end)
  local plain = UNet2DConditionModel.from_pretrained(root .. "/models/unet-variants/nomid")
  check.raises("without num_class_embeds", function()
    plain(torch.zeros(1, 4, 9, 7), 10, {encoder_hidden_states = ctx, class_labels = 1})
  end)
end

-- an asymmetric UNet's config without the up blocks' depths is refused, as diffusers does,
-- and a wrong depth for the weights names what the file holds
do
  local src = root .. "/models/unet-variants/asymmetric"
  local config = assert(io.open(src .. "/config.json")):read("a")
  local function try(text)
    local dir = check.tmpdir()
    assert(io.open(dir .. "/config.json", "w")):write(text):close()
    assert(os.execute(string.format("cp '%s/diffusion_pytorch_model.safetensors' '%s/'", src, dir)))
    return pcall(UNet2DConditionModel.from_pretrained, dir)
  end
  local unreversed = config:gsub('"reverse_transformer_layers_per_block":%s*%b[]', '"reverse_transformer_layers_per_block": null')
  check.truthy(unreversed ~= config, "the config names reverse_transformer_layers_per_block")
  local ok, err = try(unreversed)
  check.truthy(not ok and tostring(err):find("needs \"reverse_transformer_layers_per_block\""),
               "asymmetric without reverse: " .. tostring(err))
  local shallow = config:gsub('"reverse_transformer_layers_per_block":%s*%b[]', '"reverse_transformer_layers_per_block": [[1, 1, 1], 2]')
  ok, err = try(shallow)
  check.truthy(not ok and tostring(err):find("unexpected 'up_blocks.0.attentions.0.transformer_blocks.1"),
               "too shallow an up block: " .. tostring(err))
end
