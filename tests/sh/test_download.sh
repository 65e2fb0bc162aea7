# tests/sh/test_download.sh — download() and FastDownload() against a local HTTP server
# (tests/tools/http_server.py) that redirects, fails, drops connections and ignores Range.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 not found"
command -v timeout >/dev/null || skip "timeout not found"

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap 'stop_server; rm -rf "$TMP"' EXIT

WWW=$TMP/www
mkdir -p "$WWW"
head -c 300000 /dev/urandom >"$WWW/big.bin"
for f in drop flaky short grow slow norange; do cp "$WWW/big.bin" "$WWW/$f.bin"; done
head -c 20480 /dev/urandom >"$WWW/small.bin"
printf 'hello\n' >"$WWW/hello.txt"
printf 'version 1\n' >"$WWW/forced.txt"
export XDG_CACHE_HOME=$TMP/cache
# The server is local: a proxy from the environment must not stand in between.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
CACHE=$XDG_CACHE_HOME/sdrepl/downloads
LOG=$TMP/requests.log

start_server() {
  python3 "$SDREPL_SOURCE_DIR/tests/tools/http_server.py" --root "$WWW" --log "$LOG" \
    --lifetime 200 >"$TMP/port" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    [ -s "$TMP/port" ] && break
    sleep 0.1
  done
  PORT=$(head -n1 "$TMP/port")
  [ -n "$PORT" ] || fail "the test server did not start"
  BASE=http://127.0.0.1:$PORT
}

# run CODE: runs sdrepl -e CODE (quietly: a trailing ';' shows no result);
# sets OUT, ERR and STATUS, never fails itself.
run() {
  STATUS=0
  "$SDREPL" -e "$1;" >"$TMP/out" 2>"$TMP/err" || STATUS=$?
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}
expect_ok() {
  run "$1"
  [ "$STATUS" -eq 0 ] || fail "$1: exit $STATUS, stderr: $ERR"
}
expect_error() { # CODE TEXT
  run "$1"
  [ "$STATUS" -eq 1 ] || fail "$1: want exit 1, got $STATUS (stdout: $OUT)"
  case "$ERR" in *"$2"*) ;; *) fail "$1: want an error with '$2', got: $ERR" ;; esac
}
requests_for() { grep -c "^GET $1 " "$LOG" || true; }
no_partial() { # NAME: no whole file of that name may be in the cache
  [ -z "$(find "$CACHE" -name "$1" 2>/dev/null)" ] || fail "a file $1 is in the cache after a failure"
}

start_server

# ---- a fresh download, then the cached copy -------------------------------
expect_ok "io.write(download('$BASE/files/big.bin'))"
P=$OUT
case "$P" in "$CACHE"/????????????????/big.bin) ;; *) fail "unexpected cache path $P" ;; esac
cmp -s "$P" "$WWW/big.bin" || fail "downloaded content differs"
[ ! -e "$P.incomplete" ] || fail "an .incomplete file is left after a whole download"
[ "$(requests_for /files/big.bin)" -eq 1 ] || fail "want 1 request for big.bin"
# Not a terminal: lines at tenths, the last at 100%, and never a carriage return.
grep -q 'big.bin: 100%|██████████| 293k/293k' "$TMP/err" || fail "no final progress line: $ERR"
! grep -q $'\r' "$TMP/err" || fail "a carriage return in non-terminal progress output"
expect_ok "download('$BASE/slow/small.bin')" # 20 KiB in about a second: most tenths show
# (a busy machine may read several chunks at once and pass a tenth, so not all ten).
[ "$(grep -c '^small.bin:  [ 1-9]0%|' "$TMP/err")" -ge 5 ] || fail "want a line per tenth: $ERR"
grep -q '^small.bin: 100%|██████████| 20.0k/20.0k \[' "$TMP/err" || fail "no 100% line: $ERR"
[ "$(grep -c '100%' "$TMP/err")" -eq 1 ] || fail "the final line is printed twice: $ERR"

expect_ok "io.write(FastDownload():download('$BASE/files/big.bin'))"
[ "$OUT" = "$P" ] || fail "FastDownload gave another path: $OUT"
[ "$(requests_for /files/big.bin)" -eq 1 ] || fail "the cached copy was fetched again"

# On a terminal: redrawn in place with \r, the final state drawn, then a newline.
if command -v script >/dev/null; then
  cp "$WWW/small.bin" "$WWW/tty.bin"
  script -qc "stty cols 70; \"$SDREPL\" -e \"download('$BASE/slow/tty.bin'); print('after')\"" \
    /dev/null >"$TMP/tty.out" </dev/null || fail "the download on a terminal failed: $(cat "$TMP/tty.out")"
  python3 - "$TMP/tty.out" <<'PY' || fail "terminal progress output: $(cat -v "$TMP/tty.out")"
import re, sys
s = open(sys.argv[1], "rb").read().decode()
final = re.search(r"\rtty\.bin: 100%\|█+\| 20\.0k/20\.0k \[[^]]*\]\r?\n", s)
assert final, "no final state followed by a newline"
assert s.count("\r") >= 3, "not redrawn in place"
assert "\n" not in s[:final.start()], "a newline before the bar finished"
assert all(len(line) <= 70 for line in re.split(r"[\r\n]", s)), "wider than the terminal"
PY
fi

# ---- force refetches ------------------------------------------------------
expect_ok "io.write(download('$BASE/files/forced.txt'))"
F=$OUT
printf 'version 2\n' >"$WWW/forced.txt"
expect_ok "io.write(download('$BASE/files/forced.txt'))"
[ "$(cat "$F")" = "version 1" ] || fail "the cached copy changed without force"
expect_ok "io.write(FastDownload():download('$BASE/files/forced.txt', {force = true}))"
[ "$OUT" = "$F" ] || fail "force gave another path"
[ "$(cat "$F")" = "version 2" ] || fail "force did not fetch again"
[ "$(requests_for /files/forced.txt)" -eq 2 ] || fail "want 2 requests for forced.txt"

# ---- base, redirects, names -----------------------------------------------
expect_ok "io.write(FastDownload{base = '$TMP/fd'}:download('$BASE/redirect/hello.txt'))"
case "$OUT" in "$TMP"/fd/????????????????/hello.txt) ;; *) fail "base not used: $OUT" ;; esac
[ "$(cat "$OUT")" = "hello" ] || fail "redirected content differs"
expect_ok "io.write(download('$BASE/dir/'))"
case "$OUT" in */index) ;; *) fail "a URL without a file name should give 'index': $OUT" ;; esac
expect_ok "io.write(download('$BASE/chunked/hello.txt?x=1'))"
[ "$(cat "$OUT")" = "hello" ] || fail "chunked content differs"

# ---- HTTP errors ------------------------------------------------------------
expect_error "download('$BASE/files/missing.bin')" "download: HTTP 404 (Not Found) for $BASE/files/missing.bin"
no_partial missing.bin
[ -z "$(find "$CACHE" -name 'missing.bin*')" ] || fail "a 404 left a file behind"
expect_error "FastDownload():download('$BASE/error')" "HTTP 500 (Internal Server Error) for $BASE/error"

# ---- resume -------------------------------------------------------------------
expect_error "download('$BASE/drop/drop.bin')" "download: cannot fetch $BASE/drop/drop.bin"
no_partial drop.bin
PART=$(find "$CACHE" -name drop.bin.incomplete)
[ -n "$PART" ] || fail "no .incomplete after a dropped connection"
[ "$(stat -c %s "$PART")" -eq 150000 ] || fail "the .incomplete should hold half the file"
expect_ok "io.write(download('$BASE/drop/drop.bin'))"
grep -q "^GET /drop/drop.bin range=bytes=150000-$" "$LOG" || fail "the resume sent no Range: $(cat "$LOG")"
cmp -s "$OUT" "$WWW/drop.bin" || fail "resumed content differs"
[ ! -e "$PART" ] || fail "the .incomplete is left after the resume"

# A server that ignores Range: the 200 body replaces what was there.
expect_error "download('$BASE/flaky/flaky.bin')" "cannot fetch"
no_partial flaky.bin
expect_ok "io.write(download('$BASE/flaky/flaky.bin'))"
grep -q "^GET /flaky/flaky.bin range=bytes=150000-$" "$LOG" || fail "no Range sent to flaky"
cmp -s "$OUT" "$WWW/flaky.bin" || fail "content differs after a server ignored Range"

# 416 when the .incomplete already holds the whole file: sizes prove it, no refetch.
expect_error "download('$BASE/short/short.bin')" "cannot fetch"
no_partial short.bin
expect_ok "io.write(download('$BASE/short/short.bin'))"
cmp -s "$OUT" "$WWW/short.bin" || fail "content differs after a 416 for a whole file"
[ "$(requests_for /short/short.bin)" -eq 2 ] || fail "a whole .incomplete was fetched again"

# 416 when the .incomplete is longer than the file: start over.
expect_error "download('$BASE/grow/grow.bin')" "cannot fetch"
no_partial grow.bin
expect_ok "io.write(download('$BASE/grow/grow.bin'))"
grep -q "^GET /grow/grow.bin range=bytes=450000-$" "$LOG" || fail "no Range sent to grow"
[ "$(requests_for /grow/grow.bin)" -eq 3 ] || fail "want a fresh request after a bad 416"
cmp -s "$OUT" "$WWW/grow.bin" || fail "content differs after starting over"

# ---- file:// ------------------------------------------------------------------
expect_ok "io.write(download('file://$WWW/hello.txt'))"
[ "$OUT" = "$WWW/hello.txt" ] || fail "file:// should give the file itself: $OUT"
expect_error "download('file://$WWW/nothing.txt')" "No such file or directory"

# ---- Ctrl-C ---------------------------------------------------------------------
start=$SECONDS
"$SDREPL" -e "download('$BASE/slow/slow.bin')" >"$TMP/out" 2>"$TMP/err" &
pid=$!
for _ in $(seq 100); do
  PART=$(find "$CACHE" -name slow.bin.incomplete)
  [ -n "$PART" ] && [ "$(stat -c %s "$PART")" -gt 0 ] && break
  sleep 0.1
done
[ -n "$PART" ] || fail "the slow download did not start"
kill -INT "$pid"
# sdrepl itself gets the one SIGINT a terminal's Ctrl-C sends (no timeout(1) in between,
# which relays it twice). A CI run once saw it print its error and then not end for a
# minute (never reproduced): a process still there after 20 s is shown with its threads'
# stacks, then killed.
for _ in $(seq 200); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  stacks="(no gdb)"
  command -v gdb >/dev/null &&
    stacks=$(timeout 60 gdb -p "$pid" -batch -ex "thread apply all bt" 2>&1 | grep -E '^(#|Thread)' | head -n 80)
  kill -9 "$pid" 2>/dev/null || true
  fail "sdrepl had not ended 20 s after SIGINT; stderr: $(cat "$TMP/err")
threads:
$stacks"
fi
STATUS=0
wait "$pid" || STATUS=$?
[ "$STATUS" -eq 1 ] || fail "after SIGINT: want exit 1, got $STATUS: $(cat "$TMP/err")"
# Ctrl-C during a download: the binding's own message, not the hook's.
grep -q "^sdrepl: download: interrupted" "$TMP/err" || fail "no download: interrupted error: $(cat "$TMP/err")"
[ $((SECONDS - start)) -lt 10 ] || fail "the interrupt took too long"
[ -s "$PART" ] || fail "the .incomplete was not kept for resuming"
no_partial slow.bin

# ---- load_image (diffusers.utils.load_image): fetched afresh, upright, RGB, nothing kept ----
cp "$SDREPL_SOURCE_DIR/tests/fixtures/exif/o6.png" "$WWW/photo.png"
before=$(requests_for /redirect/photo.png)
expect_ok "local i = load_image('$BASE/redirect/photo.png'); io.write(i.mode, ' ', i.size[1], 'x', i.size[2])"
[ "$OUT" = "RGB 3x5" ] || fail "load_image over http: $OUT"
[ "$(requests_for /redirect/photo.png)" -eq $((before + 1)) ] || fail "load_image did not fetch"
expect_ok "load_image('$BASE/redirect/photo.png')"
[ "$(requests_for /redirect/photo.png)" -eq $((before + 2)) ] || fail "load_image used a cached copy"
[ -z "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'sdrepl-load-image-*' -newer "$WWW/photo.png" 2>/dev/null)" ] ||
  fail "load_image left its temporary folder"
expect_error "load_image('$BASE/files/missing.png')" "load_image: "

# ---- argument errors ----------------------------------------------------------------
expect_error "download(1)" "download: argument 1 (url): string expected, got number"
expect_error "FastDownload():download({})" "FastDownload:download: argument 1 (url): string expected, got table"
expect_error "FastDownload(5)" "FastDownload: argument 1 (opts): table expected, got number"
expect_error "download('$BASE/files/hello.txt', {force = 'yes'})" "option 'force': boolean expected, got string"
expect_error "FastDownload{bse = '/x'}" "unexpected option 'bse'"
expect_error "download('ftp://example.com/x')" "unsupported URL"

# ---- the cache without a network ---------------------------------------------------
stop_server
expect_ok "io.write(download('$BASE/files/big.bin'))"
[ "$OUT" = "$P" ] || fail "the cached copy was not used with the server down"
expect_error "download('$BASE/files/big.bin', {force = true})" "download: cannot fetch $BASE/files/big.bin"
case "$ERR" in *"onnect"*) ;; *) fail "connection refused should say so: $ERR" ;; esac
cmp -s "$P" "$WWW/big.bin" || fail "a failed forced fetch damaged the cached copy"

echo "test_download: ok"
