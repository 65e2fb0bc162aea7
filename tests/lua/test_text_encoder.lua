-- The CLIP text encoder against transformers' outputs on the tiny models
-- (tests/reference/<model>/text_*.npy, made by scripts/reference/make_tiny_models.py).
-- Tolerance: max |ours - theirs| / max |theirs| below 1e-5 in float32, per tensor.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local TOL = 1e-5

local rel_err = check.rel_err

for _, name in ipairs {"tiny-sd-a", "tiny-sd-b"} do
  local ref = root .. "/reference/" .. name .. "/"
  for _, dtype in ipairs {false, torch.float32} do
    local te = CLIPTextModel.from_pretrained(root .. "/models/" .. name,
                                             {subfolder = "text_encoder", torch_dtype = dtype or nil})
    local ids = torch.load_npy(ref .. "text_input_ids.npy")
    check.eq(tostring(ids.dtype), "torch.int64", "ids dtype")
    local out = te(ids, {output_hidden_states = true})
    local e = rel_err(out.last_hidden_state, torch.load_npy(ref .. "text_last_hidden_state.npy"))
    check.truthy(e < TOL, name .. " last_hidden_state relative error " .. e)
    local hs = torch.load_npy(ref .. "text_hidden_states.npy")
    check.eq(#out.hidden_states, hs.shape[1], "number of hidden states")
    for i = 1, hs.shape[1] do
      local ei = rel_err(out.hidden_states[i], hs[i])
      check.truthy(ei < TOL, name .. " hidden_states[" .. i .. "] relative error " .. ei)
    end
    -- Without hidden states the same last state comes out.
    local e2 = rel_err(te(ids).last_hidden_state, out.last_hidden_state)
    check.eq(e2, 0, "same result with and without hidden states")
    print(string.format("%s (%s): last_hidden_state relative error %.2e", name,
                        dtype and tostring(dtype) or "as stored", e))
  end
end

-- Bad input is a clear error and the model stays usable.
local te = CLIPTextModel.from_pretrained(root .. "/models/tiny-sd-a/text_encoder")
check.raises("argument 1 (input_ids): Tensor expected, got string", function() te("a prompt") end)
check.raises("int64 tensor", function() te(torch.zeros({1, 5})) end)
check.raises("tokens, the model takes 1 to 77", function() te(torch.zeros({1, 78}, {dtype = torch.int64})) end)
check.raises("id 99999 at position 1 is outside [0, 1514)", function() te(torch.tensor({{1, 99999}})) end)
check.raises("no model folder at", function() CLIPTextModel.from_pretrained("/nonexistent") end)
check.raises("unexpected option 'subfolders'",
             function() CLIPTextModel.from_pretrained(root .. "/models/tiny-sd-a", {subfolders = "x"}) end)
local ok = te(torch.tensor({{1, 2, 3}}))
check.eq(ok.last_hidden_state.shape[2], 3, "still usable")

-- The tokenizer gives tensors the text encoder takes, as in transformers' notebooks.
local tok = CLIPTokenizer.from_pretrained(root .. "/models/tiny-sd-a", {subfolder = "tokenizer"})
local enc = tok({"a cat", "a dog on a mat"}, {padding = "max_length", max_length = 77, truncation = true,
                                              return_tensors = "pt"})
check.eq(tostring(enc.input_ids.dtype), "torch.int64", "return_tensors='pt' gives int64")
check.eq(enc.input_ids.shape[1], 2, "batch")
check.eq(enc.input_ids.shape[2], 77, "padded")
check.eq(enc.attention_mask:sum():item(), 5 + 9, "mask counts the real tokens")
check.eq(te(enc.input_ids).last_hidden_state.shape[1], 2, "the encoder takes them")
check.raises("Unable to create tensor", function() tok({"a", "a b c"}, {return_tensors = "pt"}) end)
check.raises("only 'pt'", function() tok("a", {return_tensors = "np"}) end)
