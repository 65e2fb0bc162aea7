# tests/sh/test_pipeline_warnings.sh — what a pipeline call says on stderr where diffusers
# logs a warning, and that the call still runs: a prompt cut at CLIP's 77 tokens (the cut
# text as transformers 4.x decodes it for diffusers 0.27.2's message, from the tiny model's
# tokenizer, after transformers' own line about a sequence too long, once per tokenizer;
# a batch's shorter prompts show their pad tokens),
# and img2img's unused height, width and guidance_rescale.
source "$(dirname "$0")/lib.sh"
MODEL="$SDREPL_SOURCE_DIR/tests/models/tiny-sd-a"

# run LUA: stdout into OUT, stderr into ERR; fails on a non-zero exit.
run() {
  "$SDREPL" -e "$1" >"$TMP/out" 2>"$TMP/err" || fail "exit $?: $(cat "$TMP/err")"
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}
setup="pipe = StableDiffusionPipeline.from_pretrained('$MODEL'); pipe:set_progress_bar_config{disable = true}"
call() { # PROMPT (a Lua expression): one 2-step call, then the picture's size
  run "$setup; print(pipe($1, {num_inference_steps = 2}).images[1])"
  [ "$OUT" = "<Image 64x64 RGB>" ] || fail "the call did not run: $OUT"
}
HEAD="The following part of your input was truncated because CLIP can only handle sequences up to 77 tokens: "
# transformers' own line before it, once per tokenizer (N: the prompt's ids, BOS and EOS included)
long() { echo "Token indices sequence length is longer than the specified maximum sequence length for this model ($1 > 77). Running this sequence through the model will result in indexing errors"; }

call "string.rep('a photo of a cat ', 20)"
want="$(long 122)
${HEAD}['a cat a photo of a cat a photo of a cat a photo of a cat a photo of a cat a photo of a cat a photo of a cat a photo of a cat']"
[ "$ERR" = "$want" ] || fail "long prompt: got '$ERR'"

# Once per tokenizer: a second long call, and the tokenizer called without truncation,
# add only diffusers' line; a call that truncates (max_length) never warns.
run "$setup; local p = string.rep('a photo of a cat ', 20); pipe(p, {num_inference_steps = 2})
     pipe(p, {num_inference_steps = 2}); pipe.tokenizer(p)
     local t = CLIPTokenizer.from_pretrained('$MODEL/tokenizer'); t(p, {max_length = 77}); t(p)"
[ "$(grep -c '^Token indices' <<<"$ERR")" -eq 2 ] || fail "transformers' line not once per tokenizer: $ERR"
[ "$(grep -c "^${HEAD}" <<<"$ERR")" -eq 2 ] || fail "diffusers' line not once per call: $ERR"

# A batch: every prompt is listed, padded to the longest as diffusers' batch_decode shows
# it (45 pad tokens for the short one).
run "$setup; print(pipe({'x', string.rep('a photo of a cat ', 20)}, {num_inference_steps = 2}).images[2])"
pads=$(printf '<|endoftext|>%.0s' $(seq 45))
want="$(long 122)
${HEAD}['$pads', 'a cat a photo of a cat a photo of a cat a photo of a cat a photo of a cat a photo of a cat a photo of a cat a photo of a cat']"
[ "$ERR" = "$want" ] || fail "batch: got '$ERR'"

# Python's repr quoting: double quotes around a text with a single quote in it.
words="local t = {} for i = 0, 39 do t[#t + 1] = 'word' .. i end"
run "$setup; $words; print(pipe(table.concat(t, ' ') .. \" It's done\", {num_inference_steps = 2}).images[1])"
want="$(long 156)
${HEAD}[\"d 2 1 word 2 2 word 2 3 word 2 4 word 2 5 word 2 6 word 2 7 word 2 8 word 2 9 word 3 0 word 3 1 word 3 2 word 3 3 word 3 4 word 3 5 word 3 6 word 3 7 word 3 8 word 3 9 it's done\"]"
[ "$ERR" = "$want" ] || fail "quoted cut: got '$ERR'"

# A prompt that fits says nothing; neither do prompt embeddings, whatever their source.
call "'short prompt'"
[ -z "$ERR" ] || fail "a short prompt warned: $ERR"
run "$setup; e = pipe:encode_prompt(string.rep('a photo of a cat ', 20)); print(pipe{prompt_embeds = e, num_inference_steps = 2}.images[1])"
grep -q "^${HEAD}\['a cat a photo" <<<"$ERR" || fail "encode_prompt did not warn: $ERR"
[ "$(grep -c truncated <<<"$ERR")" -eq 1 ] || fail "prompt_embeds warned again: $ERR"

# img2img: height, width and guidance_rescale are taken and not used, as in diffusers.
run "p = StableDiffusionImg2ImgPipeline.from_pretrained('$MODEL'); p:set_progress_bar_config{disable = true}
     print(p{prompt = 'x', image = Image.new('RGB', {64, 64}), num_inference_steps = 2, height = 512,
             width = 512, guidance_rescale = 0.5}.images[1])"
[ "$OUT" = "<Image 64x64 RGB>" ] || fail "img2img with height and width: $OUT"
grep -q "^warning: height and width are not used by StableDiffusionImg2ImgPipeline" <<<"$ERR" ||
  fail "no height/width warning: $ERR"
grep -q "^warning: guidance_rescale is not used by StableDiffusionImg2ImgPipeline" <<<"$ERR" ||
  fail "no guidance_rescale warning: $ERR"
echo "pipeline warnings: all checks passed"
