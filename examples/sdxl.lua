-- %% [markdown]
-- # Stable Diffusion XL
--
-- diffusers' SDXL guide: stabilityai/stable-diffusion-xl-base-1.0 at 1024x1024, a second
-- prompt for the second text encoder, and SDXL's micro-conditioning (the size and crop the
-- model is told the picture had, and a negative one to steer away from).
-- Then the ensemble of experts: the base denoises the first 80% of the steps, the refiner the
-- rest, on the base's latents.
-- Last, a LoRA made for SDXL (a Kohya/Civitai file works as well as a diffusers one).
-- `sdrepl examples/sdxl.lua [MODEL] [REFINER] [LORA] [WEIGHT_NAME]` (repo ids or folders).

-- %% Load the base model
model = arg[1] or os.getenv("SDREPL_MODEL") or "stabilityai/stable-diffusion-xl-base-1.0"
steps = tonumber(os.getenv("SDREPL_STEPS") or "30")
device = torch.cuda.is_available() and "cuda" or "cpu"
dtype = device == "cuda" and torch.float16 or nil
pipe = DiffusionPipeline.from_pretrained(model, {torch_dtype = dtype, use_safetensors = true})
pipe = pipe:to(device)
print(pipe)

-- %% One prompt for both text encoders, then a second one for the second
prompt = "Astronaut in a jungle, cold color palette, muted colors, detailed, 8k"
one = pipe{prompt = prompt, num_inference_steps = steps, generator = torch.manual_seed(0)}.images[1]
two = pipe{prompt = prompt, prompt_2 = "Van Gogh painting", num_inference_steps = steps,
           generator = torch.manual_seed(0)}.images[1]

-- %% Micro-conditioning: a small, cropped original to steer away from
size = one.height
steered = pipe{prompt = prompt, num_inference_steps = steps, generator = torch.manual_seed(0),
               negative_original_size = {size // 2, size // 2},
               negative_target_size = {size, size}}.images[1]
image_grid({one, two, steered}, 1, 3)

-- %% The embeddings a call makes, given back: the same picture
pe, ne, pooled, neg_pooled = pipe:encode_prompt(prompt, device, 1, true)
again = pipe{prompt_embeds = pe, negative_prompt_embeds = ne, pooled_prompt_embeds = pooled,
             negative_pooled_prompt_embeds = neg_pooled, num_inference_steps = steps,
             generator = torch.manual_seed(0)}.images[1]
print("the same picture from the embeddings: " .. tostring(again == one))

-- %% The ensemble of experts: the base to 80% of the steps, the refiner from there
refiner_model = arg[2] or "stabilityai/stable-diffusion-xl-refiner-1.0"
refiner = DiffusionPipeline.from_pretrained(refiner_model, {
  text_encoder_2 = pipe.text_encoder_2, vae = pipe.vae, torch_dtype = dtype, use_safetensors = true,
}):to(device)
g = torch.manual_seed(0)
latents = pipe{prompt = prompt, num_inference_steps = steps * 2, denoising_end = 0.8,
               output_type = "latent", generator = g}.images
refined = refiner{prompt = prompt, num_inference_steps = steps * 2, denoising_start = 0.8,
                  image = latents, generator = g}.images[1]
image_grid({one, refined}, 1, 2)

-- %% A LoRA made for SDXL: without it, at half strength and at full strength
lora = arg[3] or "nerijs/pixel-art-xl"
pipe:load_lora_weights(lora, {weight_name = arg[4] or (arg[3] == nil and "pixel-art-xl.safetensors" or nil),
                              adapter_name = "style"})
styled = pipe{prompt = prompt, num_inference_steps = steps, generator = torch.manual_seed(0)}.images[1]
half = pipe{prompt = prompt, num_inference_steps = steps, generator = torch.manual_seed(0),
            cross_attention_kwargs = {scale = 0.5}}.images[1]
image_grid({one, half, styled}, 1, 3)

-- %% Taken out again: the model's own weights
pipe:unload_lora_weights()
again = pipe{prompt = prompt, num_inference_steps = steps, generator = torch.manual_seed(0)}.images[1]
print("without the LoRA, the first picture again: " .. tostring(again == one))
