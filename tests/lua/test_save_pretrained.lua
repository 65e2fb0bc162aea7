-- pipe:save_pretrained against diffusers 0.27.2's DiffusionPipeline.save_pretrained. The tiny
-- models were written by diffusers' own save_pretrained (scripts/reference/make_tiny_models.py),
-- so a model saved unchanged must come out byte for byte as its folder: the weight files
-- (safetensors' layout, {"format": "pt"}), configs, tokenizer and feature extractor files.
-- Every saved folder is loaded again and must give the same pictures bit for bit, with the
-- pipeline's class, scheduler and dtype it was saved with: a float16 pipeline with
-- variant "fp16", a fused LoRA, a single-file checkpoint (converted names), SDXL (two
-- tokenizers and text encoders), a safety checker kept and one taken out; and one model
-- alone (pipe.unet, a ControlNetModel, TAESD); ControlNet (one net and several) and T2I-Adapter
-- pipelines with their nets. What would not
-- load back is refused naming what to do (LoRA adapters, textual inversion tokens), and a
-- failed save leaves no temporary file behind.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local models = src .. "/tests/models/"
local base = os.tmpname() -- a fresh name; the folders are made beside it
os.remove(base)

local read = check.read_file

local function same_file(a, b, what)
  local x, y = read(a), read(b)
  check.truthy(x, what .. ": " .. a .. " exists")
  check.truthy(x == y, what .. ": " .. a .. " equals " .. b)
end

local function files_under(dir)
  local out = {}
  local p = io.popen("cd '" .. dir .. "' && find . -type f | sort")
  for line in p:lines() do out[#out + 1] = line:sub(3) end
  p:close()
  return out
end

local function images(pipe, opts)
  local o = {prompt = "a saved cat", num_inference_steps = 2, output_type = "np",
             generator = torch.Generator():manual_seed(7)}
  for k, v in pairs(opts or {}) do o[k] = v end
  return pipe(o).images
end

local function same_images(a, b, what)
  local d = (a - b):abs():max():item()
  check.truthy(d == 0, string.format("%s: max difference %g", what, d))
  print(string.format("%-44s identical pictures", what))
end

-- 1. A pipeline with a safety checker, as img2img, its scheduler replaced.
local sc = models .. "tiny-sd-sc"
local pipe = StableDiffusionImg2ImgPipeline.from_pretrained(sc)
pipe:set_progress_bar_config{disable = true}
pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config,
                                                         {use_karras_sigmas = true})
check.eq(pipe.config._class_name, "StableDiffusionImg2ImgPipeline", "pipe.config's class")
check.eq(pipe.config.scheduler[2], "DPMSolverMultistepScheduler", "pipe.config names the scheduler now")
check.eq(pipe.config.safety_checker[2], "StableDiffusionSafetyChecker", "pipe.config's checker")
local d1 = base .. "-sc"
pipe:save_pretrained(d1)
for _, f in ipairs(files_under(sc)) do
  if f ~= "model_index.json" and f ~= "scheduler/scheduler_config.json" then
    same_file(d1 .. "/" .. f, sc .. "/" .. f, "unchanged model")
  end
end
local init = Image.open(src .. "/tests/reference/tiny-sd-a/init_image.png"):convert("RGB")
local again = DiffusionPipeline.from_pretrained(d1)
again:set_progress_bar_config{disable = true}
check.truthy(tostring(again):find("StableDiffusionImg2ImgPipeline", 1, true), "class kept")
check.truthy(tostring(again.scheduler):find("DPMSolverMultistepScheduler", 1, true),
             "scheduler kept")
check.eq(again.scheduler.config.use_karras_sigmas, true, "scheduler option kept")
check.eq(again.scheduler.config._use_default_values, nil, "no _use_default_values written")
check.truthy(again.safety_checker, "safety checker kept")
same_images(images(pipe, {image = init, strength = 0.75}),
            images(again, {image = init, strength = 0.75}), "img2img with its safety checker")

pipe.safety_checker = nil
local d2 = base .. "-nosc"
pipe:save_pretrained(d2)
check.eq(read(d2 .. "/safety_checker/model.safetensors"), nil, "no safety checker folder")
local nosc = StableDiffusionImg2ImgPipeline.from_pretrained(d2)
check.eq(nosc.safety_checker, nil, "safety_checker saved as None")

-- 2. float16 weights under variant "fp16".
local a = models .. "tiny-sd-a"
local half = StableDiffusionPipeline.from_pretrained(a, {torch_dtype = torch.float16})
half:set_progress_bar_config{disable = true}
local d3 = base .. "-fp16"
half:save_pretrained(d3, {variant = "fp16"})
check.eq(read(d3 .. "/unet/diffusion_pytorch_model.safetensors"), nil, "only the variant's file")
local w16 = safetensors.torch.load_file(d3 .. "/unet/diffusion_pytorch_model.fp16.safetensors")
local w32 = safetensors.torch.load_file(a .. "/unet/diffusion_pytorch_model.safetensors")
local n = 0
for k, t in pairs(w32) do
  check.truthy(w16[k], "fp16 file has " .. k)
  check.eq(w16[k].dtype, torch.float16, k .. " dtype")
  check.truthy(((w16[k]:float() - t:half():float()):abs():max():item()) == 0, k .. " values")
  n = n + 1
end
for _ in pairs(w16) do n = n - 1 end
check.eq(n, 0, "the same tensors")
local half2 = StableDiffusionPipeline.from_pretrained(d3, {variant = "fp16",
                                                           torch_dtype = torch.float16})
half2:set_progress_bar_config{disable = true}
same_images(images(half), images(half2), "float16, variant fp16")

-- 3. LoRA: refused while loaded; fused and unloaded, it is in the saved weights.
local lpipe = StableDiffusionPipeline.from_pretrained(a)
lpipe:set_progress_bar_config{disable = true}
local plain = images(lpipe)
lpipe:load_lora_weights(src .. "/tests/fixtures/lora/diffusers")
check.raises("unload_lora_weights() first", lpipe.save_pretrained, lpipe, base .. "-lora")
lpipe:fuse_lora{lora_scale = 0.7}
lpipe:unload_lora_weights()
local fused = images(lpipe)
check.truthy((fused - plain):abs():max():item() > 1e-4, "the fused LoRA changes the pictures")
lpipe:save_pretrained(base .. "-lora")
local lora2 = StableDiffusionPipeline.from_pretrained(base .. "-lora")
lora2:set_progress_bar_config{disable = true}
same_images(fused, images(lora2), "fused LoRA")

-- 4. Textual inversion tokens are refused until unloaded.
local ti = StableDiffusionPipeline.from_pretrained(a)
ti:load_textual_inversion(src .. "/tests/fixtures/textual_inversion/cat-toy")
check.raises("unload_textual_inversion() first", ti.save_pretrained, ti, base .. "-ti")
ti:unload_textual_inversion()
ti:save_pretrained(base .. "-ti")
same_file(base .. "-ti/tokenizer/vocab.json", a .. "/tokenizer/vocab.json", "tokenizer after unload")

-- 5. A single-file checkpoint: its converted names written as diffusers' layout.
local single = StableDiffusionPipeline.from_single_file(models .. "tiny-sd-b-ldm.safetensors",
                                                        {config = models .. "tiny-sd-b"})
single:set_progress_bar_config{disable = true}
single:save_pretrained(base .. "-single")
for _, f in ipairs{"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                   "text_encoder/model.safetensors"} do
  local got = safetensors.torch.load_file(base .. "-single/" .. f)
  local want = safetensors.torch.load_file(models .. "tiny-sd-b/" .. f)
  for k, t in pairs(want) do
    check.truthy(got[k], f .. " has " .. k)
    check.truthy((got[k] - t):abs():max():item() == 0, f .. ": " .. k)
  end
end
local single2 = StableDiffusionPipeline.from_pretrained(base .. "-single")
single2:set_progress_bar_config{disable = true}
same_images(images(single), images(single2), "single-file checkpoint")

-- 6. SDXL: both tokenizers and text encoders.
local xl = models .. "tiny-sdxl"
local xpipe = StableDiffusionXLPipeline.from_pretrained(xl)
xpipe:set_progress_bar_config{disable = true}
xpipe:save_pretrained(base .. "-xl")
for _, f in ipairs(files_under(xl)) do
  if f ~= "model_index.json" and f ~= "scheduler/scheduler_config.json" then
    same_file(base .. "-xl/" .. f, xl .. "/" .. f, "unchanged SDXL")
  end
end
check.eq(read(base .. "-xl/model_index.json"):find('"safety_checker"', 1, true), nil,
         "SDXL's model_index.json names no safety checker (diffusers would warn)")
local xl2 = StableDiffusionXLPipeline.from_pretrained(base .. "-xl")
xl2:set_progress_bar_config{disable = true}
same_images(images(xpipe, {height = 64, width = 64}), images(xl2, {height = 64, width = 64}), "SDXL")

-- 7. One model alone, as diffusers' and transformers' model classes save it.
local function same_folder(saved, orig, what)
  for _, f in ipairs(files_under(orig)) do same_file(saved .. "/" .. f, orig .. "/" .. f, what) end
  check.eq(#files_under(saved), #files_under(orig), what .. ": as many files")
end
local mp = StableDiffusionPipeline.from_pretrained(a)
mp.unet:save_pretrained(base .. "-unet")
same_folder(base .. "-unet", a .. "/unet", "pipe.unet")
mp.text_encoder:save_pretrained(base .. "-te")
same_folder(base .. "-te", a .. "/text_encoder", "pipe.text_encoder")
mp.vae:save_pretrained(base .. "-vae")
same_folder(base .. "-vae", a .. "/vae", "pipe.vae")
local unet2 = UNet2DConditionModel.from_pretrained(base .. "-unet")
check.eq(unet2.config.sample_size, mp.unet.config.sample_size, "the saved UNet loads")
ControlNetModel.from_pretrained(models .. "tiny-controlnet-a"):save_pretrained(base .. "-cn")
same_folder(base .. "-cn", models .. "tiny-controlnet-a", "ControlNetModel")
AutoencoderTiny.from_pretrained(models .. "tiny-taesd"):save_pretrained(base .. "-taesd")
same_folder(base .. "-taesd", models .. "tiny-taesd", "AutoencoderTiny")
T2IAdapter.from_pretrained(models .. "tiny-t2i-adapter"):save_pretrained(base .. "-t2i")
same_folder(base .. "-t2i", models .. "tiny-t2i-adapter", "T2IAdapter")
mp:load_lora_weights(src .. "/tests/fixtures/lora/diffusers")
check.raises("unload_lora_weights() first", mp.unet.save_pretrained, mp.unet, base .. "-bad")

-- 8. Pipelines with nets: each net in its folder (controlnet, controlnet_1, ...), named in
-- model_index.json as diffusers names it, and loaded from the folder again when no net is given.
local function net(name) return ControlNetModel.from_pretrained(models .. name) end
local control = {image = init, height = 64, width = 64}
local cn = StableDiffusionControlNetPipeline.from_pretrained(a, {controlnet = net("tiny-controlnet-a")})
cn:set_progress_bar_config{disable = true}
check.eq(cn.config.controlnet[2], "ControlNetModel", "a ControlNet pipeline's config names its net")
cn:save_pretrained(base .. "-cnpipe")
same_folder(base .. "-cnpipe/controlnet", models .. "tiny-controlnet-a", "the pipeline's ControlNet")
local cn2 = DiffusionPipeline.from_pretrained(base .. "-cnpipe")
cn2:set_progress_bar_config{disable = true}
check.truthy(tostring(cn2):find("StableDiffusionControlNetPipeline", 1, true), "ControlNet class kept")
same_images(images(cn, control), images(cn2, control), "ControlNet pipeline")
check.truthy(tostring(AutoPipelineForImage2Image.from_pretrained(base .. "-cnpipe")):find(
  "StableDiffusionControlNetImg2ImgPipeline", 1, true), "AutoPipeline: the task's ControlNet class")
local multi = StableDiffusionControlNetPipeline.from_pretrained(a, {
  controlnet = {net("tiny-controlnet-a"), net("tiny-controlnet-a2")}})
multi:set_progress_bar_config{disable = true}
multi:save_pretrained(base .. "-multi")
check.eq(multi.config.controlnet[1], "controlnet", "MultiControlNetModel's library, as diffusers'")
same_folder(base .. "-multi/controlnet_1", models .. "tiny-controlnet-a2", "the second net")
local multi2 = StableDiffusionControlNetPipeline.from_pretrained(base .. "-multi")
multi2:set_progress_bar_config{disable = true}
check.eq(#multi2.controlnet.nets, 2, "both nets loaded from the folder")
local two = {image = {init, init}, height = 64, width = 64}
same_images(images(multi, two), images(multi2, two), "MultiControlNetModel pipeline")
local ad = StableDiffusionAdapterPipeline.from_pretrained(a, {
  adapter = T2IAdapter.from_pretrained(models .. "tiny-t2i-adapter")})
ad:set_progress_bar_config{disable = true}
ad:save_pretrained(base .. "-adapter")
check.eq(read(base .. "-adapter/model_index.json"):find('"image_encoder"', 1, true), nil,
         "an adapter pipeline's model_index.json has no image_encoder (its class takes none)")
local ad2 = StableDiffusionAdapterPipeline.from_pretrained(base .. "-adapter")
ad2:set_progress_bar_config{disable = true}
same_images(images(ad, {image = init, height = 64, width = 64}),
            images(ad2, {image = init, height = 64, width = 64}), "T2I-Adapter pipeline")

-- A VAE given to from_pretrained, or put in later (TAESD), moves into the pipeline by value:
-- its weights are saved from where they are bound now.
local given = StableDiffusionPipeline.from_pretrained(a, {
  vae = AutoencoderKL.from_pretrained(models .. "tiny-sd-b/vae")})
given:save_pretrained(base .. "-givenvae")
same_folder(base .. "-givenvae/vae", models .. "tiny-sd-b/vae", "a given VAE")
given.vae = AutoencoderTiny.from_pretrained(models .. "tiny-taesd")
check.eq(given.config.vae[2], "AutoencoderTiny", "pipe.config names TAESD")
given:save_pretrained(base .. "-taesdvae")
same_folder(base .. "-taesdvae/vae", models .. "tiny-taesd", "TAESD as the pipeline's VAE")

-- 9. Saved over the folder it was loaded from: the mapped weights stay valid (each file is
-- replaced by a rename, never rewritten in place), the pipeline runs on, the folder loads.
os.execute("cp -r '" .. a .. "' '" .. base .. "-self'")
local self_pipe = StableDiffusionPipeline.from_pretrained(base .. "-self")
self_pipe:set_progress_bar_config{disable = true}
local before = images(self_pipe)
self_pipe:save_pretrained(base .. "-self")
same_images(before, images(self_pipe), "saved over its own folder, still running")
local reloaded = StableDiffusionPipeline.from_pretrained(base .. "-self")
reloaded:set_progress_bar_config{disable = true}
same_images(before, images(reloaded), "saved over its own folder, loaded again")

-- 10. Bad arguments and an impossible folder: clear errors, nothing half-written.
local blocker = base .. "-file"
local f = io.open(blocker, "wb")
f:write("not a folder")
f:close()
check.raises("a file is in the way", half.save_pretrained, half, blocker .. "/inside")
check.raises("option 'variant'", half.save_pretrained, half, base .. "-bad", {variant = ""})
check.raises("safe_serialization", half.save_pretrained, half, base .. "-bad",
             {safe_serialization = false})
check.raises("push_to_hub", half.save_pretrained, half, base .. "-bad", {push_to_hub = true})
check.raises("save_directory", half.save_pretrained, half)
check.eq(io.open(base .. "-bad"), nil, "nothing written for a refused save")
for _, d in ipairs{d1, d2, d3, base .. "-lora", base .. "-ti", base .. "-single", base .. "-xl",
                   base .. "-unet", base .. "-cn", base .. "-cnpipe", base .. "-multi"} do
  for _, name in ipairs(files_under(d)) do
    check.eq(name:find(".tmp-", 1, true), nil, d .. ": temporary file left: " .. name)
  end
end

os.execute("rm -rf '" .. base .. "'-*")
print("save_pretrained: all checks passed")
