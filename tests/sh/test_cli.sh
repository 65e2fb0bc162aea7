# The command line: options, -e order, the startup file, exit statuses.
source "$(dirname "$0")/lib.sh"

out=$("$SDREPL" --version) || fail "--version exited non-zero"
[[ $out == sdrepl\ * ]] || fail "--version printed '$out'"
"$SDREPL" --help | grep -q -- '--export' || fail "--help does not list --export"

set +e
"$SDREPL" --no-such-option >/dev/null 2>"$TMP/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "an unknown option exited $rc, want 2"
grep -q "unknown option '--no-such-option'" "$TMP/err" || fail "unknown option not named"

# -e chunks run in order, in one state; an expression's value is printed.
out=$("$SDREPL" -e 'a = 20' -e 'a + 22')
[ "$out" = "42" ] || fail "-e printed '$out'"

# An error in -e: message on stderr, exit 1.
set +e
"$SDREPL" -e 'error("broken")' 2>"$TMP/err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "-e error exited $rc"
grep -q 'broken' "$TMP/err" || fail "-e error message missing"

# A mistyped global gets Python's "Did you mean"; a diffusers class sdrepl lacks gets the
# list of those it has; a name near nothing gets Lua's message alone.
hint() {
  set +e
  "$SDREPL" -e "$1" 2>"$TMP/err"
  set -e
  head -n 1 "$TMP/err"
}
[[ $(hint 'StableDifusionPipeline.from_pretrained("x")') == *"(global 'StableDifusionPipeline'). Did you mean: 'StableDiffusionPipeline'?" ]] ||
  fail "no suggestion for a misspelt pipeline: $(cat "$TMP/err")"
[[ $(hint 'imag_grid({}, 1, 1)') == *"Did you mean: 'image_grid'?" ]] || fail "no suggestion for image_grid"
[[ $(hint 'CMStochasticIterativeScheduler.from_config({})') == *"sdrepl has no CMStochasticIterativeScheduler; its schedulers: DDIMInverseScheduler, DDIMScheduler,"* ]] ||
  fail "no list of schedulers: $(cat "$TMP/err")"
[[ $(hint 'x = qqqq()') == *"attempt to call a nil value (global 'qqqq')" ]] || fail "qqqq: $(cat "$TMP/err")"
grep -q "Did you mean" "$TMP/err" && fail "a far name got a suggestion: $(cat "$TMP/err")"
grep -q "stack traceback" "$TMP/err" || fail "the traceback is gone"
# a global that exists, used the wrong way, is no typo and no missing class
[[ $(hint 'image_grid.rows = 2') == *"attempt to index a function value (global 'image_grid')" ]] ||
  fail "image_grid misuse: $(cat "$TMP/err")"
[[ $(hint 'MyPipeline = {}; MyPipeline()') == *"attempt to call a table value (global 'MyPipeline')" ]] ||
  fail "MyPipeline(): $(cat "$TMP/err")"
[[ $(hint 'AutoPipelineForText2Image()') == *"is designed to be instantiated using the \`AutoPipelineForText2Image.from_pretrained("* ]] ||
  fail "AutoPipelineForText2Image(): $(cat "$TMP/err")"

# The startup file runs first: $SDREPL_INIT, else ~/.sdreplrc.lua.
echo 'from_init = "init ran"' >"$TMP/init.lua"
out=$(SDREPL_INIT="$TMP/init.lua" "$SDREPL" -e 'from_init')
[ "$out" = "init ran" ] || fail "SDREPL_INIT was not run: '$out'"
mkdir -p "$TMP/home"
echo 'from_rc = 7' >"$TMP/home/.sdreplrc.lua"
out=$(env -u SDREPL_INIT HOME="$TMP/home" "$SDREPL" -e 'from_rc')
[ "$out" = "7" ] || fail "~/.sdreplrc.lua was not run: '$out'"
# A broken startup file is reported and the session goes on.
echo 'this is not lua' >"$TMP/bad.lua"
out=$(SDREPL_INIT="$TMP/bad.lua" "$SDREPL" -e '1 + 1' 2>"$TMP/err")
[ "$out" = "2" ] || fail "a broken startup file stopped the run"
grep -q 'startup file' "$TMP/err" || fail "a broken startup file was not reported"

# A display that does not answer: each picture says so, twice more tries are made, and
# the session goes on (no silent fallback to a window no one sees).
out=$(env -u SDREPL_NO_WINDOW -u WAYLAND_DISPLAY -u SDL_VIDEODRIVER DISPLAY=:9999 SDREPL_INLINE=off \
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  "$SDREPL" -e 'img = Image.new("RGB", {8, 8}) for i = 1, 4 do display(img) end print("alive")' 2>&1)
grep -q '^alive$' <<<"$out" || fail "a display that does not answer ended the session: $out"
[ "$(grep -c 'no preview window on DISPLAY=:9999.*the next picture tries again' <<<"$out")" -eq 2 ] ||
  fail "the window's tries were not reported: $out"
[ "$(grep -c 'no preview window' <<<"$out")" -eq 3 ] || fail "tries after giving up: $out"

# help() output comes from the binding specs.
"$SDREPL" -e 'help(help)' | grep -q '^help(what=nil)$' || fail "help(help) signature"
echo "cli: all checks passed"
