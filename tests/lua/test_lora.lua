-- pipe:load_lora_weights and the adapter methods against diffusers 0.27.2 with PEFT 0.10.0
-- on tiny-sd-a (tests/fixtures/lora, tests/reference/lora, made by
-- scripts/reference/make_lora_cases.py): a LoRA in diffusers' format (UNet attention,
-- feed-forward, proj_in and resnet convs; the text encoder's attention and MLP) and one
-- in Kohya's (float16, an alpha per layer), then the sequence of calls a notebook makes:
-- a call with cross_attention_kwargs scale, a second adapter (inactive where the first one
-- is, as PEFT leaves it), set_adapters with weights, fuse_lora(lora_scale = 0.8),
-- unfuse_lora, disable_lora, enable_lora, delete_adapters, unload_lora_weights. Each run's
-- images within 2e-3 of diffusers' (as the other whole runs; here the LoRA is summed into
-- the weights, there added to each layer's output: the same in exact arithmetic), the
-- active adapters equal. The base and unloaded runs must equal the model without LoRA
-- exactly, as the weights are then the bound ones again.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local fix = src .. "/tests/fixtures/lora/"
local ref = src .. "/tests/reference/lora/"
local PROMPT = "a photo of a lora cat"

local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
pipe:set_progress_bar_config{disable = true}

local function names(t)
  local out = {}
  for _, v in ipairs(t) do out[#out + 1] = v end
  return table.concat(out, ",")
end

local base
local function run(name, active, opts, tol)
  local o = {prompt = PROMPT, num_inference_steps = 3, output_type = "np",
             generator = torch.Generator():manual_seed(42)}
  for k, v in pairs(opts or {}) do o[k] = v end
  local images = pipe(o).images
  local want = torch.load_npy(ref .. name .. ".npy")
  local d = (images - want):abs():max():item()
  check.truthy(d == d and d < (tol or 2e-3), string.format("%s: max difference %.3g", name, d))
  print(string.format("%-13s max difference %.2e  active {%s}", name, d,
                      names(pipe:get_active_adapters())))
  check.eq(names(pipe:get_active_adapters()), active, name .. ": active adapters")
  return images
end

base = run("base", "")
pipe:load_lora_weights(fix .. "diffusers")
local lists = pipe:get_list_adapters()
check.eq(names(lists.unet), "default_0", "get_list_adapters().unet")
check.eq(names(lists.text_encoder), "default_0", "get_list_adapters().text_encoder")
local loaded = run("loaded", "default_0")
check.truthy((loaded - base):abs():max():item() > 1e-2, "the LoRA changes the picture")
check.eq(pipe.lora_scale, 1.0, "lora_scale before a scaled call")
local ids = pipe.tokenizer({PROMPT}, {padding = "max_length", max_length = 77, return_tensors = "pt"}).input_ids
local hidden = pipe.text_encoder(ids)[1]
run("scaled", "default_0", {cross_attention_kwargs = {scale = 0.5}})
-- the call's scale is gone once it returns (its weights are made again lazily)
check.eq((pipe.text_encoder(ids)[1] - hidden):abs():max():item(), 0, "the text encoder after a scaled call")
check.eq(pipe.lora_scale, 0.5, "lora_scale: the last call's (the next load scales by it)")
run("after_scaled", "default_0")
pipe:load_lora_weights(fix, {weight_name = "kohya.safetensors", adapter_name = "k"})
run("second", "default_0")
pipe:set_adapters({"default_0", "k"}, {0.7, 0.4})
run("set_adapters", "default_0,k")
pipe:fuse_lora{lora_scale = 0.8}
run("fused", "default_0,k")
pipe:unfuse_lora()
run("unfused", "default_0,k")
pipe:disable_lora()
run("disabled", "default_0,k")
pipe:enable_lora()
run("enabled", "default_0,k")
pipe:delete_adapters("default_0")
run("deleted", "k")
pipe:unload_lora_weights()
local unloaded = run("unloaded", "")
check.eq((unloaded - base):abs():max():item(), 0, "after unload_lora_weights: the model's own weights")

-- the first training scripts' format: a torch.save .bin of the attention processors' pairs
-- (no unet. prefix, processor.to_q_lora), found in its folder
do
  local old = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
  old:set_progress_bar_config{disable = true}
  old:load_lora_weights(fix .. "procs")
  local keep = pipe
  pipe = old
  run("procs", "default_0")
  pipe = keep
end

-- pipe.unet called on its own (the deep dive's loop) with cross_attention_kwargs scale: the
-- pipeline's LoRA scaled for the call, as diffusers' UNet forward does with PEFT
do
  local solo = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
  solo:load_lora_weights(fix .. "diffusers")
  local x, ctx = torch.load_npy(ref .. "unet_x.npy"), torch.load_npy(ref .. "unet_ctx.npy")
  for _, c in ipairs {{"unet_half", {scale = 0.5}}, {"unet_full", nil}} do
    local out = solo.unet(x, 400, {encoder_hidden_states = ctx, cross_attention_kwargs = c[2]}).sample
    local want = torch.load_npy(ref .. c[1] .. ".npy")
    local e = (out - want):abs():max():item() / want:abs():max():item()
    check.truthy(e < 1e-5, c[1] .. ": relative error " .. e)
    print(string.format("%-13s relative error %.2e", c[1], e))
  end
end

-- what a typo or a wrong file gets: a message, and the pipeline as it was
check.raises("already in use in the Unet", function()
  pipe:load_lora_weights(fix .. "diffusers", {adapter_name = "x"})
  pipe:load_lora_weights(fix .. "diffusers", {adapter_name = "x"})
end)
check.raises("not in the list of present adapters", function() pipe:set_adapters("nope") end)
check.raises("Invalid LoRA checkpoint", function()
  pipe:load_lora_weights{["unet.conv_in.weight"] = torch.zeros(2, 2)}
end)
check.raises("size mismatch", function()
  pipe:load_lora_weights{
    ["unet.conv_in.lora_A.weight"] = torch.zeros(4, 3, 3, 3),
    ["unet.conv_in.lora_B.weight"] = torch.zeros(32, 4, 1, 1)}
end)
check.raises("an alpha is one", function()
  pipe:load_lora_weights{["lora_unet_conv_in.lora_down.weight"] = torch.zeros(2, 4, 3, 3),
                         ["lora_unet_conv_in.lora_up.weight"] = torch.zeros(32, 2, 1, 1),
                         ["lora_unet_conv_in.alpha"] = torch.zeros(3)}
end)
check.raises("have not been correctly be renamed", function() -- LyCORIS' LoHa, as diffusers
  pipe:load_lora_weights{["lora_unet_conv_in.hada_w1_a"] = torch.zeros(2, 2)}
end)
check.raises("no file named", function() pipe:load_lora_weights(fix .. "diffusers", {weight_name = "nope.safetensors"}) end)
check.raises("argument 1", function() pipe:load_lora_weights(42) end)
pipe:unload_lora_weights()
local again = pipe{prompt = PROMPT, num_inference_steps = 3, output_type = "np",
                   generator = torch.Generator():manual_seed(42)}.images
check.eq((again - base):abs():max():item(), 0, "after the errors: the model's own weights")

-- a state dict in PEFT's own names (lora_A/lora_B), as a table of tensors: one pair on
-- conv_in, and the same as a zero LoRA (up all zero) leaves the picture as it was
pipe:load_lora_weights({["unet.conv_in.lora_A.weight"] = torch.randn(2, 4, 3, 3),
                        ["unet.conv_in.lora_B.weight"] = torch.zeros(32, 2, 1, 1)},
                       {adapter_name = "zero"})
local zero = pipe{prompt = PROMPT, num_inference_steps = 3, output_type = "np",
                  generator = torch.Generator():manual_seed(42)}.images
local dz = (zero - base):abs():max():item()
check.truthy(dz < 1e-5, "a zero LoRA: difference " .. dz)
print("ok")

-- get_active_adapters is PEFT's first LoRA layer's (in unet.modules() order): an adapter on
-- the up blocks, then one on the down blocks, which come first there
pipe:unload_lora_weights()
local function pair(module, rows, cols, conv)
  return {["unet." .. module .. ".lora_A.weight"] = conv and torch.randn(2, cols, 1, 1) or torch.randn(2, cols),
          ["unet." .. module .. ".lora_B.weight"] = conv and torch.randn(rows, 2, 1, 1) or torch.randn(rows, 2)}
end
check.raises("size mismatch", function() -- a 1x1 conv's pair is 4-dimensional, as in torch
  pipe:load_lora_weights(pair("up_blocks.1.attentions.0.proj_out", 32, 32))
end)
pipe:load_lora_weights(pair("up_blocks.1.attentions.0.proj_out", 32, 32, true), {adapter_name = "up"})
check.eq(names(pipe:get_active_adapters()), "up", "one adapter")
pipe:load_lora_weights(pair("down_blocks.0.resnets.0.time_emb_proj", 32, 128), {adapter_name = "down"})
check.eq(names(pipe:get_active_adapters()), "down", "the first layer's adapter")
pipe:unload_lora_weights()

-- tiny-sd-b is stored in float16 and loaded as float32: its LoRA sums stay float32 (as torch
-- widens the weights), not rounded to the file's float16 (which differs by 2.7e-4 here;
-- this run without LoRA is within 1e-5)
local b = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-b")
b:set_progress_bar_config{disable = true}
b:load_lora_weights(fix .. "b-peft.safetensors")
pipe = b
run("b_loaded", "default_0", nil, 5e-5)
print("ok, tiny-sd-b")

-- a pipeline from an original-layout checkpoint takes the same LoRA (its weights bound under
-- diffusers' names), and from_pipe's img2img pipeline shares the adapters, as diffusers'
-- pipelines share their modules
local single = StableDiffusionPipeline.from_single_file(src .. "/tests/models/tiny-sd-a-ldm.ckpt",
                                                        {config = src .. "/tests/models/tiny-sd-a"})
single:set_progress_bar_config{disable = true}
single:load_lora_weights(fix .. "diffusers")
pipe = single
run("loaded", "default_0")
local i2i = AutoPipelineForImage2Image.from_pipe(single)
check.eq(names(i2i:get_active_adapters()), "default_0", "from_pipe shares the adapters")
print("ok, single file")
