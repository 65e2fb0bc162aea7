-- %% [markdown]
-- # A style from the hub: LoRA
--
-- diffusers' `load_lora_weights`: a LoRA trained for a style (a diffusers folder or repo
-- with pytorch_lora_weights.safetensors, or a Kohya/Civitai .safetensors with
-- `weight_name`) goes into the UNet and the text encoder. The same seed without it, at
-- half strength (`cross_attention_kwargs = {scale = 0.5}`) and at full strength shows
-- what it brings; then the LoRA is fused into the weights and unloaded again.
-- `sdrepl examples/lora.lua [MODEL] [LORA] [WEIGHT_NAME]`.

-- %% Load
model = arg[1] or os.getenv("SDREPL_MODEL") or "runwayml/stable-diffusion-v1-5"
lora = arg[2] or "sayakpaul/sd-model-finetuned-lora-t4"
weight_name = arg[3]
pipe = StableDiffusionPipeline.from_pretrained(model)
steps = tonumber(os.getenv("SDREPL_STEPS") or "30")
prompt = "a pokemon with blue eyes"
without = pipe{prompt = prompt, generator = torch.manual_seed(0), num_inference_steps = steps}.images[1]
pipe:load_lora_weights(lora, {weight_name = weight_name, adapter_name = "style"})
print("adapters: " .. table.concat(pipe:get_active_adapters(), ", "))

-- %% Without it, at half strength, at full strength
half = pipe{prompt = prompt, generator = torch.manual_seed(0), num_inference_steps = steps,
            cross_attention_kwargs = {scale = 0.5}}.images[1]
full = pipe{prompt = prompt, generator = torch.manual_seed(0), num_inference_steps = steps}.images[1]
image_grid({without, half, full}, 1, 3)

-- %% Fused into the weights (no cost per step), then out again
pipe:fuse_lora{lora_scale = 0.7}
fused = pipe{prompt = prompt, generator = torch.manual_seed(0), num_inference_steps = steps}.images[1]
pipe:unfuse_lora()
pipe:unload_lora_weights()
again = pipe{prompt = prompt, generator = torch.manual_seed(0), num_inference_steps = steps}.images[1]
local d = (torch.tensor(again):float() - torch.tensor(without):float()):abs():max():item()
print(string.format("after unload_lora_weights the picture is the model's own again: %s", tostring(d == 0)))
image_grid({fused, again}, 1, 2)
