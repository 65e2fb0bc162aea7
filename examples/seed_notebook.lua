-- %% [markdown]
-- # From a sketch to a face: the img2img notebook
--
-- The diffusers notebook this project started from, cell by cell, in Lua:
-- load Stable Diffusion 1.4, fetch a pencil sketch, and turn it into three
-- faces (strength 0.8), then into "electronic art" (strength 1).
--
-- `sdrepl examples/seed_notebook.lua [MODEL] [IMAGE_URL]`. Without arguments it
-- uses `CompVis/stable-diffusion-v1-4` and the notebook's sketch; the variables
-- `SDREPL_MODEL` and `SDREPL_INIT_IMAGE` do the same. For a run without the
-- network, give a local diffusers folder and a `file://` URL (README shows one
-- with the tiny test model, whose pictures are noise).

-- %% Where the model and the sketch come from
model = arg[1] or os.getenv("SDREPL_MODEL") or "CompVis/stable-diffusion-v1-4"
url = arg[2] or os.getenv("SDREPL_INIT_IMAGE")
  or "https://cdn-uploads.huggingface.co/production/uploads/1664665907257-noauth.png"
device = torch.cuda.is_available() and "cuda" or "cpu"
-- The notebook's step counts; SDREPL_STEPS replaces them for a quick run.
steps1 = tonumber(os.getenv("SDREPL_STEPS") or "50")
steps2 = tonumber(os.getenv("SDREPL_STEPS") or "70")
print("model:", model, "device:", device)

-- %% Load the pipeline
torch.manual_seed(1)
pipe = StableDiffusionImg2ImgPipeline.from_pretrained(model,
         {revision = "fp16", torch_dtype = torch.float16}):to(device)
pipe:enable_attention_slicing()

-- %% The sketch
p = FastDownload():download(url)
init_image = Image.open(p):convert("RGB")
init_image

-- %% Three faces in joy
torch.manual_seed(100)
images = pipe{prompt = "face of a human in  joy", num_images_per_prompt = 3,
              image = init_image, strength = 0.8, num_inference_steps = steps1}.images
image_grid(images, 1, 3)

-- %% Electronic art, from noise (strength 1)
torch.manual_seed(1000)
images = pipe{prompt = "electronic art   of an angry human by Leonardo da Vinci",
              num_images_per_prompt = 3, image = init_image, strength = 1,
              num_inference_steps = steps2}.images
image_grid(images, 1, 3)
