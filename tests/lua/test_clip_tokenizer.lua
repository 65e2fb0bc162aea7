-- tests/lua/test_clip_tokenizer.lua — CLIPTokenizer from Lua, against transformers' answers.
--
-- tests/fixtures/tokenizer/calls.lua holds what transformers' CLIPTokenizer returns
-- for tok(text, options) (written by scripts/reference/make_tokenizer_cases.py);
-- the rest checks the API around it: properties, decode, errors that name the argument.
local check = require("check")

assert(CLIPTokenizer, "CLIPTokenizer is not opened: bindings/bindings.c needs lsdr_open_clip_tokenizer(L)")

local root = os.getenv("SDREPL_SOURCE_DIR") or "."
local fixtures = root .. "/tests/fixtures/tokenizer"
local tok = CLIPTokenizer.from_pretrained(fixtures .. "/clip-vit-large-patch14")

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for i, x in ipairs(v) do parts[i] = show(x) end
  local keys = {}
  for k in pairs(v) do
    if math.type(k) ~= "integer" then keys[#keys + 1] = tostring(k) end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. " = " .. show(v[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b and math.type(a) == math.type(b)
  end
  if #a ~= #b then return false end
  for i = 1, #a do
    if not same(a[i], b[i]) then return false end
  end
  return true
end

-- Every call of the fixture, exactly.
local failed = 0
for i, case in ipairs(dofile(fixtures .. "/calls.lua")) do
  local enc = tok(case.text, case.options)
  for _, key in ipairs({"input_ids", "attention_mask"}) do
    if not same(enc[key], case[key]) then
      failed = failed + 1
      io.stderr:write(string.format("case %d: tok(%s, %s).%s\n  got  %s\n  want %s\n", i,
        show(case.text), show(case.options), key, show(enc[key]), show(case[key])))
    end
  end
end
check.eq(failed, 0, "calls that differ from transformers")

-- Properties, as transformers names them.
check.eq(tok.model_max_length, 77, "model_max_length")
check.eq(tok.bos_token_id, 49406, "bos_token_id")
check.eq(tok.eos_token_id, 49407, "eos_token_id")
check.eq(tok.pad_token_id, 49407, "pad_token_id")
check.eq(tok.unk_token_id, 49407, "unk_token_id")
check.eq(tok.vocab_size, 49408, "vocab_size")
check.eq(#tok, 49408, "#tok (len(tokenizer))")
check.eq(tok.bos_token, "<|startoftext|>", "bos_token")
check.eq(tok.pad_token, "<|endoftext|>", "pad_token")
check.eq(tok.padding_side, "right", "padding_side")
check.eq(tok.no_such_field, nil, "an unknown field")
check.truthy(tostring(tok):find("CLIPTokenizer(name_or_path=", 1, true), "tostring")
check.truthy(tostring(tok):find("vocab_size=49408, model_max_length=77", 1, true), "tostring")
check.truthy(getmetatable(tok).__fields.decode and getmetatable(tok).__fields.pad_token_id,
  "__fields lists methods and properties")

-- The seed notebook's prompt as the pipeline pads it.
local enc = tok("face of a human in  joy", {padding = "max_length", max_length = tok.model_max_length,
                                           truncation = true})
check.eq(#enc.input_ids, 77, "padded length")
check.eq(enc.input_ids[1], 49406, "BOS first")
check.eq(math.type(enc.input_ids[2]), "integer", "ids are integers")
check.eq(tok:decode(enc.input_ids, {skip_special_tokens = true}), "face of a human in joy", "decode")

-- encode, decode, tokenize and the conversions.
check.truthy(same(tok:encode("a photo of a cat"), {49406, 320, 1125, 539, 320, 2368, 49407}), "encode")
check.eq(tok:decode({49406, 320, 1929, 269, 49407}), "<|startoftext|>a dog. <|endoftext|>", "decode")
check.eq(tok:decode({320, 1929, 269}, {clean_up_tokenization_spaces = false}), "a dog .", "no clean-up")
check.truthy(same(tok:batch_decode({{320, 1929}, {2368}}), {"a dog", "cat"}), "batch_decode")
check.truthy(same(tok:tokenize("A cat's  hat!!"), {"a</w>", "cat</w>", "'s</w>", "hat</w>", "!!</w>"}),
  "tokenize")
check.eq(tok:convert_ids_to_tokens(320), "a</w>", "convert_ids_to_tokens")
check.truthy(same(tok:convert_tokens_to_ids({"a</w>", "cat</w>"}), {320, 2368}), "convert_tokens_to_ids")
check.eq(tok:convert_tokens_to_ids("not a token"), 49407, "unknown token -> unk")

-- Errors say what was wrong and name the argument or option.
check.raises("return_tensors='np': only 'pt'", function() return tok("x", {return_tensors = "np"}) end)
check.raises("argument 1 (text): item 2 is a number", function() return tok({"a", 5}) end)
check.raises("non-empty list", function() return tok({}) end)
check.raises("argument 1 (text): string|table expected, got number", function() return tok(42) end)
check.raises("option 'padding'", function() return tok("x", {padding = "sideways"}) end)
check.raises("option 'truncation'", function() return tok("x", {truncation = "only_second"}) end)
check.raises("unexpected option 'pading'", function() return tok("x", {pading = true}) end)
check.raises("id 99999 is not in the vocabulary", function() return tok:decode({320, 99999}) end)
check.raises("item 2 is not a token id", function() return tok:decode({320, "x"}) end)
check.raises("self: CLIPTokenizer expected", function() return tok.decode("x", {1}) end)
local missing = check.tmpdir()
check.raises(missing .. "' has no vocab.json", function() return CLIPTokenizer.from_pretrained(missing) end)
check.raises("no folder '" .. missing .. "/tokenizer'",
  function() return CLIPTokenizer.from_pretrained(missing, {subfolder = "tokenizer"}) end)
check.raises("no folder '/nonexistent'", function() return CLIPTokenizer.from_pretrained("/nonexistent") end)
os.remove(missing)

-- A subfolder, as pipelines load it.
local parent = check.tmpdir()
assert(os.execute("ln -s '" .. fixtures .. "/clip-vit-large-patch14' '" .. parent .. "/tokenizer'"))
local sub = CLIPTokenizer.from_pretrained(parent, {subfolder = "tokenizer"})
check.eq(sub.name_or_path, parent, "name_or_path")
check.eq(sub("a cat").input_ids[2], 320, "the subfolder's tokenizer")
os.remove(parent .. "/tokenizer")
os.remove(parent)

-- Closing frees it; a closed tokenizer refuses politely.
do
  local t <close> = CLIPTokenizer.from_pretrained(fixtures .. "/clip-vit-large-patch14")
  check.eq(t("a").input_ids[2], 320, "before close")
end
local closed = CLIPTokenizer.from_pretrained(fixtures .. "/clip-vit-large-patch14")
getmetatable(closed).__close(closed)
check.raises("closed", function() return closed("a") end)
check.eq(tostring(closed), "CLIPTokenizer(closed)", "tostring of a closed tokenizer")

-- help() documents the functions and their options.
local printed = {}
local real_print = print
print = function(s) printed[#printed + 1] = s end
help(CLIPTokenizer.from_pretrained)
help(tok.decode)
print = real_print
check.truthy(printed[1]:find("subfolder", 1, true), "help(CLIPTokenizer.from_pretrained)")
check.truthy(printed[2]:find("skip_special_tokens", 1, true), "help(tok.decode)")
print("CLIPTokenizer: all checks passed")
