# A pipeline at the prompt: Ctrl-C in the middle of many steps stops it between
# steps, the session and the pipeline go on; bad folders are clear errors.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tmux.sh"

MODEL="$SDREPL_SOURCE_DIR/tests/models/tiny-sd-a"
start_repl "HOME=$TMP" "SDREPL_INIT=" "SDREPL_NO_WINDOW=1"
type_line "pipe = StableDiffusionPipeline.from_pretrained(\"$MODEL\")"
type_line 'torch.manual_seed(0); r = pipe{prompt = "a", num_inference_steps = 999, output_type = "latent"}'
sleep 2
keys C-c
wait_for 'StableDiffusionPipeline:__call: interrupted' 20
type_line 'print("r is", r)'
wait_for '^r is +nil$'
# The same pipeline still works, and Tab completes its methods.
type_line 'torch.manual_seed(0); out = pipe{prompt = "a", num_inference_steps = 2, output_type = "np"}'
type_line 'print("shape", table.concat(out.images.shape, "x"))'
wait_for '^shape +1x64x64x3$' 20
clear_screen
tmx send-keys -t "$SESSION" -l 'pipe:enable_vae_sl'
keys Tab
sleep 0.3
tmx send-keys -t "$SESSION" -l '()'
keys Enter
type_line 'print("completed ok")'
wait_for '^completed ok$'
screen | grep -q "attempt to call" && fail "Tab did not complete pipe:enable_vae_slicing"

# A folder without a component says which.
mkdir -p "$TMP/broken"
cp -r "$MODEL"/. "$TMP/broken/"
rm -rf "$TMP/broken/unet"
type_line "StableDiffusionPipeline.from_pretrained(\"$TMP/broken\")"
wait_for 'unet.*(config.json|No such file|cannot open)' 10
type_line 'print("alive")'
wait_for '^alive$'
echo "pipeline at the prompt: all checks passed"
