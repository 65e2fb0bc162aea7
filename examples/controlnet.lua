-- %% [markdown]
-- # ControlNet: pictures that follow the edges of another
--
-- diffusers' ControlNet notebook: a ControlNet (here lllyasviel's Canny one) sees a control
-- picture (the edges of a bird) beside the latents, and its residuals steer the UNet so the
-- pictures keep those edges while the prompt says what to paint.
-- `sdrepl examples/controlnet.lua [MODEL] [CONTROLNET] [CONTROL_IMAGE]` (repo ids, folders,
-- URLs or paths).

-- %% Load
model = arg[1] or os.getenv("SDREPL_MODEL") or "runwayml/stable-diffusion-v1-5"
controlnet_id = arg[2] or "lllyasviel/sd-controlnet-canny"
control_url = arg[3] or
  "https://huggingface.co/lllyasviel/sd-controlnet-canny/resolve/main/images/bird_canny.png"
steps = tonumber(os.getenv("SDREPL_STEPS") or "20")
size = tonumber(os.getenv("SDREPL_SIZE") or "512")
device = torch.cuda.is_available() and "cuda" or "cpu"
dtype = device == "cuda" and torch.float16 or nil
controlnet = ControlNetModel.from_pretrained(controlnet_id, {torch_dtype = dtype})
pipe = StableDiffusionControlNetPipeline.from_pretrained(model, {controlnet = controlnet,
                                                                 torch_dtype = dtype}):to(device)
pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
print(pipe)

-- %% The control picture: white edges on black (cv2.Canny's output, made RGB)
control = load_image(control_url):resize({size, size})
control

-- %% Two birds along those edges
out = pipe{prompt = "bird", image = control, num_images_per_prompt = 2,
           num_inference_steps = steps, generator = torch.Generator(device):manual_seed(0)}
image_grid({control, out.images[1], out.images[2]}, 1, 3)

-- %% Less control: half the residuals, and only in the first 60% of the steps
loose = pipe{prompt = "bird", image = control, controlnet_conditioning_scale = 0.5,
             control_guidance_end = 0.6, num_inference_steps = steps,
             generator = torch.Generator(device):manual_seed(0)}.images[1]
-- guess mode: the ControlNet guesses from the picture alone (an empty prompt)
guessed = pipe{prompt = "", image = control, guess_mode = true, guidance_scale = 3.0,
               num_inference_steps = steps, generator = torch.Generator(device):manual_seed(0)}
image_grid({out.images[1], loose, guessed.images[1]}, 1, 3)
