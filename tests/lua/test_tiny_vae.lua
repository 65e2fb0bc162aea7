-- AutoencoderTiny (TAESD) against diffusers 0.27.2: the model's encode and decode, its own
-- tiling, and whole runs of tiny-sd-a with it in place of the pipeline's VAE
-- (tests/reference/tiny_vae, made by scripts/reference/make_tiny_vae_cases.py).
-- Tolerances: max |ours - theirs| / max |theirs| below 1e-5 for the model's calls (float32,
-- 1-4e-6 seen), 1e-4 for whole runs (the UNet's steps add theirs; 2.5e-5 seen).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local ref = root .. "/reference/tiny_vae/"
local function npy(f) return torch.load_npy(ref .. f .. ".npy") end
local rel_err = check.rel_err
local MODEL_TOL, RUN_TOL = 1e-5, 1e-4

local tiny = AutoencoderTiny.from_pretrained(root .. "/models/tiny-taesd")
check.eq(tiny.config.scaling_factor, 1.0, "TAESD's scaling_factor")
check.eq(tiny.config.latent_magnitude, 3, "latent_magnitude")
check.eq(#tiny.config.block_out_channels, 3, "block_out_channels are the decoder's")
check.eq(tiny.config.force_upcast, false, "force_upcast")
check.truthy(tostring(tiny):find("AutoencoderTiny", 1, true), "tostring")

-- encode gives the latents themselves (AutoencoderTinyOutput), no distribution
local enc = tiny:encode(npy("encode_in"))
check.eq(enc.latent_dist, nil, "no latent_dist")
local e = rel_err(enc.latents, npy("encode_out"), "encode")
check.truthy(e < MODEL_TOL, "encode relative error " .. e)
check.eq(rel_err(enc[1], enc.latents, "out[1]"), 0, "out[1] is the latents")
e = rel_err(tiny:decode(npy("decode_in")).sample, npy("decode_out"), "decode")
check.truthy(e < MODEL_TOL, "decode relative error " .. e)
-- scale_latents, unscale_latents and the forward's 8-bit round trip
e = rel_err(tiny:scale_latents(enc.latents), npy("scale_out"), "scale_latents")
check.truthy(e < MODEL_TOL, "scale_latents relative error " .. e)
e = rel_err(tiny:unscale_latents(tiny:scale_latents(enc.latents)), enc.latents, "unscale")
check.truthy(e < 1e-6, "unscale_latents undoes scale_latents: " .. e)
e = rel_err(tiny(npy("encode_in")).sample, npy("forward_out"), "forward")
check.truthy(e < MODEL_TOL, "forward relative error " .. e)
print(string.format("tiny-taesd: encode and decode within %.0e", MODEL_TOL))

-- enable_tiling: its own 512-pixel tiles (2x2 for 464x464), whatever the size
local x8 = AutoencoderTiny.from_pretrained(root .. "/models/tiny-taesd-x8")
local z = npy("tiled_decode_in")
local untiled = x8:decode(z).sample
x8:enable_tiling()
local tiled = x8:decode(z).sample
e = rel_err(tiled, npy("tiled_decode_out"), "tiled decode")
check.truthy(e < MODEL_TOL, "tiled decode relative error " .. e)
check.truthy(rel_err(untiled, npy("tiled_decode_out"), "untiled") > 1e-3, "tiling changes the picture")
e = rel_err(x8:encode(npy("tiled_decode_out")).latents, npy("tiled_encode_out"), "tiled encode")
check.truthy(e < MODEL_TOL, "tiled encode relative error " .. e)
x8:disable_tiling()
check.eq(rel_err(x8:decode(z).sample, untiled, "untiled again"), 0, "disable_tiling")

-- each class refuses the other's folder, naming the right one
check.raises("load it with AutoencoderTiny.from_pretrained",
             function() AutoencoderKL.from_pretrained(root .. "/models/tiny-taesd") end)
check.raises("load it with AutoencoderKL.from_pretrained",
             function() AutoencoderTiny.from_pretrained(root .. "/models/tiny-sd-a/vae") end)

-- pipe.vae = the tiny VAE, the docs' line; the old VAE object keeps working
local function run(pipe, name, args)
  local images = pipe(check.case_args({output_type = "np"}, args)).images
  local err = rel_err(images, npy("run_" .. name), name)
  check.truthy(err < RUN_TOL, name .. " relative error " .. err)
  print(string.format("run %s: relative error %.2e", name, err))
end

local pipe = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a",
                                                     {safety_checker = false})
local old = pipe.vae
pipe.vae = tiny
check.truthy(tostring(pipe.vae):find("AutoencoderTiny", 1, true), "pipe.vae is the tiny one")
run(pipe, "t2i", {prompt = "a red cube", height = 32, width = 48, num_images_per_prompt = 2,
                  num_inference_steps = 3, seed = 5})
local d = old:decode(npy("decode_in")).sample
check.eq(d.shape[2], 3, "the replaced AutoencoderKL still decodes")
check.raises("pipe.vae: an AutoencoderKL or AutoencoderTiny expected, got number",
             function() pipe.vae = 3 end)
pipe.vae = old -- and back: the KL VAE's pictures again
check.truthy(tostring(pipe.vae):find("AutoencoderKL", 1, true), "pipe.vae is the KL one again")

-- img2img given the tiny VAE: retrieve_latents takes .latents, so nothing is drawn for them
local i2i = StableDiffusionImg2ImgPipeline.from_pretrained(root .. "/models/tiny-sd-a",
                                                           {safety_checker = false, vae = tiny})
run(i2i, "i2i", {prompt = "a sketch", image = load_image(ref .. "init_image.png"), strength = 0.8,
                 num_inference_steps = 5, seed = 6})
local other = AutoPipelineForText2Image.from_pipe(i2i)
check.raises("pipelines share these models (from_pipe)", function() other.vae = old end)
check.raises("option 'vae': AutoencoderKL or AutoencoderTiny expected, got string", function()
  StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a", {vae = "taesd"})
end)

-- a saved pipeline whose model_index.json names an AutoencoderTiny as its VAE loads with it
local saved = check.tmpdir() .. "/with-taesd"
assert(os.execute(string.format("cp -r '%s' '%s' && rm -rf '%s/vae' && cp -r '%s' '%s/vae'",
                                root .. "/models/tiny-sd-a", saved, saved,
                                root .. "/models/tiny-taesd", saved)))
local index = io.open(saved .. "/model_index.json"):read("a")
local f = io.open(saved .. "/model_index.json", "w")
f:write((index:gsub('"AutoencoderKL"', '"AutoencoderTiny"')))
f:close()
local from_index = DiffusionPipeline.from_pretrained(saved, {safety_checker = false})
check.truthy(tostring(from_index.vae):find("AutoencoderTiny", 1, true), "the index's VAE class")
run(from_index, "t2i", {prompt = "a red cube", height = 32, width = 48, num_images_per_prompt = 2,
                        num_inference_steps = 3, seed = 5})
