-- %% [markdown]
-- # T2I-Adapter: a light way to follow a sketch or edges
--
-- diffusers' T2I-Adapter notebook: a small adapter (here TencentARC's Canny one for SD 1.5)
-- turns a control picture into one feature map per UNet down block, made once per call and
-- added inside the UNet's down path at every step: the pictures keep the edges, the prompt
-- says what to paint. Cheaper than a ControlNet, which runs beside the UNet at every step.
-- `sdrepl examples/t2i_adapter.lua [MODEL] [ADAPTER] [CONTROL_IMAGE]` (repo ids, folders,
-- URLs or paths).

-- %% Load
model = arg[1] or os.getenv("SDREPL_MODEL") or "runwayml/stable-diffusion-v1-5"
adapter_id = arg[2] or "TencentARC/t2iadapter_canny_sd15v2"
control_url = arg[3] or
  "https://huggingface.co/lllyasviel/sd-controlnet-canny/resolve/main/images/bird_canny.png"
steps = tonumber(os.getenv("SDREPL_STEPS") or "20")
size = tonumber(os.getenv("SDREPL_SIZE") or "512")
device = torch.cuda.is_available() and "cuda" or "cpu"
dtype = device == "cuda" and torch.float16 or nil
adapter = T2IAdapter.from_pretrained(adapter_id, {torch_dtype = dtype})
pipe = StableDiffusionAdapterPipeline.from_pretrained(model, {adapter = adapter,
                                                              torch_dtype = dtype}):to(device)
print(pipe)
print(adapter.config)

-- %% The control picture: the adapter takes one channel (white edges on black, "L")
control = load_image(control_url):resize({size, size}):convert("L")
control

-- %% Two birds along those edges
out = pipe{prompt = "a bird on a branch, photo", image = control, num_images_per_prompt = 2,
           num_inference_steps = steps, generator = torch.Generator(device):manual_seed(0)}
image_grid({control:convert("RGB"), out.images[1], out.images[2]}, 1, 3)

-- %% Less of the adapter: its features scaled by 0.5, and none at all
loose = pipe{prompt = "a bird on a branch, photo", image = control,
             adapter_conditioning_scale = 0.5, num_inference_steps = steps,
             generator = torch.Generator(device):manual_seed(0)}.images[1]
free = pipe{prompt = "a bird on a branch, photo", image = control,
            adapter_conditioning_scale = 0.0, num_inference_steps = steps,
            generator = torch.Generator(device):manual_seed(0)}.images[1]
image_grid({out.images[1], loose, free}, 1, 3)
