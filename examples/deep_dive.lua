-- %% [markdown]
-- # The denoising loop by hand
--
-- The fast.ai "Stable Diffusion deep dive" loop, written with the pipeline's
-- parts as diffusers exposes them: tokenizer, text encoder, scheduler, UNet,
-- VAE. Same seed, same numbers: the last cell checks the picture against the
-- pipeline's own. `sdrepl examples/deep_dive.lua [MODEL]`.

-- %% The parts
model = arg[1] or os.getenv("SDREPL_MODEL") or "CompVis/stable-diffusion-v1-4"
pipe = StableDiffusionPipeline.from_pretrained(model)
tokenizer, text_encoder, unet, vae = pipe.tokenizer, pipe.text_encoder, pipe.unet, pipe.vae
scheduler = pipe.scheduler
prompt = {"A watercolor painting of an otter"}
height = unet.config.sample_size * pipe.vae_scale_factor
width = height
num_inference_steps = tonumber(os.getenv("SDREPL_STEPS") or "30")
guidance_scale = 7.5
batch_size = #prompt

-- %% Text embeddings, with the unconditional ones for guidance
text_input = tokenizer(prompt, {padding = "max_length", max_length = tokenizer.model_max_length,
                                truncation = true})
text_embeddings = text_encoder(torch.tensor(text_input.input_ids)).last_hidden_state
max_length = #text_input.input_ids[1]
uncond_input = tokenizer({""}, {padding = "max_length", max_length = max_length})
uncond_embeddings = text_encoder(torch.tensor(uncond_input.input_ids)).last_hidden_state
text_embeddings = torch.cat({uncond_embeddings, text_embeddings})
text_embeddings.shape

-- %% The same embeddings by hand: token and position embeddings, the encoder, the final norm
-- (the deep dive's get_output_embeds, which lets one swap a token's embedding before encoding)
tm = text_encoder.text_model
ids = torch.tensor(text_input.input_ids)
input_embeddings = tm.embeddings.token_embedding(ids) +
                   tm.embeddings.position_embedding(tm.embeddings.position_ids)
mask = tm:_build_causal_attention_mask(ids.shape[1], ids.shape[2], {dtype = input_embeddings.dtype})
by_hand_embeds = tm.final_layer_norm(tm.encoder{inputs_embeds = input_embeddings,
                                                causal_attention_mask = mask}[1])
print("get_output_embeds by hand, largest difference:",
      (by_hand_embeds - text_encoder(ids)[1]):abs():max():item())

-- %% Starting noise
generator = torch.manual_seed(32)
scheduler:set_timesteps(num_inference_steps)
latents = torch.randn({batch_size, unet.config.in_channels, height // pipe.vae_scale_factor,
                       width // pipe.vae_scale_factor}, {generator = generator})
latents = latents * scheduler.init_noise_sigma

-- %% The loop
for _, t in ipairs(scheduler.timesteps:tolist()) do
  local latent_model_input = torch.cat({latents, latents})
  latent_model_input = scheduler:scale_model_input(latent_model_input, t)
  local noise_pred = unet(latent_model_input, t, {encoder_hidden_states = text_embeddings}).sample
  local noise_pred_uncond, noise_pred_text = table.unpack(noise_pred:chunk(2))
  noise_pred = noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
  latents = scheduler:step(noise_pred, t, latents).prev_sample
end

-- %% Decode
latents = latents * (1 / vae.config.scaling_factor)
image = vae:decode(latents).sample
image = (image / 2 + 0.5):clamp(0, 1)
image = image:permute(1, 3, 4, 2)
images = (image * 255):round():to(torch.uint8)
by_hand = Image.fromarray(images[1])
by_hand

-- %% The pipeline's picture from the same seed
torch.manual_seed(32)
from_pipe = pipe{prompt = prompt, num_inference_steps = num_inference_steps,
                 guidance_scale = guidance_scale}.images[1]
same = by_hand == from_pipe
print("the loop by hand gives the pipeline's picture:", same)
image_grid({by_hand, from_pipe}, 1, 2)
