# The prompt as a person uses it: results, multi-line input, history, completion,
# magics, Ctrl-C during a loop and at the prompt, Ctrl-D.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tmux.sh"

HIST_HOME="$TMP/state"
start_repl "XDG_STATE_HOME=$HIST_HOME" "HOME=$TMP" "SDREPL_INIT="

# An expression's value is printed; a statement prints nothing.
type_line 'x = 41'
type_line 'x + 1'
wait_for '^42$'

# _ holds the last result; a trailing ; shows nothing but still runs.
type_line '_ * 2'
wait_for '^84$'
clear_screen
type_line 'y = 5; y * 1000;'
type_line 'print("after", y)'
wait_for '^after +5$'
screen | grep -q '^5000$' && fail "a trailing ; still printed the value"

# A table is pretty-printed.
type_line 't = {1, 2, name = "sd", nested = {a = true}}'
type_line 't'
wait_for '^\{1, 2, name = "sd", nested = \{a = true\}\}$'

# Multi-line: the prompt continues while the chunk is incomplete.
type_line 'function double(a)'
wait_for '^>>( |$)'
type_line '  return a * 2'
type_line 'end'
type_line 'double(21)'
wait_for '^42$'

# Tab completes methods after ':' and fields after '.'.
type_line 'obj = setmetatable({}, {__index = {enable_attention_slicing = function(self) return "sliced" end}})'
clear_screen
tmx send-keys -t "$SESSION" -l 'obj:enable_att'
keys Tab
sleep 0.3
tmx send-keys -t "$SESSION" -l '()'
keys Enter
wait_for '^sliced$'
clear_screen
tmx send-keys -t "$SESSION" -l 'string.upp'
keys Tab
sleep 0.3
tmx send-keys -t "$SESSION" -l '("ok")'
keys Enter
wait_for '^OK$'

# ?name and help(f) print the signature and the description.
type_line '?display'
wait_for '^display\(value\)$'

# %time prints the wall time and still shows the value.
type_line '%time 6 * 7'
wait_for '^Wall time: '
wait_for '^42$'

# Ctrl-C inside an endless loop: an error, and the session goes on with its variables.
type_line 'while true do end'
sleep 0.5
keys C-c
wait_for 'interrupted' 5
type_line 'x'
wait_for '^41$'

# Ctrl-C at the prompt clears the line being typed.
clear_screen
tmx send-keys -t "$SESSION" -l 'error("this line must never run")'
keys C-c
sleep 0.2
type_line 'print("clean")'
wait_for '^clean$'
screen | grep -q 'this line must never run' && screen | grep -q 'stdin:1: this line must never run' \
  && fail "Ctrl-C at the prompt did not clear the line"

# A runtime error is reported and the session goes on.
type_line 'nil_value.field = 1'
wait_for "attempt to index a nil value \\(global 'nil_value'\\)"
type_line 'x'
wait_for '^41$'

# Up recalls the previous entry.
clear_screen
type_line 'print("recalled " .. x)'
wait_for '^recalled 41$'
clear_screen
keys Up
keys Enter
wait_for '^recalled 41$'

# Ctrl-D leaves and saves the history, which the next session reads.
keys C-d
wait_for '^SDREPL-EXITED-0$'
[ -s "$HIST_HOME/sdrepl/history" ] || fail "no history file at $HIST_HOME/sdrepl/history"
grep -q 'print("recalled " .. x)' "$HIST_HOME/sdrepl/history" || fail "history lacks the last entry"
# The second session starts before the first is killed: killing a server's last
# session makes it exit, and a client connecting meanwhile fails.
first=$SESSION
SESSION=sdrepl-again
start_repl "XDG_STATE_HOME=$HIST_HOME" "HOME=$TMP" "SDREPL_INIT="
tmx kill-session -t "$first"
type_line 'x = 7'
clear_screen
keys Up Up
keys Enter
wait_for '^recalled 7$'
echo "repl: all checks passed"
