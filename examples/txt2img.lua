-- %% [markdown]
-- # Text to image
--
-- `sdrepl examples/txt2img.lua [MODEL] [PROMPT] [TAESD]`: one picture from a prompt, saved
-- with the way it was made in its PNG (`img.info.parameters`), then the same one decoded by
-- a tiny VAE.

-- %% Load
model = arg[1] or os.getenv("SDREPL_MODEL") or "runwayml/stable-diffusion-v1-5"
prompt = arg[2] or "a photograph of an astronaut riding a horse"
pipe = StableDiffusionPipeline.from_pretrained(model)
pipe

-- %% Generate
generator = torch.Generator("cpu"):manual_seed(42)
image = pipe{prompt = prompt, negative_prompt = "blurry, low quality",
             num_inference_steps = tonumber(os.getenv("SDREPL_STEPS") or "30"), guidance_scale = 7.5,
             generator = generator}.images[1]
image:save("txt2img.png")
print(image.info.parameters)
image

-- %% A faster decode: TAESD
-- A tiny distilled VAE in place of the pipeline's (diffusers' AutoencoderTiny): the same
-- latents decoded in a fraction of the time, into a close picture.
taesd = arg[3] or "madebyollin/taesd"
pipe.vae = AutoencoderTiny.from_pretrained(taesd)
generator = torch.Generator("cpu"):manual_seed(42)
quick = pipe{prompt = prompt, negative_prompt = "blurry, low quality",
             num_inference_steps = tonumber(os.getenv("SDREPL_STEPS") or "30"), guidance_scale = 7.5,
             generator = generator}.images[1]
image_grid({image, quick}, 1, 2)
