# Notebook scripts from the command line: arguments, cells as chunks, the
# file's own line numbers in errors, stdin, -e, -i, markdown cells not run.
source "$(dirname "$0")/lib.sh"
cd "$TMP"

# run NAME ARGS...: runs sdrepl, stdout in NAME.out, stderr in NAME.err, status in $rc.
run() {
  local name=$1
  shift
  set +e
  timeout 60 "$SDREPL" "$@" >"$name.out" 2>"$name.err" </dev/null
  rc=$?
  set -e
}

# ---- a plain script: one chunk, arguments as arg and ... ------------------
cat >plain.lua <<'LUA'
print("arg0=" .. arg[0], "arg1=" .. arg[1], "arg2=" .. arg[2], "n=" .. #arg)
print("dots", ...)
local t = {}
function t.f() return 1 end
print("done")
LUA
run plain plain.lua one "two words"
[ $rc -eq 0 ] || fail "plain.lua exited $rc: $(cat plain.err)"
grep -qx $'arg0=plain.lua\targ1=one\targ2=two words\tn=2' plain.out || fail "arg: $(cat plain.out)"
grep -qx $'dots\tone\ttwo words' plain.out || fail "...: $(cat plain.out)"
grep -qx 'done' plain.out || fail "plain.lua did not finish"

# An error in a plain script names its line.
printf 'local a = 1\n\n\nerror("plain failure")\nprint("not reached")\n' >plainerr.lua
run plainerr plainerr.lua
[ $rc -ne 0 ] || fail "an error exited 0"
grep -q 'plainerr.lua:4: plain failure' plainerr.err || fail "plain error line: $(cat plainerr.err)"
grep -q 'stack traceback' plainerr.err || fail "no traceback: $(cat plainerr.err)"
! grep -q 'not reached' plainerr.out || fail "ran past the error"

# ---- cells: each a chunk, last expression shown, ';' quiet, line numbers -----
cat >cells.lua <<'LUA'
#!/usr/bin/env sdrepl
-- %% first
local hidden = "local"
shared = 40
print("cell one")
-- %% [markdown]
-- Text only.
error("a markdown cell never runs")
-- %%
shared + 2
-- %%
print("hidden is", hidden)
shared + 100;

-- %% Fails on line 17
local function f()
  error("cell failure")
end
f()
print("rest of the failing cell")
-- %%
print("after the failure")
LUA
run cells cells.lua
[ $rc -eq 1 ] || fail "a failing cell exited $rc, want 1"
grep -qx 'cell one' cells.out || fail "first cell did not run"
grep -qx '42' cells.out || fail "a cell's last expression was not shown: $(cat cells.out)"
grep -qx $'hidden is\tnil' cells.out || fail "a local reached the next cell: $(cat cells.out)"
! grep -q '140' cells.out || fail "';' did not keep the last expression quiet"
! grep -q 'markdown cell never runs' cells.err || fail "a markdown cell ran"
grep -q 'cells.lua:17: cell failure' cells.err || fail "error line in a later cell: $(cat cells.err)"
grep -q 'cells.lua:19: in' cells.err || fail "traceback lines are not the file's: $(cat cells.err)"
! grep -q 'rest of the failing cell' cells.out || fail "ran on inside the failing cell"
! grep -q 'after the failure' cells.out || fail "ran a cell after the failure"

# --keep-going runs the cells after a failing one, and still exits 1.
run keep --keep-going cells.lua
[ $rc -eq 1 ] || fail "--keep-going with a failure exited $rc"
grep -qx 'after the failure' keep.out || fail "--keep-going did not go on"

# A syntax error in a cell names the file's line, and nothing of that cell runs.
printf -- '-- %%%%\nprint("ok")\n-- %%%%\n\nprint("half")\nlocal = 3\n' >syntax.lua
run syntax syntax.lua
[ $rc -eq 1 ] || fail "syntax error exited $rc"
grep -q 'syntax.lua:6:' syntax.err || fail "syntax error line: $(cat syntax.err)"
! grep -q 'half' syntax.out || fail "part of a cell with a syntax error ran"
# A cell that ends early says so, with its line.
printf -- '-- %%%%\nlocal function g()\n  return 1\n-- %%%%\nprint(2)\n' >open.lua
run open open.lua
[ $rc -eq 1 ] || fail "an unclosed function exited $rc"
grep -q "open.lua:3: 'end' expected" open.err || fail "incomplete cell: $(cat open.err)"

# CRLF line ends: the same line numbers.
printf -- '-- %%%%\r\nprint("crlf")\r\n-- %%%%\r\n\r\nerror("crlf failure")\r\n' >crlf.lua
run crlf crlf.lua
grep -qx 'crlf' crlf.out || fail "CRLF cell did not run"
grep -q 'crlf.lua:5: crlf failure' crlf.err || fail "CRLF error line: $(cat crlf.err)"

# ---- standard input, -e, -i -----------------------------------------------
set +e
out=$(printf 'print("from stdin", 1 + 1)\n' | timeout 60 "$SDREPL" - 2>stdin.err)
rc=$?
set -e
[ $rc -eq 0 ] || fail "- exited $rc: $(cat stdin.err)"
[ "$out" = $'from stdin\t2' ] || fail "- printed '$out'"
set +e
printf -- '-- %%%%\nx = 1\n-- %%%%\nerror("from stdin")\n' | timeout 60 "$SDREPL" - 2>stdinerr.err >/dev/null
rc=$?
set -e
[ $rc -eq 1 ] || fail "a failing stdin script exited $rc"
grep -q 'stdin:4: from stdin' stdinerr.err || fail "stdin error: $(cat stdinerr.err)"

run e -e 'print(6 * 7)'
[ $rc -eq 0 ] && grep -qx '42' e.out || fail "-e: $(cat e.out e.err)"
run e2 -e 'before = "set by -e"' plain.lua x y
grep -q '^dots' e2.out || fail "-e then a script"
printf 'print(before)\n' >usebefore.lua
run e3 -e 'before = "set by -e"' usebefore.lua
grep -qx 'set by -e' e3.out || fail "-e did not run before the script: $(cat e3.out)"

run i -i plain.lua one two
[ $rc -eq 0 ] || fail "-i exited $rc: $(cat i.err)"
grep -qx 'done' i.out || fail "-i did not run the script"

# ---- files that are not there or not scripts ---------------------------------
run missing no-such-file.lua
[ $rc -ne 0 ] || fail "a missing script exited 0"
grep -q 'no-such-file.lua' missing.err || fail "a missing script is not named"
: >empty.lua
run empty empty.lua
[ $rc -eq 0 ] || fail "an empty script exited $rc"

echo "test_script: ok"
