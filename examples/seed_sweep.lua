-- %% [markdown]
-- # Seeds and strengths in a grid
--
-- The same prompt from four seeds (a row), then one seed at four img2img
-- strengths: how much each choice changes the picture.
-- `sdrepl examples/seed_sweep.lua [MODEL]`.

-- %% Load
model = arg[1] or os.getenv("SDREPL_MODEL") or "CompVis/stable-diffusion-v1-4"
txt2img = StableDiffusionPipeline.from_pretrained(model)
img2img = StableDiffusionImg2ImgPipeline.from_pretrained(model)
prompt = "a watercolor of a lighthouse at dusk"
steps = tonumber(os.getenv("SDREPL_STEPS") or "25")

-- %% Four seeds
row = {}
for i, seed in ipairs {1, 2, 3, 4} do
  local g = torch.Generator():manual_seed(seed)
  row[i] = txt2img{prompt = prompt, generator = g, num_inference_steps = steps}.images[1]
end
image_grid(row, 1, 4)

-- %% One seed, four strengths
strengths = {0.2, 0.4, 0.6, 0.8}
variants = {}
for i, s in ipairs(strengths) do
  local g = torch.Generator():manual_seed(7)
  variants[i] = img2img{prompt = "a lighthouse in a storm, oil painting", image = row[1],
                        strength = s, generator = g, num_inference_steps = steps}.images[1]
end
image_grid(variants, 1, 4)
