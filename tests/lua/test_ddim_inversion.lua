-- DDIM inversion as a notebook writes it, against diffusers 0.27.2
-- (tests/reference/ddim_inversion, made by scripts/reference/make_ddim_inversion_cases.py):
-- the VAE encodes a sketch, DDIMInverseScheduler walks its latents up through 8 rising
-- timesteps with the UNet, DDIMScheduler walks them back down. Then the class as a
-- notebook meets it: rising timesteps, compatibles, no add_noise, linspace refused.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/ddim_inversion/"
local function npy(name) return torch.load_npy(ref .. name .. ".npy") end

local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
local image = pipe.image_processor:preprocess(Image.open(ref .. "sketch64.png"))
local latents = pipe.vae:encode(image).latent_dist.mean * pipe.vae.config.scaling_factor
local embeds = pipe:encode_prompt("a red door", "cpu", 1, false)

local function walk(scheduler, x)
  for _, t in ipairs(scheduler.timesteps:tolist()) do
    local eps = pipe.unet(scheduler:scale_model_input(x, t), t, {encoder_hidden_states = embeds}).sample
    x = scheduler:step(eps, t, x).prev_sample
  end
  return x
end

-- relative to the largest value: float32 rounding differences of the UNet calls grow as the
-- walk down divides by alpha ** 0.5 (about 3e-4 of 1 after 16 calls)
local function close(got, want, what)
  local d = (got - want):abs():max():item() / want:abs():max():item()
  check.truthy(d == d and d < 1e-3, string.format("%s: max relative difference %.3g", what, d))
  print(string.format("%-10s max relative difference %.2e", what, d))
end

close(latents, npy("latents"), "latents")
local inverse = DDIMInverseScheduler.from_config(pipe.scheduler.config)
inverse:set_timesteps(8)
check.eq((inverse.timesteps:float() - npy("timesteps")):abs():max():item(), 0, "rising timesteps")
local inverted = walk(inverse, latents)
close(inverted, npy("inverted"), "inverted")
local ddim = DDIMScheduler.from_config(pipe.scheduler.config)
ddim:set_timesteps(8)
close(walk(ddim, inverted), npy("restored"), "restored")

-- the class alone
local s = DDIMInverseScheduler()
check.eq(s.timesteps:tolist()[1], 0, "__init__'s timesteps rise from 0")
check.eq(#s.compatibles, 1, "compatibles: itself alone")
s:set_timesteps(4)
check.eq(table.concat(s.timesteps:tolist(), " "), "0 250 500 750", "leading spacing, rising")
local x = torch.zeros({1, 4, 4, 4})
check.raises("'DDIMInverseScheduler' object has no attribute 'add_noise'", s.add_noise, s, x, x, 10)
check.raises("linspace is not supported",
             DDIMInverseScheduler{timestep_spacing = "linspace"}.set_timesteps,
             DDIMInverseScheduler{timestep_spacing = "linspace"}, 4)
