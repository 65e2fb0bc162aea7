-- %% [markdown]
-- # Inpainting: a cat on the bench
--
-- diffusers' inpainting notebook: an inpainting model (its UNet also takes the mask and the
-- masked picture) paints what the prompt says where the mask is white, and keeps the rest.
-- Any Stable Diffusion model inpaints too (diffusers' legacy way: outside the mask the
-- picture comes back after each step). `sdrepl examples/inpaint.lua [MODEL] [IMAGE] [MASK]`
-- (URLs or paths).

-- %% Load
model = arg[1] or os.getenv("SDREPL_MODEL") or "runwayml/stable-diffusion-inpainting"
base = "https://raw.githubusercontent.com/CompVis/latent-diffusion/main/data/inpainting_examples/"
image_url = arg[2] or base .. "overture-creations-5sI6fQgYIuo.png"
mask_url = arg[3] or base .. "overture-creations-5sI6fQgYIuo_mask.png"
steps = tonumber(os.getenv("SDREPL_STEPS") or "50")
size = tonumber(os.getenv("SDREPL_SIZE") or "512")
device = torch.cuda.is_available() and "cuda" or "cpu"
dtype = device == "cuda" and torch.float16 or nil
pipe = AutoPipelineForInpainting.from_pretrained(model, {torch_dtype = dtype}):to(device)
print(pipe)

-- %% The picture and its mask (white: paint here)
init_image = load_image(image_url):resize({size, size})
mask_image = load_image(mask_url):resize({size, size})
image_grid({init_image, mask_image}, 1, 2)

-- %% A yellow cat where the dog was
generator = torch.Generator(device):manual_seed(92)
prompt = "Face of a yellow cat, high resolution, sitting on a park bench"
out = pipe{prompt = prompt, image = init_image, mask_image = mask_image, height = size,
           width = size, generator = generator, num_inference_steps = steps}
print("nsfw:", out.nsfw_content_detected and out.nsfw_content_detected[1])
image_grid({init_image, mask_image, out.images[1]}, 1, 3)

-- %% Less change: strength 0.6 starts from the picture itself
softer = pipe{prompt = prompt, image = init_image, mask_image = mask_image, height = size,
              width = size, strength = 0.6, num_inference_steps = steps,
              generator = torch.Generator(device):manual_seed(92)}.images[1]
image_grid({out.images[1], softer}, 1, 2)

-- %% Only around the mask: padding_mask_crop
-- The model paints a box around the mask (widened by 32 pixels) at the full size, and the
-- result is laid back over the picture outside the mask: more detail where it paints.
cropped = pipe{prompt = prompt, image = init_image, mask_image = mask_image, height = size,
               width = size, padding_mask_crop = 32, num_inference_steps = steps,
               generator = torch.Generator(device):manual_seed(92)}.images[1]
image_grid({out.images[1], cropped}, 1, 2)
