# Every notebook example runs end to end on the shipped tiny model (its pictures
# are noise, but every cell must run), and the deep-dive loop gives the pipeline's picture.
source "$(dirname "$0")/lib.sh"
MODEL="$SDREPL_SOURCE_DIR/tests/models/tiny-sd-a"
IMAGE="file://$SDREPL_SOURCE_DIR/tests/reference/tiny-sd-a/init_image.png"
cd "$TMP"
export SDREPL_STEPS=4

"$SDREPL" --export seed.html "$SDREPL_SOURCE_DIR/examples/seed_notebook.lua" "$MODEL" "$IMAGE" \
  >out.txt 2>err.txt || fail "seed_notebook failed: $(tail -5 err.txt)"
[ "$(grep -c 'data:image/png;base64,' seed.html)" -ge 3 ] || fail "seed notebook: sketch and two grids not embedded"
grep -q 'face of a human in  joy' seed.html || fail "seed notebook: prompt cell missing"

"$SDREPL" "$SDREPL_SOURCE_DIR/examples/deep_dive.lua" "$MODEL" >out.txt 2>err.txt \
  || fail "deep_dive failed: $(tail -5 err.txt)"
grep -q "the loop by hand gives the pipeline's picture:.*true" out.txt \
  || fail "deep_dive: the loop by hand differs from the pipeline: $(cat out.txt)"

"$SDREPL" "$SDREPL_SOURCE_DIR/examples/txt2img.lua" "$MODEL" "a tiny test" \
  "$SDREPL_SOURCE_DIR/tests/models/tiny-taesd" >out.txt 2>err.txt \
  || fail "txt2img failed: $(tail -5 err.txt)"
[ -s txt2img.png ] || fail "txt2img.png not written"
grep -q '<Image 128x64 RGB>' out.txt || fail "txt2img: the picture beside TAESD's expected: $(cat out.txt)"
"$SDREPL" -e 'print(Image.open("txt2img.png").info.parameters)' | grep -q "Steps: 4" \
  || fail "txt2img.png lacks its parameters"

"$SDREPL" "$SDREPL_SOURCE_DIR/examples/seed_sweep.lua" "$MODEL" >out.txt 2>err.txt \
  || fail "seed_sweep failed: $(tail -5 err.txt)"
[ "$(grep -c '<Image 256x64 RGB>' out.txt)" -eq 2 ] || fail "seed_sweep: two 1x4 grids expected: $(cat out.txt)"
"$SDREPL" "$SDREPL_SOURCE_DIR/examples/textual_inversion.lua" "$MODEL" \
  "$SDREPL_SOURCE_DIR/tests/fixtures/textual_inversion/cat-toy" >out.txt 2>err.txt ||
  fail "textual_inversion failed: $(tail -5 err.txt)"
grep -q '<cat-toy> is token 1514; the tokenizer has 1515 tokens (1514 before)' out.txt ||
  fail "textual_inversion: $(cat out.txt)"
grep -q 'the tokenizer has 1514 tokens again' out.txt || fail "textual_inversion: not unloaded"

SDREPL_STEPS=2 "$SDREPL" "$SDREPL_SOURCE_DIR/examples/lora.lua" "$MODEL" \
  "$SDREPL_SOURCE_DIR/tests/fixtures/lora" kohya.safetensors >out.txt 2>err.txt ||
  fail "lora failed: $(tail -5 err.txt)"
grep -q '^adapters: style$' out.txt || fail "lora: $(cat out.txt)"
grep -q 'the picture is the model.s own again: true' out.txt || fail "lora: not unloaded: $(cat out.txt)"
[ "$(grep -c '<Image 192x64 RGB>' out.txt)" -eq 1 ] || fail "lora: a 1x3 grid expected: $(cat out.txt)"

SDREPL_STEPS=2 SDREPL_SIZE=32 "$SDREPL" "$SDREPL_SOURCE_DIR/examples/inpaint.lua" \
  "$SDREPL_SOURCE_DIR/tests/models/tiny-sd-inpaint" \
  "$SDREPL_SOURCE_DIR/tests/reference/inpaint/sketch64.png" \
  "$SDREPL_SOURCE_DIR/tests/reference/inpaint/box64.png" >out.txt 2>err.txt ||
  fail "inpaint failed: $(tail -5 err.txt)"
grep -q '<StableDiffusionInpaintPipeline' out.txt || fail "inpaint: $(cat out.txt)"
[ "$(grep -c '<Image 96x32 RGB>' out.txt)" -eq 1 ] || fail "inpaint: a 1x3 grid expected: $(cat out.txt)"
[ "$(grep -c '<Image 64x32 RGB>' out.txt)" -eq 3 ] ||
  fail "inpaint: three 1x2 grids (inputs, strength, padding_mask_crop) expected: $(cat out.txt)"
SDREPL_STEPS=2 SDREPL_SIZE=64 "$SDREPL" "$SDREPL_SOURCE_DIR/examples/controlnet.lua" \
  "$SDREPL_SOURCE_DIR/tests/models/tiny-sd-a" "$SDREPL_SOURCE_DIR/tests/models/tiny-controlnet-a" \
  "$SDREPL_SOURCE_DIR/tests/reference/controlnet/sketch64.png" >out.txt 2>err.txt ||
  fail "controlnet failed: $(tail -5 err.txt)"
grep -q '<StableDiffusionControlNetPipeline' out.txt || fail "controlnet: $(cat out.txt)"
[ "$(grep -c '<Image 192x64 RGB>' out.txt)" -eq 2 ] || fail "controlnet: two 1x3 grids expected: $(cat out.txt)"
SDREPL_STEPS=2 SDREPL_SIZE=64 "$SDREPL" "$SDREPL_SOURCE_DIR/examples/t2i_adapter.lua" "$MODEL" \
  "$SDREPL_SOURCE_DIR/tests/models/tiny-t2i-adapter-b" \
  "$SDREPL_SOURCE_DIR/tests/reference/controlnet/sketch64.png" >out.txt 2>err.txt ||
  fail "t2i_adapter failed: $(tail -5 err.txt)"
grep -q '<StableDiffusionAdapterPipeline' out.txt || fail "t2i_adapter: $(cat out.txt)"
[ "$(grep -c '<Image 192x64 RGB>' out.txt)" -eq 2 ] || fail "t2i_adapter: two 1x3 grids expected: $(cat out.txt)"
SDREPL_STEPS=2 SDREPL_SIZE=64 "$SDREPL" "$SDREPL_SOURCE_DIR/examples/ip_adapter.lua" "$MODEL" \
  "$SDREPL_SOURCE_DIR/tests/models/tiny-ip-adapter" ip-adapter-plus_tiny.bin \
  "$SDREPL_SOURCE_DIR/tests/reference/ip_adapter/face.png" >out.txt 2>err.txt ||
  fail "ip_adapter failed: $(tail -5 err.txt)"
[ "$(grep -c '<Image 192x64 RGB>' out.txt)" -eq 2 ] || fail "ip_adapter: two 1x3 grids expected: $(cat out.txt)"
grep -q 'the same picture from the embeddings: true' out.txt || fail "ip_adapter: embeddings: $(cat out.txt)"
grep -q 'unloaded: the text-only picture again: true' out.txt || fail "ip_adapter: unload: $(cat out.txt)"
SDREPL_SIZE=64 "$SDREPL" "$SDREPL_SOURCE_DIR/examples/lcm.lua" "$MODEL" \
  "$SDREPL_SOURCE_DIR/tests/models/tiny-lcm-lora" "$SDREPL_SOURCE_DIR/tests/models/tiny-lcm" \
  >out.txt 2>err.txt || fail "lcm failed: $(tail -5 err.txt)"
grep -q '^<LCMScheduler>$' out.txt || fail "lcm: $(cat out.txt)"
grep -q '<LatentConsistencyModelPipeline' out.txt || fail "lcm: $(cat out.txt)"
[ "$(grep -c '<Image 192x64 RGB>' out.txt)" -eq 2 ] || fail "lcm: two 1x3 grids expected: $(cat out.txt)"
SDREPL_STEPS=2 "$SDREPL" "$SDREPL_SOURCE_DIR/examples/sdxl.lua" \
  "$SDREPL_SOURCE_DIR/tests/models/tiny-sdxl" "$SDREPL_SOURCE_DIR/tests/models/tiny-sdxl-refiner" \
  "$SDREPL_SOURCE_DIR/tests/fixtures/lora-xl/kohya-sgm.safetensors" \
  >out.txt 2>err.txt ||
  fail "sdxl failed: $(tail -5 err.txt)"
grep -q '<StableDiffusionXLPipeline' out.txt || fail "sdxl: $(cat out.txt)"
[ "$(grep -c '<Image 192x64 RGB>' out.txt)" -eq 2 ] || fail "sdxl: two 1x3 grids expected: $(cat out.txt)"
grep -q 'without the LoRA, the first picture again: true' out.txt || fail "sdxl: LoRA: $(cat out.txt)"
grep -q '<Image 128x64 RGB>' out.txt || fail "sdxl: the ensemble's 1x2 grid expected: $(cat out.txt)"
grep -q 'the same picture from the embeddings: true' out.txt || fail "sdxl: embeddings: $(cat out.txt)"
echo "examples: all ran"
