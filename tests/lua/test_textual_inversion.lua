-- pipe:load_textual_inversion against diffusers 0.27.2 on tiny-sd-a
-- (tests/fixtures/textual_inversion, tests/reference/textual_inversion, made by
-- scripts/reference/make_textual_inversion_cases.py): a diffusers learned_embeds.bin, a
-- multi-vector A1111 safetensors with the token given, a bare .bin file; then a run with
-- no generator after torch.manual_seed, whose noise shows the loads moved torch's global
-- generator as transformers' resize_token_embeddings does. The prompts as
-- maybe_convert_prompt spells them out and their ids must be equal; the text encoder's
-- output within 1e-5 relative; the images within 2e-3, as the other whole runs.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local fix = src .. "/tests/fixtures/textual_inversion/"
local ref = src .. "/tests/reference/textual_inversion/"
local PROMPT = "a <cat-toy> on a table, <shiny> and <cat-toy>"
local NEGATIVE = "blurry <shiny>"

local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
pipe:set_progress_bar_config{disable = true}
check.eq(#pipe.tokenizer, 1514, "len(tokenizer) before")

torch.manual_seed(11)
pipe:load_textual_inversion(fix .. "cat-toy")
pipe:load_textual_inversion(fix .. "shiny", {token = "<shiny>"})
pipe:load_textual_inversion(fix .. "bare.bin")
check.eq(#pipe.tokenizer, 1519, "len(tokenizer) after")
check.eq(pipe.text_encoder.config.vocab_size, 1519, "the text encoder's rows")

local images = pipe{prompt = PROMPT, negative_prompt = NEGATIVE, num_inference_steps = 3,
                    output_type = "np"}.images
local want = torch.load_npy(ref .. "images.npy")
local d = (images - want):abs():max():item()
check.truthy(d == d and d < 2e-3, string.format("images: max difference %.3g", d))
print(string.format("images: max difference %.2e", d))

-- the tokens: ids of the spelled-out prompt, as diffusers' tokenizer gave them
local ids = pipe.tokenizer({"a <cat-toy> on a table, <shiny> <shiny>_1 <shiny>_2 and <cat-toy>"},
                           {padding = "max_length", max_length = 77, truncation = true,
                            return_tensors = "pt"}).input_ids
local expect = {1512, 320, 1514, 525, 320, 83, 863, 267, 1515, 1516, 1517, 537, 1514, 1513}
for i, v in ipairs(expect) do check.eq(ids[1][i]:item(), v, "id " .. i) end
local hidden = pipe.text_encoder(ids)[1]
local h = torch.load_npy(ref .. "hidden.npy")
local e = (hidden - h):abs():max():item() / h:abs():max():item()
check.truthy(e < 1e-5, "text encoder relative error " .. e)
check.eq(pipe.tokenizer:convert_tokens_to_ids("<bare>"), 1518, "the bare file's token")

-- unload_textual_inversion: the first token out, the others renumbered down as diffusers
-- does; a run after it (the unload moved the global generator: a new CPU nn.Embedding)
torch.manual_seed(12)
pipe:unload_textual_inversion("<cat-toy>")
check.eq(#pipe.tokenizer, 1518, "len(tokenizer) after unloading <cat-toy>")
for t, id in pairs {["<shiny>"] = 1514, ["<shiny>_1"] = 1515, ["<shiny>_2"] = 1516, ["<bare>"] = 1517} do
  check.eq(pipe.tokenizer:convert_tokens_to_ids(t), id, t .. " renumbered")
end
check.eq(pipe.text_encoder.config.vocab_size, 1518, "the table's rows")
local after = pipe{prompt = "a <shiny> and a <bare>", num_inference_steps = 2, output_type = "np"}.images
local du = (after - torch.load_npy(ref .. "unload_images.npy")):abs():max():item()
check.truthy(du == du and du < 2e-3, string.format("after the unload: max difference %.3g", du))
print(string.format("after the unload: max difference %.2e", du))
check.raises("No tokens to remove found", function() pipe:unload_textual_inversion("<cat-toy>") end)
pipe:unload_textual_inversion()
check.eq(#pipe.tokenizer, 1514, "every added token out")
check.eq(pipe.text_encoder.config.vocab_size, 1514, "the file's rows")
check.raises("No tokens to remove found", function() pipe:unload_textual_inversion() end)
-- and in again, as at first
torch.manual_seed(11)
pipe:load_textual_inversion(fix .. "cat-toy")
pipe:load_textual_inversion(fix .. "shiny", {token = "<shiny>"})
pipe:load_textual_inversion(fix .. "bare.bin")
local again = pipe{prompt = PROMPT, negative_prompt = NEGATIVE, num_inference_steps = 3,
                   output_type = "np"}.images
check.eq((again - images):abs():max():item(), 0, "the same pictures after unloading and loading")

-- a second pipeline made from this one shares them
local other = AutoPipelineForImage2Image.from_pipe(pipe)
check.eq(#other.tokenizer, 1519, "from_pipe shares the tokenizer")

-- mistakes say what diffusers says, and nothing changes
check.raises("Token <cat-toy> already in tokenizer vocabulary",
             function() pipe:load_textual_inversion(fix .. "cat-toy") end)
pipe:load_textual_inversion(torch.zeros({32}), {token = "<new>_1"})
check.raises("Multi-vector Token <new>",
             function() pipe:load_textual_inversion(torch.zeros({32}), {token = "<new>"}) end)
check.raises("Make sure to pass the name of the corresponding token",
             function() pipe:load_textual_inversion(torch.zeros({32})) end)
check.raises("Expected each textual inversion embedding to be of shape 32, but are 8",
             function() pipe:load_textual_inversion(torch.zeros({8}), {token = "<small>"}) end)
check.raises("Error no file named learned_embeds.bin found in directory",
             function() pipe:load_textual_inversion(src .. "/tests/models") end)
check.raises("list of tokens that contains duplicates", function()
  pipe:load_textual_inversion({torch.zeros({32}), torch.ones({32})}, {token = {"<x>", "<x>"}})
end)
check.raises("unexpected option 'tokens'",
             function() pipe:load_textual_inversion(fix .. "cat-toy", {tokens = "x"}) end)
check.eq(#pipe.tokenizer, 1520, "len(tokenizer) after the failed loads: only <new>_1 more")

-- a tensor of n rows for n tokens, and a state dict given directly
local two = torch.randn({2, 32}, {generator = torch.manual_seed(1)})
pipe:load_textual_inversion(two, {token = {"<a>", "<b>"}})
pipe:load_textual_inversion({["<c>"] = torch.ones({32})})
check.eq(#pipe.tokenizer, 1523, "three more")

-- tiny-sd-b is stored in float16 and loaded as float32 (as transformers loads it): the new
-- rows keep every bit of the vectors, and the generator draws a float32 table
local b = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-b")
torch.manual_seed(21)
b:load_textual_inversion(fix .. "b-pair.safetensors", {token = "<pair>"})
local nb = torch.randn({4}):tolist()
for i, v in ipairs {-1.1016854047775269, 0.16400153934955597, -0.8658615946769714, 1.554172396659851} do
  check.near(nb[i], v, 1e-6, "the generator after the load, value " .. i)
end
check.eq(b:maybe_convert_prompt("two <pair>, one cat"), "two <pair> <pair>_1, one cat", "spelled out")
local be = b:encode_prompt("two <pair>, one cat", nil, 1, false)
local eb = check.rel_err(be, torch.load_npy(ref .. "b_hidden.npy"), "tiny-sd-b")
check.truthy(eb < 1e-5, "tiny-sd-b embeddings relative error " .. eb)
