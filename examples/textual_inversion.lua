-- %% [markdown]
-- # A concept from the hub: textual inversion
--
-- diffusers' `load_textual_inversion`: a token learned for a new concept (here
-- sd-concepts-library's cat toy) joins the tokenizer and the text encoder, and prompts
-- may use it. The same seed with and without it shows what it brings.
-- `sdrepl examples/textual_inversion.lua [MODEL] [CONCEPT] [TOKEN]`.

-- %% Load
model = arg[1] or os.getenv("SDREPL_MODEL") or "CompVis/stable-diffusion-v1-4"
concept = arg[2] or "sd-concepts-library/cat-toy"
token = arg[3] or "<cat-toy>"
pipe = StableDiffusionPipeline.from_pretrained(model)
steps = tonumber(os.getenv("SDREPL_STEPS") or "30")
before = #pipe.tokenizer
pipe:load_textual_inversion(concept)
print(string.format("%s is token %d; the tokenizer has %d tokens (%d before)", token,
                    pipe.tokenizer:convert_tokens_to_ids(token), #pipe.tokenizer, before))

-- %% With the concept, and the same seed without it
with = pipe{prompt = "a " .. token .. " on a beach", generator = torch.manual_seed(0),
            num_inference_steps = steps}.images[1]
without = pipe{prompt = "a toy on a beach", generator = torch.manual_seed(0),
               num_inference_steps = steps}.images[1]
image_grid({with, without}, 1, 2)

-- %% Out again
pipe:unload_textual_inversion(token)
print(string.format("the tokenizer has %d tokens again", #pipe.tokenizer))
