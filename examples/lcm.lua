-- %% [markdown]
-- # Pictures in 4 steps: latent consistency models
--
-- diffusers' LCM guides. An LCM-LoRA (latent-consistency/lcm-lora-sdv1-5) turns any SD 1.5
-- model into one that needs 2 to 8 steps: LCMScheduler, the LoRA, guidance off (0 or 1).
-- A latent consistency model itself (SimianLuo/LCM_Dreamshaper_v7) loads as
-- LatentConsistencyModelPipeline, whose guidance_scale goes into the UNet as an embedding,
-- so one UNet call a step still follows the prompt closely.
-- `sdrepl examples/lcm.lua [MODEL] [LCM_LORA] [LCM_MODEL]` (repo ids or folders).

-- %% Load an SD 1.5 model and the LCM-LoRA
model = arg[1] or os.getenv("SDREPL_MODEL") or "runwayml/stable-diffusion-v1-5"
lcm_lora = arg[2] or "latent-consistency/lcm-lora-sdv1-5"
lcm_model = arg[3] or "SimianLuo/LCM_Dreamshaper_v7"
size = tonumber(os.getenv("SDREPL_SIZE") or "512")
device = torch.cuda.is_available() and "cuda" or "cpu"
dtype = device == "cuda" and torch.float16 or nil
pipe = DiffusionPipeline.from_pretrained(model, {torch_dtype = dtype}):to(device)
pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
pipe:load_lora_weights(lcm_lora)
print(pipe.scheduler)

-- %% 2, 4 and 8 steps, guidance off
prompt = "Self-portrait oil painting, a beautiful cyborg with golden hair, 8k"
steps = {}
for i, n in ipairs{2, 4, 8} do
  steps[i] = pipe{prompt = prompt, num_inference_steps = n, guidance_scale = 0, height = size,
                  width = size, generator = torch.manual_seed(0)}.images[1]
end
image_grid(steps, 1, 3)

-- %% A latent consistency model: 4 steps, guidance 8 as an embedding
lcm = DiffusionPipeline.from_pretrained(lcm_model, {torch_dtype = dtype}):to(device)
print(lcm, lcm.unet.config.time_cond_proj_dim)
out = lcm{prompt = prompt, num_inference_steps = 4, guidance_scale = 8.0, num_images_per_prompt = 2,
          height = size, width = size, generator = torch.manual_seed(0)}
image_grid({steps[2], out.images[1], out.images[2]}, 1, 3)
