# tests/sh/test_hub.sh — from_pretrained("org/name") against a local hub
# (tests/tools/hub_server.py on 127.0.0.1), into huggingface_hub's cache layout
# under a temporary HF_HOME: a fresh download, the seed notebook's line with
# revision "fp16", variants, components, reuse with the server gone and
# HF_HUB_OFFLINE=1, resume after a kill, two processes at once, a gated repo
# with and without a token, login(), the errors, and caches written by
# huggingface_hub (the committed fixture; a fresh one and the way back when
# .venv-torch is there).
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 not found"
command -v sha256sum >/dev/null || skip "sha256sum not found"

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap 'stop_server; rm -rf "$TMP"' EXIT

SRC=$SDREPL_SOURCE_DIR
SERVER=$SRC/tests/tools/hub_server.py
MODEL_A=$SRC/tests/models/tiny-sd-a # float32
MODEL_B=$SRC/tests/models/tiny-sd-b # float16
MODEL_SC=$SRC/tests/models/tiny-sd-sc # tiny-sd-b with a safety checker
# The server is local: a proxy from the environment must not stand in between,
# and nothing from the user's own Hugging Face set-up may leak in.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HF_HUB_CACHE \
  HUGGINGFACE_HUB_CACHE XDG_CACHE_HOME
export HF_HOME=$TMP/hf
CACHE=$HF_HOME/hub

# ---- the repositories ---------------------------------------------------------
REPOS=$TMP/repos
mkdir -p "$REPOS/sdrepl-test/tiny-sd-b" "$REPOS/sdrepl-test/gated" "$REPOS/CompVis/stable-diffusion-v1-4"
cp -r "$MODEL_B" "$REPOS/sdrepl-test/tiny-sd-b/main"
cp -r "$MODEL_B" "$REPOS/sdrepl-test/gated/main"
touch "$REPOS/sdrepl-test/gated/GATED"
# CompVis/stable-diffusion-v1-4 as the hub has it, in small: main in float32
# with fp16 variant files beside the plain ones, a branch "fp16" whose plain
# files are float16, a safety checker (a tiny one: .safetensors, and a .bin beside it
# that nobody needs) and .bin files nobody here needs.
SD=$REPOS/CompVis/stable-diffusion-v1-4
cp -r "$MODEL_A" "$SD/main"
python3 "$SERVER" fp16 "$MODEL_A" "$SD/fp16"
for c in unet vae; do
  cp "$SD/fp16/$c/diffusion_pytorch_model.safetensors" "$SD/main/$c/diffusion_pytorch_model.fp16.safetensors"
done
cp "$SD/fp16/text_encoder/model.safetensors" "$SD/main/text_encoder/model.fp16.safetensors"
for rev in main fp16; do
  python3 - "$SD/$rev/model_index.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["safety_checker"] = ["stable_diffusion", "StableDiffusionSafetyChecker"]
d["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
json.dump(d, open(p, "w"), indent=2)
PY
  cp -r "$MODEL_SC/safety_checker" "$MODEL_SC/feature_extractor" "$SD/$rev/"
  head -c 1000 /dev/urandom >"$SD/$rev/safety_checker/pytorch_model.bin"
  head -c 1000 /dev/urandom >"$SD/$rev/unet/diffusion_pytorch_model.bin"
done
# Textual inversions as sd-concepts-library keeps them: learned_embeds.bin and notes; one
# with a .safetensors beside its .bin.
TI=$SRC/tests/fixtures/textual_inversion
mkdir -p "$REPOS/sd-concepts-library/cat-toy/main" "$REPOS/sdrepl-test/shiny/main"
cp "$TI/cat-toy/learned_embeds.bin" "$REPOS/sd-concepts-library/cat-toy/main/"
echo '<cat-toy>' >"$REPOS/sd-concepts-library/cat-toy/main/token_identifier.txt"
echo 'object' >"$REPOS/sd-concepts-library/cat-toy/main/type_of_concept.txt"
cp "$TI/shiny/learned_embeds.safetensors" "$REPOS/sdrepl-test/shiny/main/"
head -c 1000 /dev/urandom >"$REPOS/sdrepl-test/shiny/main/learned_embeds.bin"
# LoRA repos: diffusers' training output (pytorch_lora_weights.safetensors, with the
# optimizer's state and a checkpoint folder beside it), and a Kohya repo with two files.
LORA=$SRC/tests/fixtures/lora
mkdir -p "$REPOS/sdrepl-test/lora/main/checkpoint-500" "$REPOS/sdrepl-test/kohya-pair/main"
cp "$LORA/diffusers/pytorch_lora_weights.safetensors" "$REPOS/sdrepl-test/lora/main/"
cp "$LORA/diffusers/pytorch_lora_weights.safetensors" "$REPOS/sdrepl-test/lora/main/checkpoint-500/"
head -c 1000 /dev/urandom >"$REPOS/sdrepl-test/lora/main/optimizer.safetensors"
echo '# a LoRA' >"$REPOS/sdrepl-test/lora/main/README.md"
cp "$LORA/kohya.safetensors" "$REPOS/sdrepl-test/kohya-pair/main/style.safetensors"
cp "$LORA/kohya.safetensors" "$REPOS/sdrepl-test/kohya-pair/main/style-v2.safetensors"
# openai/clip-vit-large-patch14 as the hub has it, in small: a whole CLIPModel (the fast.ai
# notebook loads its text encoder and tokenizer from there) in four formats, the tokenizer
# at the root.
CLIP=$REPOS/openai/clip-vit-large-patch14/main
mkdir -p "$CLIP"
cp "$SRC/tests/models/tiny-clip-full/config.json" "$SRC/tests/models/tiny-clip-full/model.safetensors" "$CLIP/"
cp "$SRC"/tests/fixtures/tokenizer/clip-vit-large-patch14/* "$CLIP/"
for f in pytorch_model.bin tf_model.h5 flax_model.msgpack; do head -c 1000 /dev/urandom >"$CLIP/$f"; done
echo '{}' >"$CLIP/preprocessor_config.json"
# lllyasviel/sd-controlnet-canny as the hub has it, in small: a ControlNetModel at the root,
# its .safetensors and a .bin nobody needs here.
CN=$REPOS/lllyasviel/sd-controlnet-canny/main
mkdir -p "$CN"
cp "$SRC/tests/models/tiny-controlnet-a/config.json" \
  "$SRC/tests/models/tiny-controlnet-a/diffusion_pytorch_model.safetensors" "$CN/"
head -c 1000 /dev/urandom >"$CN/diffusion_pytorch_model.bin"
echo '# a ControlNet' >"$CN/README.md"
# h94/IP-Adapter as the hub has it, in small: models/ with the adapters' files and the
# image encoder (model.safetensors and a .bin nobody needs), and an sdxl_models folder.
IPA=$REPOS/h94/IP-Adapter/main
mkdir -p "$IPA/models/image_encoder" "$IPA/sdxl_models"
cp "$SRC"/tests/models/tiny-ip-adapter/models/ip-adapter*.* "$IPA/models/"
cp "$SRC"/tests/models/tiny-ip-adapter/models/image_encoder/* "$IPA/models/image_encoder/"
head -c 1000 /dev/urandom >"$IPA/models/image_encoder/pytorch_model.bin"
head -c 1000 /dev/urandom >"$IPA/sdxl_models/ip-adapter_sdxl.bin"
# stabilityai's SDXL base and refiner as the hub has them, in small: fp16 twins beside each
# .safetensors, and the base's single-file checkpoint at the root that from_pretrained skips.
for repo in stable-diffusion-xl-base-1.0:tiny-sdxl stable-diffusion-xl-refiner-1.0:tiny-sdxl-refiner; do
  XL=$REPOS/stabilityai/${repo%%:*}/main
  mkdir -p "$XL"
  cp -r "$SRC/tests/models/${repo#*:}"/. "$XL/"
  find "$XL" -name '*.safetensors' | while read -r f; do cp "$f" "${f%.safetensors}.fp16.safetensors"; done
  head -c 1000 /dev/urandom >"$XL/sd_xl_checkpoint.safetensors"
done
# the x4 upscaler, whose low_res_scheduler is one more component to fetch
mkdir -p "$REPOS/stabilityai/stable-diffusion-x4-upscaler/main"
cp -r "$SRC/tests/models/tiny-upscaler"/. "$REPOS/stabilityai/stable-diffusion-x4-upscaler/main/"
# ... and a real (tiny) single-file checkpoint in the base repo, for from_single_file's links
cp "$SRC/tests/models/tiny-sdxl-single.safetensors" \
  "$REPOS/stabilityai/stable-diffusion-xl-base-1.0/main/sd_xl_base_1.0.safetensors"
# As on the hub, main's .bin files have their fp16 twins too (else diffusers would
# choose .bin for variant fp16: a .bin without its .safetensors).
head -c 1000 /dev/urandom >"$SD/main/unet/diffusion_pytorch_model.fp16.bin"

LOG=$TMP/requests.log
start_server() {
  python3 "$SERVER" serve --repos "$REPOS" --log "$LOG" --lifetime 280 >"$TMP/port" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    [ -s "$TMP/port" ] && break
    sleep 0.1
  done
  PORT=$(head -n1 "$TMP/port")
  [ -n "$PORT" ] || fail "the hub server did not start"
  export HF_ENDPOINT=http://127.0.0.1:$PORT
}
control() { python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1]).read()" "$HF_ENDPOINT/_control/$1"; }
api_sha() { # REPO REV: the commit the server gives
  python3 -c "import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]))['sha'])" \
    "$HF_ENDPOINT/api/models/$1/revision/$2"
}

# run CODE: sdrepl -e CODE; sets OUT, ERR and STATUS, never fails itself.
run() {
  STATUS=0
  "$SDREPL" -e "$1;" >"$TMP/out" 2>"$TMP/err" </dev/null || STATUS=$?
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}
expect_ok() {
  run "$1"
  [ "$STATUS" -eq 0 ] || fail "$1: exit $STATUS, stderr: $ERR"
}
expect_error() { # CODE TEXT...: every TEXT in the error
  local code=$1
  shift
  run "$code"
  [ "$STATUS" -eq 1 ] || fail "$code: want exit 1, got $STATUS (stdout: $OUT, stderr: $ERR)"
  for t in "$@"; do
    case "$ERR" in *"$t"*) ;; *) fail "$code: want an error with '$t', got: $ERR" ;; esac
  done
}
mark_log() { LOG_AT=$(wc -l <"$LOG"); }
new_requests() { tail -n +$((LOG_AT + 1)) "$LOG"; }
count_new() { new_requests | grep -c "$1" || true; }

# same_images A B: the pipelines from A and B (from_pretrained arguments, as Lua) draw the same picture.
same_images() {
  cat >"$TMP/same.lua" <<EOF
local a = StableDiffusionPipeline.from_pretrained($1)
local b = StableDiffusionPipeline.from_pretrained($2)
local function draw(p)
  torch.manual_seed(7)
  return p{prompt = "a hub", num_inference_steps = 2, output_type = "np"}.images
end
local d = (draw(a) - draw(b)):abs():max():item()
assert(d == 0, "the pictures differ by " .. d)
EOF
  "$SDREPL" "$TMP/same.lua" >"$TMP/out" 2>"$TMP/err" </dev/null || fail "same_images $1 / $2: $(cat "$TMP/err")"
}

# check_snapshot REPO REV FILE...: refs/REV holds the server's commit; each FILE of
# the snapshot is a relative link to blobs/<etag> with the served file's bytes.
check_snapshot() {
  local repo=$1 rev=$2
  shift 2
  local store=$CACHE/models--${repo/\//--} sha
  sha=$(api_sha "$repo" "$rev")
  [ "$(cat "$store/refs/$rev")" = "$sha" ] || fail "refs/$rev of $repo is not $sha"
  for f in "$@"; do
    local link=$store/snapshots/$sha/$f
    [ -L "$link" ] || fail "$link is not a link"
    case "$(readlink "$link")" in ../*blobs/*) ;; *) fail "$link -> $(readlink "$link"): not relative into blobs/" ;; esac
    cmp -s "$link" "$REPOS/$repo/$rev/$f" || fail "$repo@$rev $f differs from the served file"
    case "$f" in *.safetensors)
      [ "$(basename "$(readlink "$link")")" = "$(sha256sum <"$link" | cut -c1-64)" ] ||
        fail "the blob of $f is not named by its sha256" ;;
    esac
  done
  [ -z "$(find "$store" -name '*.incomplete')" ] || fail "an .incomplete is left in $store"
}
PIPE_FILES="model_index.json scheduler/scheduler_config.json text_encoder/config.json
  text_encoder/model.safetensors tokenizer/merges.txt tokenizer/special_tokens_map.json
  tokenizer/tokenizer_config.json tokenizer/vocab.json unet/config.json
  unet/diffusion_pytorch_model.safetensors vae/config.json vae/diffusion_pytorch_model.safetensors"

start_server
: >"$LOG"

# ---- a fresh download ----------------------------------------------------------
mark_log
expect_ok "p = StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b'); print(p)"
case "$OUT" in *"<StableDiffusionPipeline sdrepl-test/tiny-sd-b"*) ;; *) fail "name_or_path: $OUT" ;; esac
[ "$(count_new '^GET /api/models/sdrepl-test/tiny-sd-b/revision/main ')" -eq 1 ] || fail "want one file list: $(new_requests)"
[ "$(count_new '^GET /blobs/')" -eq 3 ] || fail "want the 3 weight files from the CDN: $(new_requests)"
! new_requests | grep -q 'safety_checker\|feature_extractor' || fail "fetched what sdrepl does not use"
# shellcheck disable=SC2086
check_snapshot sdrepl-test/tiny-sd-b main $PIPE_FILES
# One progress bar per file, named by its path.
grep -q '^unet/diffusion_pytorch_model.safetensors: 100%|' "$TMP/err" || fail "no progress bar for the UNet: $ERR"
same_images "'$MODEL_B'" "'sdrepl-test/tiny-sd-b'"

# Cached: one request for the file list, no file fetched again.
mark_log
expect_ok "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b')"
[ "$(new_requests | wc -l)" -eq 1 ] || fail "a cached model should cost one request: $(new_requests)"
# A commit for revision: the same snapshot, no ref of that name.
SHA_B=$(api_sha sdrepl-test/tiny-sd-b main)
mark_log
expect_ok "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {revision = '$SHA_B'})"
[ "$(new_requests | wc -l)" -eq 1 ] || fail "a cached commit should cost one request: $(new_requests)"
[ "$(ls "$CACHE/models--sdrepl-test--tiny-sd-b/refs")" = main ] || fail "a ref was written for a commit"
# A local folder that exists wins over the hub, even when it looks like a repo id.
mkdir -p "$TMP/cwd/sdrepl-test"
cp -r "$MODEL_A" "$TMP/cwd/sdrepl-test/tiny-sd-b"
mark_log
(cd "$TMP/cwd" && "$SDREPL" -e "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b')" </dev/null) ||
  fail "a local folder named like a repo id"
[ "$(new_requests | wc -l)" -eq 0 ] || fail "a local folder went to the hub: $(new_requests)"

# ---- the seed notebook's line: revision "fp16" ---------------------------------
mark_log
expect_ok 'pipe = StableDiffusionImg2ImgPipeline.from_pretrained("CompVis/stable-diffusion-v1-4",
  {revision = "fp16", torch_dtype = torch.float16}):to("cpu"); print(pipe)'
case "$OUT" in *"<StableDiffusionImg2ImgPipeline CompVis/stable-diffusion-v1-4"*) ;; *) fail "seed line: $OUT" ;; esac
# shellcheck disable=SC2086
check_snapshot CompVis/stable-diffusion-v1-4 fp16 $PIPE_FILES safety_checker/config.json \
  safety_checker/model.safetensors feature_extractor/preprocessor_config.json
[ ! -e "$CACHE/models--CompVis--stable-diffusion-v1-4/refs/main" ] || fail "refs/main written for revision fp16"
! new_requests | grep -q '\.bin' || fail "fetched .bin files: $(new_requests)"
same_images "'$SD/fp16'" "'CompVis/stable-diffusion-v1-4', {revision = 'fp16'}"

# variant = "fp16" on main: the fp16 files, not the float32 ones beside them.
mark_log
# safety_checker = false (diffusers' safety_checker=None): the checker is not fetched.
expect_ok "StableDiffusionPipeline.from_pretrained('CompVis/stable-diffusion-v1-4', {variant = 'fp16', safety_checker = false})"
check_snapshot CompVis/stable-diffusion-v1-4 main unet/diffusion_pytorch_model.fp16.safetensors \
  vae/diffusion_pytorch_model.fp16.safetensors text_encoder/model.fp16.safetensors model_index.json
! new_requests | grep -q 'safety_checker/' || fail "safety_checker = false fetched it: $(new_requests)"
SNAP_MAIN=$CACHE/models--CompVis--stable-diffusion-v1-4/snapshots/$(api_sha CompVis/stable-diffusion-v1-4 main)
[ ! -e "$SNAP_MAIN/unet/diffusion_pytorch_model.safetensors" ] || fail "variant fp16 fetched the float32 UNet"
# The float16 bytes are the same in both revisions: one blob, fetched once.
[ "$(count_new '^GET /blobs/')" -eq 0 ] || fail "blobs shared with revision fp16 were fetched again: $(new_requests)"
# Without the variant, the plain files of main.
expect_ok "StableDiffusionPipeline.from_pretrained('CompVis/stable-diffusion-v1-4')"
check_snapshot CompVis/stable-diffusion-v1-4 main unet/diffusion_pytorch_model.safetensors \
  safety_checker/model.safetensors
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {variant = 'fp16'})" \
  "no weight files of variant 'fp16'"

# ---- components from a repo id, into cache_dir ----------------------------------
expect_ok "u = UNet2DConditionModel.from_pretrained('sdrepl-test/tiny-sd-b', {subfolder = 'unet', cache_dir = '$TMP/own'})
  t = CLIPTokenizer.from_pretrained('sdrepl-test/tiny-sd-b', {subfolder = 'tokenizer', cache_dir = '$TMP/own'})
  s = PNDMScheduler.from_pretrained('sdrepl-test/tiny-sd-b', {subfolder = 'scheduler', cache_dir = '$TMP/own'})
  v = AutoencoderKL.from_pretrained('CompVis/stable-diffusion-v1-4', {subfolder = 'vae', variant = 'fp16', cache_dir = '$TMP/own'})
  c = CLIPTextModel.from_pretrained('CompVis/stable-diffusion-v1-4', {subfolder = 'text_encoder', cache_dir = '$TMP/own'})
  print(#t('a photo').input_ids)"
OWN_B=$(find "$TMP/own/models--sdrepl-test--tiny-sd-b/snapshots" -mindepth 1 -maxdepth 1)
[ "$(cd "$OWN_B" && find . -type l | sort | tr '\n' ' ')" = "./scheduler/scheduler_config.json ./tokenizer/merges.txt ./tokenizer/special_tokens_map.json ./tokenizer/tokenizer_config.json ./tokenizer/vocab.json ./unet/config.json ./unet/diffusion_pytorch_model.safetensors " ] ||
  fail "components fetched other files: $(cd "$OWN_B" && find . -type l)"
[ -e "$TMP/own/models--CompVis--stable-diffusion-v1-4/snapshots/$(api_sha CompVis/stable-diffusion-v1-4 main)/vae/diffusion_pytorch_model.fp16.safetensors" ] ||
  fail "the fp16 VAE is not in cache_dir"
expect_error "UNet2DConditionModel.from_pretrained('sdrepl-test/tiny-sd-b')" "no config.json in the repo" 'subfolder option such as "unet"'

# ---- the ControlNet notebook's lines: a ControlNetModel repo, then the pipeline with it -----
expect_ok "cn = ControlNetModel.from_pretrained('lllyasviel/sd-controlnet-canny', {cache_dir = '$TMP/own'})
  pipe = StableDiffusionControlNetPipeline.from_pretrained('CompVis/stable-diffusion-v1-4', {controlnet = cn, safety_checker = false, cache_dir = '$TMP/own'})
  print(pipe, pipe.controlnet == cn)"
case "$OUT" in *"<StableDiffusionControlNetPipeline CompVis/stable-diffusion-v1-4"*"true"*) ;; *) fail "controlnet pipeline: $OUT" ;; esac
OWN_CN=$(find "$TMP/own/models--lllyasviel--sd-controlnet-canny/snapshots" -mindepth 1 -maxdepth 1)
[ "$(cd "$OWN_CN" && find . -type l | sort | tr '\n' ' ')" = "./config.json ./diffusion_pytorch_model.safetensors " ] ||
  fail "the ControlNet fetched other files: $(cd "$OWN_CN" && find . -type l)"

# ---- the IP-Adapter guide's lines: the adapter file and its image encoder, nothing else ----
# (pixel values given: this repo's feature extractor makes the safety checker's 32 x 32)
expect_ok "pipe = StableDiffusionPipeline.from_pretrained('CompVis/stable-diffusion-v1-4', {safety_checker = false, cache_dir = '$TMP/own'})
  pipe:load_ip_adapter('h94/IP-Adapter', 'models', 'ip-adapter_tiny.safetensors', {cache_dir = '$TMP/own'})
  pipe:set_ip_adapter_scale(0.6)
  local e = pipe:prepare_ip_adapter_image_embeds(torch.zeros(1, 3, 224, 224), nil, nil, 1, true)
  print(e[1].shape[1], e[1].shape[3])"
[ "$OUT" = "$(printf '2\t24')" ] || fail "ip adapter: $OUT"
OWN_IPA=$(find "$TMP/own/models--h94--IP-Adapter/snapshots" -mindepth 1 -maxdepth 1)
[ "$(cd "$OWN_IPA" && find . -type l | sort | tr '\n' ' ')" = "./models/image_encoder/config.json ./models/image_encoder/model.safetensors ./models/ip-adapter_tiny.safetensors " ] ||
  fail "the IP-Adapter fetched other files: $(cd "$OWN_IPA" && find . -type l)"

# ---- the SDXL notebook's lines: the base in fp16, the refiner given the base's models ----
expect_ok "base = DiffusionPipeline.from_pretrained('stabilityai/stable-diffusion-xl-base-1.0', {torch_dtype = torch.float16, variant = 'fp16', use_safetensors = true, cache_dir = '$TMP/own'})
  refiner = DiffusionPipeline.from_pretrained('stabilityai/stable-diffusion-xl-refiner-1.0', {text_encoder_2 = base.text_encoder_2, vae = base.vae, torch_dtype = torch.float16, variant = 'fp16', use_safetensors = true, cache_dir = '$TMP/own'})
  print(base, refiner)"
case "$OUT" in *"<StableDiffusionXLPipeline stabilityai/stable-diffusion-xl-base-1.0"*"<StableDiffusionXLImg2ImgPipeline stabilityai/stable-diffusion-xl-refiner-1.0"*) ;; *) fail "sdxl: $OUT" ;; esac
OWN_XL=$(find "$TMP/own/models--stabilityai--stable-diffusion-xl-base-1.0/snapshots" -mindepth 1 -maxdepth 1)
for f in text_encoder_2/model.fp16.safetensors tokenizer_2/vocab.json unet/diffusion_pytorch_model.fp16.safetensors; do
  [ -e "$OWN_XL/$f" ] || fail "sdxl base: $f not fetched: $(cd "$OWN_XL" && find . -type l)"
done
[ ! -e "$OWN_XL/sd_xl_checkpoint.safetensors" ] || fail "sdxl base: the single-file checkpoint was fetched"
OWN_REF=$(find "$TMP/own/models--stabilityai--stable-diffusion-xl-refiner-1.0/snapshots" -mindepth 1 -maxdepth 1)
[ -e "$OWN_REF/unet/diffusion_pytorch_model.fp16.safetensors" ] || fail "refiner: no UNet"
[ ! -e "$OWN_REF/text_encoder_2/model.fp16.safetensors" ] && [ ! -e "$OWN_REF/vae/diffusion_pytorch_model.fp16.safetensors" ] ||
  fail "refiner: the given text_encoder_2 and vae were fetched too: $(cd "$OWN_REF" && find . -type l)"

# ---- the upscaler: its low_res_scheduler comes along ----------------------------------
expect_ok "p = StableDiffusionUpscalePipeline.from_pretrained('stabilityai/stable-diffusion-x4-upscaler', {cache_dir = '$TMP/up'})
  print(p{prompt = 'a cat', image = Image.new('RGB', {16, 16}), num_inference_steps = 1}.images[1])"
case "$OUT" in *"<Image 64x64 RGB>"*) ;; *) fail "upscaler from the hub: $OUT" ;; esac

# ---- from_single_file with the hub's link to the file: that file alone is fetched ----
expect_ok "p = StableDiffusionXLPipeline.from_single_file('https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/sd_xl_base_1.0.safetensors', {tokenizer = '$SRC/tests/models/tiny-sd-a/tokenizer', cache_dir = '$TMP/single'})
  print(p)"
case "$OUT" in *"<StableDiffusionXLPipeline"*) ;; *) fail "single file from a link: $OUT" ;; esac
OWN_SF=$(find "$TMP/single/models--stabilityai--stable-diffusion-xl-base-1.0/snapshots" -mindepth 1 -maxdepth 1)
[ "$(cd "$OWN_SF" && find . -type l)" = "./sd_xl_base_1.0.safetensors" ] ||
  fail "single file: other files fetched: $(cd "$OWN_SF" && find . -type l)"
cmp -s "$OWN_SF/sd_xl_base_1.0.safetensors" "$SRC/tests/models/tiny-sdxl-single.safetensors" ||
  fail "single file: the fetched file differs"
expect_error "StableDiffusionXLPipeline.from_single_file('hf.co/stabilityai/stable-diffusion-xl-base-1.0/none.safetensors', {cache_dir = '$TMP/single'})" \
  "the repo has no none.safetensors"
expect_error "StableDiffusionXLPipeline.from_single_file('nothing-here.safetensors')" \
  "no checkpoint file at nothing-here.safetensors"

# ---- the fast.ai notebook's text encoder and tokenizer: a whole CLIP repo ------------
mark_log
expect_ok "t = CLIPTokenizer.from_pretrained('openai/clip-vit-large-patch14')
  e = CLIPTextModel.from_pretrained('openai/clip-vit-large-patch14')
  print(#t, e.config.hidden_size, e.config.eos_token_id)"
[ "$OUT" = "$(printf '49408\t32\t2')" ] || fail "the CLIP repo: $OUT"
! new_requests | grep -q 'pytorch_model\|tf_model\|flax_model\|preprocessor' ||
  fail "fetched more than CLIPTextModel and CLIPTokenizer use: $(new_requests)"
check_snapshot openai/clip-vit-large-patch14 main config.json model.safetensors vocab.json merges.txt

# ---- textual inversions from a repo id --------------------------------------------
mark_log
expect_ok "p = StableDiffusionPipeline.from_pretrained('$MODEL_A')
  p:load_textual_inversion('sd-concepts-library/cat-toy')
  p:load_textual_inversion('sdrepl-test/shiny', {token = '<shiny>'})
  print(#p.tokenizer, p.tokenizer:convert_tokens_to_ids('<cat-toy>'))"
[ "$OUT" = "$(printf '1518\t1514')" ] || fail "textual inversions from the hub: $OUT"
new_requests | grep -q 'cat-toy/resolve/[^ ]*/learned_embeds.bin' || fail "no learned_embeds.bin: $(new_requests)"
! new_requests | grep -q '\.txt\|shiny/resolve/[^ ]*\.bin' || fail "fetched more than the embeddings: $(new_requests)"
check_snapshot sd-concepts-library/cat-toy main learned_embeds.bin
expect_error "p = StableDiffusionPipeline.from_pretrained('$MODEL_A')
  p:load_textual_inversion('sdrepl-test/tiny-sd-b')" "the repo has no learned_embeds.bin"

# ---- LoRA from a repo id: the one LoRA file, or weight_name ----------------------------
mark_log
expect_ok "p = StableDiffusionPipeline.from_pretrained('$MODEL_A')
  p:load_lora_weights('sdrepl-test/lora')
  p:load_lora_weights('sdrepl-test/kohya-pair', {weight_name = 'style-v2.safetensors', adapter_name = 'style'})
  print(table.concat(p:get_list_adapters().unet, ','))"
[ "$OUT" = "default_0,style" ] || fail "LoRA from the hub: $OUT"
new_requests | grep -q 'lora/resolve/[^ ]*/pytorch_lora_weights.safetensors' || fail "no pytorch_lora_weights: $(new_requests)"
! new_requests | grep -q 'optimizer\|checkpoint-500\|README\|kohya-pair/resolve/[^ ]*/style.safetensors' ||
  fail "fetched more than the LoRA files: $(new_requests)"
check_snapshot sdrepl-test/lora main pytorch_lora_weights.safetensors
expect_error "p = StableDiffusionPipeline.from_pretrained('$MODEL_A')
  p:load_lora_weights('sdrepl-test/kohya-pair')" "more than one weights file" "weight_name"

# ---- errors ----------------------------------------------------------------------
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/nothing')" \
  "StableDiffusionPipeline.from_pretrained: repository sdrepl-test/nothing not found at $HF_ENDPOINT (HTTP 401), nor is it a folder here" "login()"
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {revision = 'v9'})" \
  "revision 'v9' not found in sdrepl-test/tiny-sd-b (HTTP 404)"
expect_error "StableDiffusionPipeline.from_pretrained('$TMP/no/such/folder')" "no model folder at $TMP/no/such/folder"
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {token = 'hf_bad', cache_dir = '$TMP/badtok'})" \
  "the hub refused the token (HTTP 401" "login()"
# As huggingface_hub does, a refusal falls back to a cached copy, with a note.
expect_ok "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {token = 'hf_bad'})"
case "$ERR" in *"using the cached copy of sdrepl-test/tiny-sd-b (revision 'main'): the hub refused the token"*) ;;
  *) fail "no note about the cached copy: $ERR" ;; esac
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {revision = '../x'})" \
  "revision '../x' is not a branch, tag or commit name"
# A disk too small for a file: said before a byte is written.
control linked_size/999999999999999
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/gated', {token = 'hf_good', cache_dir = '$TMP/full'})" \
  "not enough disk space for text_encoder/model.safetensors" "HF_HUB_CACHE"
control linked_size/0

# ---- a gated repo ------------------------------------------------------------------
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/gated')" \
  "sdrepl-test/gated is a gated model (HTTP 401)" "accept its conditions at $HF_ENDPOINT/sdrepl-test/gated" "login()"
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/gated', {token = 'hf_noaccess'})" \
  "this token has no access to it (HTTP 403)"
HF_TOKEN=hf_noaccess expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/gated')" "HTTP 403"
mark_log
HF_TOKEN=hf_good expect_ok "StableDiffusionPipeline.from_pretrained('sdrepl-test/gated')"
new_requests | grep -q '^HEAD /sdrepl-test/gated/resolve/.* auth=hf_good$' || fail "HF_TOKEN was not sent: $(new_requests)"
! new_requests | grep -q '^GET /blobs/.* auth=hf_' || fail "the token went to the CDN: $(new_requests)"
expect_ok "StableDiffusionPipeline.from_pretrained('sdrepl-test/gated', {token = 'hf_good', cache_dir = '$TMP/gated2'})"
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/gated', {token = false, cache_dir = '$TMP/gated3'})" "HTTP 401"

# ---- login() ---------------------------------------------------------------------------
STATUS=0
printf 'hf_good\n' | "$SDREPL" -e "login()" >"$TMP/out" 2>"$TMP/err" || STATUS=$?
[ "$STATUS" -eq 0 ] || fail "login: $(cat "$TMP/err")"
grep -q "Token is valid (permission: read)." "$TMP/out" || fail "login output: $(cat "$TMP/out")"
grep -q "Your token has been saved to $HF_HOME/token" "$TMP/out" || fail "login output: $(cat "$TMP/out")"
grep -q "Login successful" "$TMP/out" || fail "login output: $(cat "$TMP/out")"
! grep -q hf_good "$TMP/out" || fail "login printed the token"
[ "$(cat "$HF_HOME/token")" = "hf_good" ] || fail "the token file holds $(cat "$HF_HOME/token")"
[ "$(stat -c %a "$HF_HOME/token")" = 600 ] || fail "the token file is readable by others"
mark_log
expect_ok "StableDiffusionPipeline.from_pretrained('sdrepl-test/gated', {cache_dir = '$TMP/gated4'})"
new_requests | grep -q 'auth=hf_good$' || fail "the saved token was not used"
STATUS=0
printf 'hf_wrong\n' | "$SDREPL" -e "login()" >"$TMP/out" 2>"$TMP/err" || STATUS=$?
[ "$STATUS" -eq 1 ] && grep -q "login: invalid token (HTTP 401" "$TMP/err" || fail "a bad token: $(cat "$TMP/err")"
[ "$(cat "$HF_HOME/token")" = "hf_good" ] || fail "a refused token replaced the saved one"
expect_ok "login{token = 'hf_noaccess'}"
[ "$(cat "$HF_HOME/token")" = "hf_noaccess" ] || fail "login{token=} did not save"
# On a terminal the token is typed without echo (once the prompt is up: echo
# is off from then on, and what came earlier is flushed, as getpass does).
if command -v script >/dev/null && command -v timeout >/dev/null; then
  mkfifo "$TMP/tty.in"
  timeout 30 script -qc "\"$SDREPL\" -e 'login()'" /dev/null <"$TMP/tty.in" >"$TMP/tty.out" 2>&1 &
  spid=$!
  exec 3>"$TMP/tty.in"
  for _ in $(seq 400); do
    grep -q "Enter your token" "$TMP/tty.out" && break
    sleep 0.05
  done
  printf 'hf_good\r' >&3
  exec 3>&-
  wait "$spid" || fail "login on a terminal: $(cat -v "$TMP/tty.out")"
  grep -q "Enter your token (input will not be visible):" "$TMP/tty.out" || fail "no prompt: $(cat -v "$TMP/tty.out")"
  grep -q "Login successful" "$TMP/tty.out" || fail "login on a terminal: $(cat -v "$TMP/tty.out")"
  ! grep -q "hf_good" "$TMP/tty.out" || fail "the token was echoed: $(cat -v "$TMP/tty.out")"
  [ "$(cat "$HF_HOME/token")" = "hf_good" ] || fail "login on a terminal did not save the token"
fi
rm -f "$HF_HOME/token"

# ---- two processes at once ----------------------------------------------------------------
control rate/1000000
mark_log
export SDREPL_TWO=$TMP/two
"$SDREPL" -e "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {cache_dir = os.getenv('SDREPL_TWO')})" \
  >"$TMP/one.out" 2>"$TMP/one.err" </dev/null &
P1=$!
"$SDREPL" -e "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {cache_dir = os.getenv('SDREPL_TWO')})" \
  >"$TMP/two.out" 2>"$TMP/two.err" </dev/null &
P2=$!
wait $P1 || fail "the first of two processes: $(cat "$TMP/one.err")"
wait $P2 || fail "the second of two processes: $(cat "$TMP/two.err")"
control rate/0
[ "$(count_new '^GET /blobs/')" -eq 3 ] || fail "two processes fetched a blob twice: $(new_requests)"
CACHE=$TMP/two check_snapshot sdrepl-test/tiny-sd-b main $PIPE_FILES

# ---- resume after a kill; Ctrl-C --------------------------------------------------------------
UNET_SHA=$(sha256sum <"$MODEL_B/unet/diffusion_pytorch_model.safetensors" | cut -c1-64)
PART=$TMP/killed/models--sdrepl-test--tiny-sd-b/blobs/$UNET_SHA.incomplete
control rate/100000
"$SDREPL" -e "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {cache_dir = '$TMP/killed'})" \
  >/dev/null 2>&1 </dev/null &
pid=$!
for _ in $(seq 400); do
  [ -s "$PART" ] && break
  sleep 0.05
done
[ -s "$PART" ] || fail "the slow UNet download did not start"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
HAVE=$(stat -c %s "$PART")
[ ! -e "$TMP/killed/models--sdrepl-test--tiny-sd-b/blobs/$UNET_SHA" ] || fail "a killed download left a whole blob"
control rate/0
mark_log
expect_ok "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {cache_dir = '$TMP/killed'})"
new_requests | grep -q "^GET /blobs/$UNET_SHA range=bytes=[0-9]*- " || fail "no Range request to resume: $(new_requests)"
[ "$(new_requests | grep "^GET /blobs/$UNET_SHA " | sed 's/.*range=bytes=\([0-9]*\)-.*/\1/')" -ge "$HAVE" ] ||
  fail "the resume started before what the .incomplete held"
grep -q "(resumed)" "$TMP/err" || fail "the progress bar does not say it resumed: $ERR"
CACHE=$TMP/killed check_snapshot sdrepl-test/tiny-sd-b main $PIPE_FILES

control rate/100000
PART=$TMP/intr/models--sdrepl-test--tiny-sd-b/blobs/$UNET_SHA.incomplete
"$SDREPL" -e "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {cache_dir = '$TMP/intr'})" \
  >"$TMP/out" 2>"$TMP/err" </dev/null &
pid=$!
for _ in $(seq 400); do
  [ -s "$PART" ] && break
  sleep 0.05
done
[ -s "$PART" ] || fail "the slow UNet download did not start"
kill -INT "$pid"
STATUS=0
wait "$pid" || STATUS=$?
control rate/0
[ "$STATUS" -eq 1 ] || fail "after SIGINT: want exit 1, got $STATUS: $(cat "$TMP/err")"
grep -q "from_pretrained: interrupted" "$TMP/err" || fail "no 'interrupted' error: $(cat "$TMP/err")"
[ -s "$PART" ] || fail "the .incomplete was not kept after Ctrl-C"

# ---- huggingface_hub and us, both ways (needs .venv-torch) ---------------------------------------
PY=$SRC/.venv-torch/bin/python
if [ -x "$PY" ] && "$PY" -c "import huggingface_hub, diffusers" 2>/dev/null; then
  mark_log
  "$PY" "$SRC/scripts/reference/make_hub_cache.py" check --endpoint "$HF_ENDPOINT" --cache "$CACHE" \
    --repo sdrepl-test/tiny-sd-b >"$TMP/py.out" 2>&1 || fail "huggingface_hub cannot use our cache: $(cat "$TMP/py.out")"
  ! new_requests | grep -q '^GET /blobs/\|^GET /.*/resolve/' || fail "Python fetched files our cache has: $(new_requests)"
  # Python's StableDiffusionPipeline wants the safety checker too, which our cache has.
  mark_log
  "$PY" "$SRC/scripts/reference/make_hub_cache.py" check --endpoint "$HF_ENDPOINT" --cache "$CACHE" \
    --repo CompVis/stable-diffusion-v1-4 --revision fp16 >"$TMP/py.out" 2>&1 ||
    fail "huggingface_hub cannot use our cache: $(cat "$TMP/py.out")"
  ! new_requests | grep -q '^GET /blobs/\|^GET /.*/resolve/' || fail "Python fetched files our cache has: $(new_requests)"
  "$PY" "$SRC/scripts/reference/make_hub_cache.py" download --endpoint "$HF_ENDPOINT" --cache "$TMP/pyfresh" \
    --repo CompVis/stable-diffusion-v1-4 >"$TMP/py.out" 2>&1 || fail "Python's download: $(cat "$TMP/py.out")"
  mark_log
  expect_ok "StableDiffusionPipeline.from_pretrained('CompVis/stable-diffusion-v1-4', {cache_dir = '$TMP/pyfresh'})"
  [ "$(new_requests | wc -l)" -eq 1 ] || fail "a cache Python just wrote was fetched again: $(new_requests)"
else
  echo "test_hub: no .venv-torch with huggingface_hub: Python's side only from the committed fixture"
fi

# ---- without the network -------------------------------------------------------------------------
stop_server
# The server is gone: the cached snapshot is used, and a note says why.
expect_ok "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b')"
case "$ERR" in *"using the cached copy of sdrepl-test/tiny-sd-b (revision 'main'): cannot reach $HF_ENDPOINT"*) ;;
  *) fail "no note about the cached copy: $ERR" ;; esac
HF_HUB_OFFLINE=1 expect_ok 'pipe = StableDiffusionImg2ImgPipeline.from_pretrained("CompVis/stable-diffusion-v1-4",
  {revision = "fp16", torch_dtype = torch.float16})'
[ -z "$ERR" ] || fail "offline use should be quiet: $ERR"
HF_HUB_OFFLINE=1 same_images "'$MODEL_B'" "'sdrepl-test/tiny-sd-b'"
expect_ok "CLIPTokenizer.from_pretrained('sdrepl-test/tiny-sd-b', {subfolder = 'tokenizer', local_files_only = true})"
HF_HUB_OFFLINE=1 expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/never')" \
  "sdrepl-test/never (revision 'main') is not in the cache $CACHE" "HF_HUB_OFFLINE=1"
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/tiny-sd-b', {revision = 'other'})" \
  "no copy of it is in the cache $CACHE either" "cannot reach $HF_ENDPOINT"
expect_error "StableDiffusionPipeline.from_pretrained('sdrepl-test/never', {local_files_only = true})" \
  "local_files_only forbids downloading"

# A cache huggingface_hub wrote (tests/fixtures/hub_cache, by make_hub_cache.py): read as is.
cp -a "$SRC/tests/fixtures/hub_cache" "$TMP/pycache"
listing() { (cd "$TMP/pycache" && find . -printf '%p %y %s %l\n' | sort); }
BEFORE=$(listing)
HF_HUB_OFFLINE=1 HF_HUB_CACHE=$TMP/pycache same_images "'$MODEL_B'" "'sdrepl-test/tiny-sd-b'"
HF_HUB_CACHE=$TMP/pycache expect_ok "UNet2DConditionModel.from_pretrained('sdrepl-test/tiny-sd-b', {subfolder = 'unet', local_files_only = true})"
[ "$(listing)" = "$BEFORE" ] || fail "reading Python's cache changed it"

echo "test_hub: ok"
