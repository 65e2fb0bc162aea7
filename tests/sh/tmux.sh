# tests/sh/tmux.sh — drive an interactive sdrepl inside tmux, as a person would type.
# Source after lib.sh. Each test gets its own tmux server socket.
command -v tmux >/dev/null || skip "tmux is not installed"
TMUX_SOCK="$TMP/tmux.sock"
SESSION=sdrepl
tmx() { tmux -S "$TMUX_SOCK" "$@"; }
# The REPL may still be writing its history when the server goes: wait, then remove.
trap 'tmx kill-server 2>/dev/null || true; sleep 0.3; rm -rf "$TMP" 2>/dev/null || true' EXIT

# start_repl [env assignments...]: starts sdrepl in a 120x40 pane and waits for the prompt.
start_repl() {
  tmx new-session -d -s "$SESSION" -x 120 -y 40 \
    "env $* $SDREPL; echo SDREPL-EXITED-\$?; sleep 30"
  wait_for '^>( |$)' 10
}

screen() { tmx capture-pane -p -t "$SESSION" -S -200; }

# wait_for REGEX [seconds]: until the pane shows a line matching REGEX.
wait_for() {
  local pattern=$1 limit=${2:-10} i=0
  while [ $i -lt $((limit * 10)) ]; do
    if screen | grep -qE -- "$pattern"; then return 0; fi
    sleep 0.1
    i=$((i + 1))
  done
  echo "---- screen ----" >&2
  screen >&2
  fail "timed out waiting for /$pattern/"
}

# type_line TEXT: types TEXT and Enter. tmux reads a final ';' as its command
# separator, so that one is sent escaped.
type_line() {
  local text=$1
  [[ $text == *';' ]] && text="${text%;}\\;"
  tmx send-keys -t "$SESSION" -l -- "$text"
  tmx send-keys -t "$SESSION" Enter
}
keys() { tmx send-keys -t "$SESSION" "$@"; }
clear_screen() { tmx send-keys -t "$SESSION" C-l; tmx clear-history -t "$SESSION"; sleep 0.2; }
