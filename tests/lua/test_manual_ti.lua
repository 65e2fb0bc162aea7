-- A textual inversion done by hand, as fastai's stable_diffusion notebook does it, against
-- diffusers 0.27.2 and transformers 4.40.2 (tests/reference/manual_ti, made by
-- scripts/reference/make_manual_ti_cases.py): tokenizer:add_tokens, resize_token_embeddings
-- (its new rows drawn normal from the default generator, which moves as torch's does),
-- get_input_embeddings().weight.data[id + 1] = embeds, then a picture with the new word.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/manual_ti/"
local function load(name) return torch.load_npy(ref .. name .. ".npy") end

local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
pipe:set_progress_bar_config{disable = true}
local tokenizer, text_encoder = pipe.tokenizer, pipe.text_encoder
local embeds = load("embeds")
local new_token = "<watercolor-portrait>"
check.eq(#tokenizer, 1514, "len(tokenizer) before")
check.eq(tokenizer:add_tokens(new_token), 1, "one token added")
check.eq(tokenizer:add_tokens({new_token, "", "<two>"}), 1, "a token added before and an empty one are skipped")
torch.manual_seed(5)
local emb = text_encoder:resize_token_embeddings(#tokenizer + 1)
check.eq(tostring(emb), "Embedding(1517, 32)", "the resized embedding")
check.eq((torch.randn({2}) - load("rng_after")):abs():max():item(), 0,
         "the default generator moved as far as the new nn.Embedding's draw")
local new_token_id = tokenizer:convert_tokens_to_ids(new_token)
check.eq(new_token_id, 1514, "the new token's id")
text_encoder:get_input_embeddings().weight.data[new_token_id + 1] = embeds
local weight = text_encoder:get_input_embeddings().weight
local rows = torch.stack{weight[1515], weight[1516], weight[1517]}
check.eq((rows - load("new_rows")):abs():max():item(), 0,
         "the new rows: the token's vector, then the normal draw's rows")
check.eq(weight.shape[1], 1517, "weight.shape")
check.eq(#weight, 1517, "#weight")

local prompt = "Woman reading in the style of <watercolor-portrait>"
local ids = tokenizer(prompt, {padding = "max_length", max_length = tokenizer.model_max_length,
                               truncation = true, return_tensors = "pt"}).input_ids
check.eq((ids:float() - load("ids")):abs():max():item(), 0,
         "the new word is one token")
local looked_up = text_encoder:get_input_embeddings()(ids)
check.eq((looked_up[1][11] - embeds):abs():max():item(), 0, "emb(ids) gives the row set")

torch.manual_seed(1000)
local images = pipe(prompt, {num_inference_steps = 4, output_type = "np"}).images
local d = (images - load("images")):abs():max():item()
check.truthy(d == d and d < 2e-3, string.format("the picture: max difference %.3g", d))
print(string.format("manual textual inversion: picture max difference %.2e", d))

-- rows are set with a number too, and mistakes are errors with messages
weight[1517] = 0.5
check.eq(weight[1517]:mean():item(), 0.5, "a row set to a number")
check.raises("rows count from 1", function() return weight[0] end)
check.raises("out of range", function() weight[1518] = embeds end)
check.raises("takes 32 values", function() weight[2] = torch.zeros({3}) end)
check.raises("only rows can be set", function() weight.x = 1 end)
check.raises("Token 5 is not a string", tokenizer.add_tokens, tokenizer, {5})
check.raises("int64", text_encoder:get_input_embeddings(), torch.zeros({2}))
check.eq(text_encoder:resize_token_embeddings(nil, {pad_to_multiple_of = 8}).num_embeddings, 1517,
         "no new size: the embedding as it is")
check.eq(text_encoder:resize_token_embeddings(1517, {pad_to_multiple_of = 8}).num_embeddings,
         1520, "pad_to_multiple_of rounds up")
