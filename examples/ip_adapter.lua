-- %% [markdown]
-- # IP-Adapter: a picture as part of the prompt
--
-- diffusers' IP-Adapter guide: an image encoder (CLIP's vision tower) turns a picture into
-- a few tokens, and the adapter's own keys and values let every cross-attention look at
-- them beside the text. set_ip_adapter_scale says how much the picture counts.
-- `sdrepl examples/ip_adapter.lua [MODEL] [IP_ADAPTER_REPO] [WEIGHT_NAME] [IMAGE]` (repo ids,
-- folders, URLs or paths).

-- %% Load
model = arg[1] or os.getenv("SDREPL_MODEL") or "runwayml/stable-diffusion-v1-5"
ip_repo = arg[2] or "h94/IP-Adapter"
weight_name = arg[3] or "ip-adapter_sd15.bin"
image_url = arg[4] or "https://huggingface.co/datasets/huggingface/documentation-images/resolve/main/diffusers/load_neg_embed.png"
steps = tonumber(os.getenv("SDREPL_STEPS") or "50")
size = tonumber(os.getenv("SDREPL_SIZE") or "512")
device = torch.cuda.is_available() and "cuda" or "cpu"
dtype = device == "cuda" and torch.float16 or nil
pipe = AutoPipelineForText2Image.from_pretrained(model, {torch_dtype = dtype}):to(device)
pipe:load_ip_adapter(ip_repo, "models", weight_name)
pipe:set_ip_adapter_scale(0.6)
print(pipe)

-- %% The picture the adapter looks at
image = load_image(image_url)
image

-- %% Two pictures from the prompt and the picture together
out = pipe{prompt = "best quality, high quality, wearing sunglasses", ip_adapter_image = image,
           negative_prompt = "monochrome, lowres, bad anatomy, worst quality, low quality",
           num_images_per_prompt = 2, height = size, width = size, num_inference_steps = steps,
           generator = torch.Generator():manual_seed(33)}
image_grid({image:resize({size, size}), out.images[1], out.images[2]}, 1, 3)

-- %% How much the picture counts: scale 0 (the text alone), 0.5 and 1
pictures = {}
for i, scale in ipairs{0.0, 0.5, 1.0} do
  pipe:set_ip_adapter_scale(scale)
  pictures[i] = pipe{prompt = "a photo in a forest", ip_adapter_image = image, height = size,
                     width = size, num_inference_steps = steps,
                     generator = torch.Generator():manual_seed(33)}.images[1]
end
image_grid(pictures, 1, 3)

-- %% The embeddings made once and used again (no image encoder work in the next calls)
embeds = pipe:prepare_ip_adapter_image_embeds(image, nil, device, 1, true)
again = pipe{prompt = "a photo in a forest", ip_adapter_image_embeds = embeds, height = size,
             width = size, num_inference_steps = steps,
             generator = torch.Generator():manual_seed(33)}.images[1]
print("the same picture from the embeddings: " ..
      tostring(again:tobytes() == pictures[3]:tobytes()))

-- %% Back to the plain pipeline
pipe:unload_ip_adapter()
plain = pipe{prompt = "a photo in a forest", height = size, width = size,
             num_inference_steps = steps, generator = torch.Generator():manual_seed(33)}.images[1]
print("unloaded: the text-only picture again: " ..
      tostring(plain:tobytes() == pictures[1]:tobytes()))
