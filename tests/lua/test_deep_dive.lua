-- The fast.ai "Stable Diffusion deep dive" embeddings section against transformers 4.40.2
-- and diffusers 0.27.2 (tests/reference/deep_dive, made by
-- scripts/reference/make_deep_dive_cases.py), on tiny-sd-a: token and position embeddings
-- looked up through text_encoder.text_model, one token's embedding replaced by another
-- word's (a row assigned in place), get_output_embeds (the encoder fed them with the causal
-- mask, then final_layer_norm), the encoder without a mask, and a picture from the replaced
-- embeddings.
local check = require "check"

local src = os.getenv("SDREPL_SOURCE_DIR") or "."
local ref = src .. "/tests/reference/deep_dive/"
local function npy(name) return torch.load_npy(ref .. name .. ".npy") end

local pipe = StableDiffusionPipeline.from_pretrained(src .. "/tests/models/tiny-sd-a")
pipe:set_progress_bar_config{disable = true}
local tokenizer, text_encoder = pipe.tokenizer, pipe.text_encoder
local tm = text_encoder.text_model

local text_input = tokenizer("A picture of a puppy", {padding = "max_length",
                             max_length = tokenizer.model_max_length, truncation = true,
                             return_tensors = "pt"})
local input_ids = text_input.input_ids

local function get_output_embeds(input_embeddings, causal)
  local bsz, seq_len = input_embeddings.shape[1], input_embeddings.shape[2]
  local mask = causal ~= false and
               tm:_build_causal_attention_mask(bsz, seq_len, {dtype = input_embeddings.dtype}) or nil
  local encoder_outputs = tm.encoder{inputs_embeds = input_embeddings, attention_mask = nil,
                                     causal_attention_mask = mask, output_hidden_states = true}
  return tm.final_layer_norm(encoder_outputs[1])
end

local function close(got, want, tol, what)
  local d = (got - want):abs():max():item()
  check.truthy(d == d and d <= tol, string.format("%s: max difference %.3g", what, d))
  print(string.format("%-10s max difference %.2e", what, d))
end

local token_embeddings = tm.embeddings.token_embedding(input_ids)
local position_ids = tm.embeddings.position_ids
check.eq(position_ids.shape[2], 77, "position_ids (1, 77)")
local position_embeddings = tm.embeddings.position_embedding(position_ids)
local input_embeddings = token_embeddings + position_embeddings
close(tm.embeddings(input_ids), input_embeddings, 0, "embeddings(ids)")
local plain = get_output_embeds(input_embeddings)
close(plain, npy("plain"), 1e-5, "plain")
close(plain, text_encoder(input_ids)[1], 0, "as the model")
close(get_output_embeds(input_embeddings, false), npy("noncausal"), 1e-5, "noncausal")

-- token 6 (0-based 5) gets another word's embedding, in place in the batch's first row
local replacement = text_encoder:get_input_embeddings()(torch.tensor(321))
token_embeddings[1][6] = replacement
local replaced = get_output_embeds(token_embeddings + position_embeddings)
close(replaced, npy("replaced"), 1e-5, "replaced")

torch.manual_seed(0)
local images = pipe{prompt_embeds = replaced, num_inference_steps = 4, output_type = "np"}.images
close(images, npy("images"), 2e-3, "images")

-- the mask: finfo.min above the diagonal; other masks are refused
local mask = tm:_build_causal_attention_mask(2, 3)
check.eq(mask.shape[1] .. "x" .. mask.shape[2] .. "x" .. mask.shape[3], "2x1x3", "mask shape")
check.truthy(mask[1][1][1][2]:item() < -3e38 and mask[1][1][2][1]:item() == 0, "mask values")
check.raises("only the causal mask", function()
  tm.encoder{inputs_embeds = input_embeddings, causal_attention_mask = torch.zeros({1, 1, 77, 77})}
end)
check.raises("only nil", function()
  tm.encoder{inputs_embeds = input_embeddings, attention_mask = torch.ones({1, 77})}
end)
check.raises("the token embedding's can be set", function()
  tm.embeddings.position_embedding.weight[1] = 0
end)
