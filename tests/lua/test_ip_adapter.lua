-- IP-Adapters against diffusers 0.27.2 (tests/reference/ip_adapter and
-- tests/models/tiny-ip-adapter, made by scripts/reference/make_ip_adapter_cases.py): the image
-- encoder's embeddings for each of the three projections (ImageProjection, the Plus
-- Resampler, Full Face), then whole runs: each kind, set_ip_adapter_scale, a batch with
-- generators and DDIM, no guidance, two adapters with their own scales, two pictures for one
-- adapter, two prompts, given embeddings, img2img and a ControlNet. Images within 2e-3 as the other whole
-- runs (they agree to about 1e-5). Then scale 0, unload, moves between dtypes, and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/ip_adapter/"
local models = src .. "/tests/models/"
local repo = models .. "tiny-ip-adapter"
local W = {plain = "ip-adapter_tiny.safetensors", plus = "ip-adapter-plus_tiny.bin",
           full = "ip-adapter-full-face_tiny.safetensors"}

-- the reference's cases (its manifest.json): name, pipeline, adapters, scale, ip pictures,
-- scheduler, call arguments
local cases = {
  {"ip_plain", "txt2img", {"plain"}, nil, {"face"}, nil,
   {prompt = "a cat on a bench", num_inference_steps = 4, seed = 1}},
  {"ip_plain_scale_batch", "txt2img", {"plain"}, 0.6, {"style"}, "ddim",
   {prompt = "a red door", negative_prompt = "blurry", num_images_per_prompt = 2,
    num_inference_steps = 5, seeds = {2, 3}}},
  {"ip_plus", "txt2img", {"plus"}, nil, {"face"}, nil,
   {prompt = "a lighthouse", num_inference_steps = 4, seed = 4}},
  {"ip_full_unguided", "txt2img", {"full"}, 0.8, {"stripes"}, nil,
   {prompt = "a lighthouse", guidance_scale = 1.0, num_inference_steps = 4, seed = 5}},
  {"ip_two_adapters", "txt2img", {"plain", "plus"}, {0.7, 0.4}, {"face", "style"}, nil,
   {prompt = "a cat on a bench", num_inference_steps = 4, seed = 6}},
  {"ip_two_pictures", "txt2img", {"plus"}, 0.5, {{"face", "stripes"}}, nil,
   {prompt = "a cat on a bench", num_inference_steps = 4, seed = 7}},
  {"ip_img2img", "img2img", {"plain"}, 0.8, {"style"}, nil,
   {prompt = "a red door", image = "sketch64", strength = 0.75, num_inference_steps = 6,
    seed = 8}},
  {"ip_controlnet", "controlnet", {"plus"}, nil, {"face"}, nil,
   {prompt = "a lighthouse", image = "sketch64", num_inference_steps = 4, seed = 9}},
  {"ip_prompts_batch", "txt2img", {"plus"}, 0.7, {"face"}, nil,
   {prompt = {"a lighthouse", "a cat on a bench"}, num_images_per_prompt = 2,
    num_inference_steps = 3, seeds = {12, 13, 14, 15}}},
}

local pictures = {}
local function picture(name)
  pictures[name] = pictures[name] or Image.open(ref .. name .. ".png")
  return pictures[name]
end

local function make_pipe(kind)
  local base = models .. "tiny-sd-a"
  local pipe
  if kind == "txt2img" then
    pipe = StableDiffusionPipeline.from_pretrained(base)
  elseif kind == "img2img" then
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(base)
  else
    pipe = StableDiffusionControlNetPipeline.from_pretrained(base, {
      controlnet = ControlNetModel.from_pretrained(models .. "tiny-controlnet-a")})
  end
  pipe:set_progress_bar_config{disable = true}
  return pipe
end

local function load(pipe, kinds)
  local names = {}
  for i, k in ipairs(kinds) do names[i] = W[k] end
  pipe:load_ip_adapter(repo, "models", #names == 1 and names[1] or names)
end

local function ip_images(spec)
  local out = {}
  for i, s in ipairs(spec) do
    if type(s) == "table" then
      out[i] = {}
      for j, n in ipairs(s) do out[i][j] = picture(n) end
    else
      out[i] = picture(s)
    end
  end
  return out
end

local function call(pipe, given, extra)
  local args = check.case_args({output_type = "np"}, given, extra)
  if type(args.image) == "string" then args.image = picture(args.image) end
  return pipe(args)
end

local function same(images, name, what, tol)
  local d = (images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < (tol or 2e-3), string.format("%s: max difference %.3g", what or name, d))
  return d
end

-- prepare_ip_adapter_image_embeds: the image encoder's image_embeds (plain) or
-- hidden_states[-2] (Plus, Full Face), the negatives first, stacked per image
for _, kind in ipairs{"plain", "plus", "full"} do
  local pipe = make_pipe("txt2img")
  load(pipe, {kind})
  local e = pipe:prepare_ip_adapter_image_embeds({picture("face")}, nil, "cpu", 2, true)
  local want = torch.load_npy(ref .. "embeds_" .. kind .. ".npy")
  local err = check.rel_err(e[1], want, "embeds " .. kind)
  check.truthy(err < 1e-5, "embeds " .. kind .. ": relative error " .. err)
  print(string.format("embeds %-5s relative error %.2e", kind, err))
end

local byname = {}
for _, c in ipairs(cases) do
  byname[c[1]] = c
  local pipe = make_pipe(c[2])
  load(pipe, c[3])
  if c[4] then pipe:set_ip_adapter_scale(c[4]) end
  if c[6] then pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config) end
  local d = same(call(pipe, c[7], {ip_adapter_image = ip_images(c[5])}).images, c[1])
  print(string.format("%-22s max difference %.2e", c[1], d))
end

-- given embeddings (one row a half, repeated per image as diffusers does), and a bare Image
-- for a single adapter
local plain = make_pipe("txt2img")
do
  local pipe = make_pipe("txt2img")
  load(pipe, {"plus"})
  local out = call(pipe, {prompt = "a red door", num_images_per_prompt = 2,
                          num_inference_steps = 4, seed = 10},
                   {ip_adapter_image_embeds = {torch.load_npy(ref .. "embeds_plus_one.npy")}})
  same(out.images, "ip_given_embeds", "ip_adapter_image_embeds")
  -- two prompts: the one row of each half for every row of the batch, as the pictures give
  local two = {prompt = {"a lighthouse", "a cat on a bench"}, num_inference_steps = 4, seed = 11}
  same(call(pipe, two, {ip_adapter_image_embeds = {torch.load_npy(ref .. "embeds_plus_one.npy")}})
       .images, "ip_two_prompts", "embeddings for two prompts")
  same(call(pipe, two, {ip_adapter_image = picture("face")}).images, "ip_two_prompts",
       "a picture for two prompts")
  local c = byname.ip_plus
  same(call(pipe, c[7], {ip_adapter_image = picture("face")}).images, c[1], "a bare Image")

  -- scale 0 adds nothing: the plain pipeline's picture; the adapter changes it otherwise
  pipe:set_ip_adapter_scale(0)
  local zero = call(pipe, c[7], {ip_adapter_image = picture("face")}).images
  local base = call(plain, c[7]).images
  check.truthy((zero - base):abs():max():item() < 1e-5, "scale 0: the picture without the adapter")
  local d = (base - torch.load_npy(ref .. c[1] .. ".npy")):abs():max():item()
  check.truthy(d > 0.05, "the adapter changes the picture: " .. d)

  -- unload: the pipeline as it was, without ip_adapter_image
  pipe:unload_ip_adapter()
  check.truthy((call(pipe, c[7]).images - base):abs():max():item() < 1e-5, "after unload")
  check.raises("no IP-Adapter is loaded", function()
    call(pipe, c[7], {ip_adapter_image = picture("face")})
  end)
end

-- the pipeline's UNet called directly: added_cond_kwargs' image_embeds go through the
-- adapter's projection inside the call, as unet_2d_condition's encoder_hid_proj
do
  local pipe = make_pipe("txt2img")
  load(pipe, {"plus"})
  local x, e = torch.load_npy(ref .. "call_sample.npy"), torch.load_npy(ref .. "call_ehs.npy")
  local emb = torch.load_npy(ref .. "call_unet_embeds.npy")
  local pred = pipe.unet(x, 501, {encoder_hidden_states = e,
                                  added_cond_kwargs = {image_embeds = {emb}}}).sample
  local err = check.rel_err(pred, torch.load_npy(ref .. "call_unet.npy"), "unet with image_embeds")
  check.truthy(err < 1e-5, "unet with image_embeds: relative error " .. err)
  check.raises("need added_cond_kwargs", function() pipe.unet(x, 501, {encoder_hidden_states = e}) end)
  check.raises("got 2 and 1", function()
    pipe.unet(x, 501, {encoder_hidden_states = e, added_cond_kwargs = {image_embeds = {emb, emb}}})
  end)
  pipe:unload_ip_adapter()
  check.raises("without an IP-Adapter loaded", function()
    pipe.unet(x, 501, {encoder_hidden_states = e, added_cond_kwargs = {image_embeds = {emb}}})
  end)
end

-- moved to float16 and back (weights read again from the files each time): the adapters,
-- their scales and the image encoder move with the pipeline
do
  local c = byname.ip_two_adapters
  local pipe = make_pipe("txt2img")
  load(pipe, c[3])
  pipe:set_ip_adapter_scale(c[4])
  pipe:to(torch.float16)
  local half = call(pipe, c[7], {ip_adapter_image = ip_images(c[5])}).images
  local m = half:abs():max():item()
  check.truthy(m == m, "float16 weights: a picture without NaN")
  pipe:to(torch.float32)
  same(call(pipe, c[7], {ip_adapter_image = ip_images(c[5])}).images, c[1], "float16 and back")
end

-- what a typo or a wrong file gets: a message, and the pipeline as it was
do
  local pipe = make_pipe("txt2img")
  local c = byname.ip_plain
  check.raises("subfolder and weight_name are required", function() pipe:load_ip_adapter(repo) end)
  check.raises("nope.bin", function() pipe:load_ip_adapter(repo, "models", "nope.bin") end)
  check.raises("Required keys are (`image_proj` and `ip_adapter`) missing", function()
    pipe:load_ip_adapter(models .. "tiny-sd-a", "unet", "diffusion_pytorch_model.safetensors")
  end)
  check.raises("an IP-Adapter for another model", function() -- made for tiny-sd-a's UNet
    local b = StableDiffusionPipeline.from_pretrained(models .. "tiny-sd-b")
    b:load_ip_adapter(repo, "models", W.plain)
  end)
  -- a truncated weight file
  local tmp = check.tmpdir()
  local f = assert(io.open(repo .. "/models/" .. W.plain, "rb"))
  local bytes = f:read("a")
  f:close()
  os.execute("mkdir -p '" .. tmp .. "/models'")
  f = assert(io.open(tmp .. "/models/cut.safetensors", "wb"))
  f:write(bytes:sub(1, #bytes // 2))
  f:close()
  check.raises("cut.safetensors", function() pipe:load_ip_adapter(tmp, "models", "cut.safetensors") end)
  check.raises("`weight_name` and `pretrained_model_name_or_path_or_dict` must have the same length",
               function() pipe:load_ip_adapter({repo, repo, repo}, "models", {W.plain, W.plus}) end)
  -- still the plain pipeline
  check.truthy((call(pipe, c[7]).images - call(plain, c[7]).images):abs():max():item() == 0,
               "nothing loaded by the failures")

  load(pipe, {"plain"})
  check.raises("give ip_adapter_image or ip_adapter_image_embeds", function() call(pipe, c[7]) end)
  check.raises("Provide either `ip_adapter_image` or `ip_adapter_image_embeds`", function()
    call(pipe, c[7], {ip_adapter_image = picture("face"),
                      ip_adapter_image_embeds = {torch.zeros(2, 1, 24)}})
  end)
  check.raises("must have same length as the number of IP Adapters. Got 2 images and 1", function()
    call(pipe, c[7], {ip_adapter_image = {picture("face"), picture("style")}})
  end)
  check.raises("option 'ip_adapter_image_embeds': table expected, got Tensor", function()
    call(pipe, c[7], {ip_adapter_image_embeds = torch.zeros(2, 1, 24)})
  end)
  check.raises("3D or 4D tensors but is 2D", function()
    call(pipe, c[7], {ip_adapter_image_embeds = {torch.zeros(2, 24)}})
  end)
  check.raises("image embeddings must be (images, 24)", function()
    call(pipe, c[7], {ip_adapter_image_embeds = {torch.zeros(2, 1, 25)}})
  end)
  check.raises("2 rows a half; each is repeated for every image of the batch", function()
    call(pipe, c[7], {ip_adapter_image_embeds = {torch.zeros(4, 1, 24)}})
  end)
  check.raises("entry 1 is a number, not an Image", function()
    call(pipe, c[7], {ip_adapter_image = {{42}}})
  end)
  check.raises("Expected 1 but got 2", function() pipe:set_ip_adapter_scale{0.5, 0.5} end)
  -- the pipeline still runs
  same(call(pipe, c[7], {ip_adapter_image = {picture("face")}}).images, c[1], "after the errors")
  -- without an image encoder, only embeddings
  local bare = make_pipe("txt2img")
  bare:load_ip_adapter(repo, {subfolder = "models", weight_name = W.plain,
                              image_encoder_folder = false})
  check.raises("no image_encoder", function() call(bare, c[7], {ip_adapter_image = picture("face")}) end)
  local e = pipe:prepare_ip_adapter_image_embeds({picture("face")}, nil, nil, 1, true)
  same(call(bare, c[7], {ip_adapter_image_embeds = e}).images, c[1], "embeddings from another pipe")
end
