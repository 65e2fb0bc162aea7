-- pipe:load_lora_weights on Stable Diffusion XL against diffusers 0.27.2 with PEFT 0.10.0 on
-- tiny-sdxl (tests/fixtures/lora-xl, tests/reference/xl_lora, made by
-- scripts/reference/make_xl_lora_cases.py): a LoRA as SDXL's training scripts save it (the
-- UNet, text_encoder and text_encoder_2) and one from Kohya's SDXL trainer (the original
-- UNet's numbered blocks, lora_te1_/lora_te2_, float16, alphas not all the same), then a
-- notebook's sequence of calls. Each run's images within 2e-3 of diffusers' (the LoRA is
-- summed into the weights here, added to each layer's output there), the active and listed
-- adapters equal; the base and unloaded runs equal the model without LoRA exactly.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local fix = src .. "/tests/fixtures/lora-xl/"
local ref = src .. "/tests/reference/xl_lora/"
local model = src .. "/tests/models/tiny-sdxl"
local PROMPT = "a photo of a lora cat"

local function names(t)
  local out = {}
  for _, v in ipairs(t or {}) do out[#out + 1] = v end
  return table.concat(out, ",")
end

-- listed: what get_list_adapters() gives for each of the three models (the same here)
local function run(pipe, name, active, listed, opts)
  local o = {prompt = PROMPT, num_inference_steps = 3, output_type = "np",
             generator = torch.Generator():manual_seed(42)}
  if not (opts and opts.image) then o.height, o.width = 64, 64 end
  for k, v in pairs(opts or {}) do o[k] = v end
  local images = pipe(o).images
  local d = (images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", name, d))
  check.eq(names(pipe:get_active_adapters()), active, name .. ": active adapters")
  local lists = pipe:get_list_adapters()
  for _, part in ipairs {"unet", "text_encoder", "text_encoder_2"} do
    check.eq(names(lists[part]), listed, name .. ": get_list_adapters()." .. part)
  end
  print(string.format("%-13s max difference %.2e  active {%s}", name, d,
                      names(pipe:get_active_adapters())))
  return images
end

local pipe = StableDiffusionXLPipeline.from_pretrained(model)
pipe:set_progress_bar_config{disable = true}
local base = run(pipe, "base", "", "")
pipe:load_lora_weights(fix .. "diffusers")
local loaded = run(pipe, "loaded", "default_0", "default_0")
check.truthy((loaded - base):abs():max():item() > 1e-2, "the LoRA changes the picture")

-- the second text encoder called on its own carries its LoRA, and a call's scale is taken
-- off it when the call returns
local ids = pipe.tokenizer_2({PROMPT}, {padding = "max_length", max_length = 77,
                                                 return_tensors = "pt"}).input_ids
local embeds = pipe.text_encoder_2(ids).text_embeds
run(pipe, "scaled", "default_0", "default_0", {cross_attention_kwargs = {scale = 0.5}})
check.eq((pipe.text_encoder_2(ids).text_embeds - embeds):abs():max():item(), 0,
         "text_encoder_2 after a scaled call")
pipe:disable_lora()
local plain = pipe.text_encoder_2(ids).text_embeds
check.truthy((plain - embeds):abs():max():item() > 1e-3, "text_encoder_2 holds the LoRA")
pipe:enable_lora()

pipe:load_lora_weights(fix, {weight_name = "kohya-sgm.safetensors", adapter_name = "k"})
run(pipe, "second", "default_0", "default_0,k")
pipe:set_adapters({"default_0", "k"}, {0.7, 0.4})
run(pipe, "set_adapters", "default_0,k", "default_0,k")
pipe:fuse_lora{lora_scale = 0.8}
run(pipe, "fused", "default_0,k", "default_0,k")
pipe:unfuse_lora()
run(pipe, "unfused", "default_0,k", "default_0,k")
pipe:disable_lora()
run(pipe, "disabled", "default_0,k", "default_0,k")
pipe:enable_lora()
pipe:unload_lora_weights()
local unloaded = run(pipe, "unloaded", "", "")
check.eq((unloaded - base):abs():max():item(), 0, "after unload_lora_weights: the model's own weights")

-- LCM-LoRA's way: LCMScheduler, a LoRA, four steps without guidance
do
  local lcm = StableDiffusionXLPipeline.from_pretrained(model)
  lcm:set_progress_bar_config{disable = true}
  lcm.scheduler = LCMScheduler.from_config(lcm.scheduler.config)
  lcm:load_lora_weights(fix .. "kohya-sgm.safetensors")
  run(lcm, "lcm_lora", "default_0", "default_0", {num_inference_steps = 4, guidance_scale = 1.0})
end

-- img2img takes the same loader; Kohya's block names land where diffusers puts them
local i2i = StableDiffusionXLImg2ImgPipeline.from_pretrained(model)
i2i:set_progress_bar_config{disable = true}
i2i:load_lora_weights(fix .. "kohya-sgm.safetensors")
run(i2i, "i2i_kohya", "default_0", "default_0", {image = Image.open(ref .. "sketch64.png"), strength = 0.6})

-- a Kohya SDXL name that is no block of the original UNet: diffusers' message, nothing loaded
check.raises("Checkpoint not supported because layer lora_unet_time_embed_0 not supported", function()
  i2i:load_lora_weights({["lora_unet_input_blocks_4_1_proj_in.lora_down.weight"] = torch.zeros(2, 64),
                         ["lora_unet_input_blocks_4_1_proj_in.lora_up.weight"] = torch.zeros(64, 2),
                         ["lora_unet_time_embed_0.lora_down.weight"] = torch.zeros(2, 32),
                         ["lora_unet_time_embed_0.lora_up.weight"] = torch.zeros(128, 2)},
                        {adapter_name = "bad"})
end)
check.raises("Invalid middle block id 3", function()
  i2i:load_lora_weights({["lora_unet_middle_block_3_proj_in.lora_down.weight"] = torch.zeros(2, 64),
                         ["lora_unet_middle_block_3_proj_in.lora_up.weight"] = torch.zeros(64, 2)},
                        {adapter_name = "bad"})
end)
check.eq(names(i2i:get_list_adapters().unet), "default_0", "a refused file adds no adapter")
print("ok")
