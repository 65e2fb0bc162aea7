-- TCDScheduler in the pipelines against diffusers 0.27.2 (tests/reference/tcd, made by
-- scripts/reference/make_tcd_cases.py): tiny-sd-a with TCDScheduler.from_config, text to
-- image with eta 0.3 and guidance 0, with guidance and the pipeline's default eta (0), and
-- image to image with eta 0.5 and a generator per image. Then the class as a notebook meets
-- it: its step's own default eta (0.3), its output's field, compatibles, and the errors.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/tcd/"

local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
pipe.scheduler = TCDScheduler.from_config(pipe.scheduler.config)
pipe:set_progress_bar_config{disable = true}
check.eq(tostring(pipe.scheduler), "<TCDScheduler>", "the swapped scheduler")
local i2i = StableDiffusionImg2ImgPipeline(pipe.components)
i2i:set_progress_bar_config{disable = true}

local function same(images, name)
  local d = (images - torch.load_npy(ref .. name .. ".npy")):abs():max():item()
  check.truthy(d == d and d < 2e-3, string.format("%s: max difference %.3g", name, d))
  print(string.format("%-12s max difference %.2e", name, d))
end

same(pipe{prompt = "a cat on a bench", num_inference_steps = 4, guidance_scale = 0.0, eta = 0.3,
          output_type = "np", generator = torch.Generator():manual_seed(21)}.images, "tcd_eta03")
same(pipe{prompt = "a lighthouse", num_inference_steps = 4, guidance_scale = 7.5,
          output_type = "np", generator = torch.Generator():manual_seed(22)}.images, "tcd_cfg")
same(i2i{prompt = "a red door", image = Image.open(ref .. "sketch64.png"), strength = 0.6,
         num_inference_steps = 8, eta = 0.5, num_images_per_prompt = 2, output_type = "np",
         generator = {torch.Generator():manual_seed(23), torch.Generator():manual_seed(24)}}.images,
     "tcd_i2i")

-- eta changes the picture: a noise draw between steps
local det = pipe{prompt = "a cat on a bench", num_inference_steps = 4, guidance_scale = 0.0,
                 output_type = "np", generator = torch.Generator():manual_seed(21)}.images
check.truthy((det - torch.load_npy(ref .. "tcd_eta03.npy")):abs():max():item() > 1e-3,
             "eta 0 and eta 0.3 differ")

-- step alone: eta defaults to 0.3, as TCDScheduler.step's signature says
local s = TCDScheduler()
s:set_timesteps(4)
check.eq(s.timesteps:tolist()[2], 759, "LCM's schedule: 999, 759, 499, 259")
local x = torch.randn({1, 4, 4, 4}, {generator = torch.Generator():manual_seed(3)})
local t = s.timesteps[1]
local a = s:step(x, t, x, {generator = torch.Generator():manual_seed(5)})
s:set_timesteps(4)
local b = s:step(x, t, x, {generator = torch.Generator():manual_seed(5), eta = 0.3})
check.eq((a.prev_sample - b.prev_sample):abs():max():item(), 0, "default eta is 0.3")
check.truthy(a.pred_noised_sample ~= nil, "TCDSchedulerOutput's pred_noised_sample")
check.eq(a[2], a.pred_noised_sample, "the output indexes as a tuple")
s:set_timesteps(nil, {timesteps = {999, 499}})
check.eq(#s.timesteps:tolist(), 2, "custom timesteps")
local comp = TCDScheduler().compatibles
check.eq(#comp, 1, "compatibles: itself alone")
check.eq(comp[1], TCDScheduler, "compatibles")
s:set_timesteps(4)
check.raises("gamma must be less than or equal to 1.0", s.step, s, x, t, x, {eta = 1.5})
check.raises("is smaller than `num_inference_steps`: 60", s.set_timesteps, s, 60)
