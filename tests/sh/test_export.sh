# --export: a notebook script's record as HTML, Markdown and ipynb; failures recorded.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 is needed to read the records back"
EXAMPLE="$SDREPL_SOURCE_DIR/examples/images.lua"
cd "$TMP"

# export OUT SCRIPT [options...]: status in $rc, stdout and stderr in OUT.out, OUT.err.
export_run() {
  local out=$1 script=$2
  shift 2
  set +e
  timeout 120 "$SDREPL" "$@" --export "$out" "$script" >"$out.out" 2>"$out.err" </dev/null
  rc=$?
  set -e
}

# ---- the example, three ways ------------------------------------------------
for fmt in html md ipynb; do
  export_run "images.$fmt" "$EXAMPLE"
  [ $rc -eq 0 ] || fail "exporting images.$fmt exited $rc: $(cat images.$fmt.err)"
  [ -s "images.$fmt" ] || fail "images.$fmt was not written"
  grep -q "wrote images.$fmt" "images.$fmt.err" || fail "no word of where images.$fmt went"
  # The run still shows what it prints.
  grep -q '^small:' "images.$fmt.out" || fail "printed text was not shown during the export"
done
ls -a | grep -q '^\.images\.' && fail "a temporary file was left behind"

python3 - "$EXAMPLE" <<'PY'
import base64, html, json, os, re, sys

def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)

# The example's code cells, as the splitter cuts them (markers, then blank lines trimmed).
cells, cur = [], None
for line in open(sys.argv[1], encoding="utf-8").read().split("\n"):
    if line.startswith("-- %%"):
        cur = {"markdown": "[markdown]" in line, "lines": []}
        cells.append(cur)
    elif cur is not None:
        cur["lines"].append(line)
code = [[l for l in c["lines"] if l.strip()] for c in cells if not c["markdown"]]
if len(code) != 4:
    fail("expected 4 code cells in the example, found %d" % len(code))
PNG = b"\x89PNG\r\n\x1a\n"

# HTML: every code line escaped, In [n] prompts, 4 embedded PNGs, rendered Markdown.
page = open("images.html", encoding="utf-8").read()
for lines in code:
    for l in lines:
        if html.escape(l, quote=True).replace("&#x27;", "&#39;") not in page:
            fail("images.html lacks the code line %r" % l)
for n in range(1, 5):
    if "In&nbsp;[%d]:" % n not in page:
        fail("images.html lacks In [%d]" % n)
urls = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
if len(urls) != 4:
    fail("images.html embeds %d images, want 4" % len(urls))
for u in urls:
    if not base64.b64decode(u).startswith(PNG):
        fail("an embedded image is not a PNG")
if "<h1>Images in sdrepl</h1>" not in page or "<strong>PIL</strong>" not in page:
    fail("the markdown cell was not rendered")
if "<li>sizes are <code>{width, height}</code>, as PIL&#39;s tuples</li>" not in page:
    fail("the markdown list was not rendered")
if "small:\t&lt;Image 32x32 RGB&gt;" not in page:
    fail("images.html lacks the printed text")

# Markdown: fenced code, 4 links to PNG files that exist beside it.
md = open("images.md", encoding="utf-8").read()
for lines in code:
    for l in lines:
        if l not in md:
            fail("images.md lacks the code line %r" % l)
if md.count("```lua\n") != 4:
    fail("images.md has %d lua fences, want 4" % md.count("```lua\n"))
links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
if len(links) != 4:
    fail("images.md links %d images, want 4: %r" % (len(links), links))
for link in links:
    if not link.startswith("images_files/"):
        fail("image link %r is not in images_files/" % link)
    with open(link, "rb") as f:
        if not f.read().startswith(PNG):
            fail("%s is not a PNG" % link)
if sorted(os.listdir("images_files")) != sorted(os.path.basename(l) for l in links):
    fail("images_files holds other files: %r" % os.listdir("images_files"))
if "# Images in sdrepl" not in md:
    fail("images.md lacks the markdown cell")

# ipynb: nbformat 4, the kernel, cells and outputs in order.
nb = json.load(open("images.ipynb", encoding="utf-8"))
if nb["nbformat"] != 4 or nb["nbformat_minor"] < 4:
    fail("nbformat %r.%r" % (nb["nbformat"], nb["nbformat_minor"]))
ks = nb["metadata"]["kernelspec"]
if ks != {"name": "sdrepl", "display_name": "Lua (sdrepl)", "language": "lua"}:
    fail("kernelspec %r" % ks)
li = nb["metadata"]["language_info"]
if li["name"] != "lua" or li["file_extension"] != ".lua":
    fail("language_info %r" % li)
types = [c["cell_type"] for c in nb["cells"]]
if types != ["markdown", "code", "code", "code", "code"]:
    fail("cell types %r" % types)
ids = [c["id"] for c in nb["cells"]]
if len(set(ids)) != len(ids) or not all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids):
    fail("cell ids %r" % ids)
codecells = nb["cells"][1:]
if [c["execution_count"] for c in codecells] != [1, 2, 3, 4]:
    fail("execution counts %r" % [c["execution_count"] for c in codecells])
for c, lines in zip(codecells, code):
    src = "".join(c["source"])
    for l in lines:
        if l not in src:
            fail("ipynb cell lacks %r" % l)
if codecells[0]["metadata"].get("title") != "Three solid colors":
    fail("cell title %r" % codecells[0]["metadata"])
kinds = [[o["output_type"] for o in c["outputs"]] for c in codecells]
want = [["stream", "display_data"], ["stream", "display_data", "display_data"], [], ["display_data"]]
if kinds != want:
    fail("outputs %r, want %r" % (kinds, want))
shown = [o for c in codecells for o in c["outputs"] if o["output_type"] == "display_data"]
sizes = [(o["metadata"]["image/png"]["width"], o["metadata"]["image/png"]["height"]) for o in shown]
if sizes != [(64, 64), (32, 32), (128, 32), (192, 64)]:
    fail("image sizes %r" % sizes)
for o in shown:
    if not base64.b64decode(o["data"]["image/png"]).startswith(PNG):
        fail("an ipynb image is not a PNG")
    if not "".join(o["data"]["text/plain"]).startswith("<Image "):
        fail("text/plain %r" % o["data"]["text/plain"])
s = codecells[1]["outputs"][0]
if s["name"] != "stdout" or "".join(s["text"]) != "small:\t<Image 32x32 RGB>\n":
    fail("stream output %r" % s)
PY

# ---- a failing cell: recorded with its traceback, the run stopped ------------------
cat >fail.lua <<'LUA'
-- %% Before
print("before <the> failure")
io.stderr:write("to stderr\n")
-- %% Breaks
local function check(x)
  if x > 1 then error("x is too big: " .. x) end
end
check(5)
print("rest")
-- %% After
print("after the failure")
-- %% [markdown]
-- The end.
LUA
for fmt in html ipynb md; do
  export_run "fail.$fmt" fail.lua
  [ $rc -eq 1 ] || fail "a failing cell exited $rc ($fmt)"
  [ -s "fail.$fmt" ] || fail "no record written after a failure ($fmt)"
  grep -q 'fail.lua:6: x is too big: 5' "fail.$fmt.err" || fail "error not printed: $(cat fail.$fmt.err)"
  grep -q 'to stderr' "fail.$fmt.err" || fail "a cell's stderr did not reach stderr"
done
grep -q 'class="row output error"' fail.html || fail "fail.html has no error box"
grep -q 'fail.lua:6: x is too big: 5' fail.html || fail "fail.html lacks the error"
grep -q 'fail.lua:8: in main chunk' fail.html || fail "fail.html lacks the traceback"
grep -q 'In&nbsp;\[&nbsp;\]:' fail.html || fail "the cell not run is not shown as such"
grep -q 'print(&quot;after the failure&quot;)' fail.html || fail "the code of the cell not run is missing"
grep -q '<pre>after the failure' fail.html && fail "a cell after the failure ran"
grep -q 'before &lt;the&gt; failure' fail.html || fail "fail.html lacks the first cell's output"
grep -q 'fail.lua:6: x is too big: 5' fail.md || fail "fail.md lacks the error"

python3 - <<'PY'
import json, sys
def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)
nb = json.load(open("fail.ipynb", encoding="utf-8"))
c = nb["cells"]
if [x["cell_type"] for x in c] != ["code", "code", "code", "markdown"]:
    fail("cells %r" % [x["cell_type"] for x in c])
if [x.get("execution_count") for x in c[:3]] != [1, 2, None]:
    fail("execution counts %r" % [x.get("execution_count") for x in c[:3]])
text = "".join(c[0]["outputs"][0]["text"])
if "before <the> failure\n" not in text or "to stderr\n" not in text:
    fail("first cell's output %r" % text)
err = [o for o in c[1]["outputs"] if o["output_type"] == "error"]
if len(err) != 1:
    fail("outputs of the failing cell %r" % c[1]["outputs"])
e = err[0]
if e["ename"] != "LuaError" or e["evalue"] != "fail.lua:6: x is too big: 5":
    fail("ename/evalue %r %r" % (e["ename"], e["evalue"]))
if not isinstance(e["traceback"], list) or "stack traceback:" not in e["traceback"]:
    fail("traceback %r" % e["traceback"])
if not any("fail.lua:8: in main chunk" in l for l in e["traceback"]):
    fail("traceback lacks the cell's line %r" % e["traceback"])
if c[2]["outputs"] != []:
    fail("the cell after the failure has outputs %r" % c[2]["outputs"])
PY

# --keep-going: the rest runs and is recorded; the exit status still says it failed.
export_run keep.ipynb fail.lua --keep-going
[ $rc -eq 1 ] || fail "--keep-going with a failure exited $rc"
python3 - <<'PY'
import json, sys
nb = json.load(open("keep.ipynb", encoding="utf-8"))
c = nb["cells"]
counts = [x.get("execution_count") for x in c[:3]]
out = "".join("".join(o.get("text", [])) for o in c[2]["outputs"])
if counts != [1, 2, 3] or out != "after the failure\n":
    print("FAIL: --keep-going record: counts %r, last output %r" % (counts, out), file=sys.stderr)
    sys.exit(1)
PY

# Ctrl-C stops the whole run, --keep-going or not, and the record is still written.
printf -- '-- %%%%\nprint("start")\nwhile true do end\n-- %%%%\nprint("next cell")\n' >loop.lua
timeout 60 "$SDREPL" --keep-going --export loop.ipynb loop.lua >loop.out 2>loop.err &
pid=$!
for _ in $(seq 100); do grep -q start loop.out && break; sleep 0.1; done
sleep 0.3
kill -INT $pid
set +e
wait $pid
rc=$?
set -e
[ $rc -eq 1 ] || fail "an interrupted export exited $rc"
grep -q 'interrupted' loop.err || fail "no word of the interrupt: $(cat loop.err)"
grep -q 'next cell' loop.out && fail "--keep-going ran on after Ctrl-C"
python3 -c '
import json, sys
c = json.load(open("loop.ipynb"))["cells"]
kinds = [[o["output_type"] for o in x["outputs"]] for x in c]
if kinds != [["stream", "error"], []] or c[1]["execution_count"] is not None:
    sys.exit("FAIL: interrupted record %r" % kinds)
' || fail "interrupted record"

# ---- big output, formats, no record without --export ------------------------------
printf -- '-- %%%%\nfor i = 1, 200000 do print("line " .. i) end\n-- %%%%\nprint("next")\n' >big.lua
export_run big.ipynb big.lua
[ $rc -eq 0 ] || fail "a cell printing 200000 lines exited $rc"
python3 -c '
import json, sys
nb = json.load(open("big.ipynb"))
t = "".join(nb["cells"][0]["outputs"][0]["text"])
if t.count("\n") != 200000 or not t.endswith("line 200000\n"):
    sys.exit("FAIL: big output not captured whole")
if "".join(nb["cells"][1]["outputs"][0]["text"]) != "next\n":
    sys.exit("FAIL: the cell after the big one")
' || fail "big output"
[ "$(wc -l <big.ipynb.out)" -eq 200001 ] || fail "big output was not all shown"

export_run out.txt fail.lua
[ $rc -ne 0 ] || fail "--export out.txt exited 0"
grep -q '.html, .md or .ipynb' out.txt.err || fail "unknown format not explained: $(cat out.txt.err)"
grep -q 'before' out.txt.out && fail "the script ran although its record could not be written"
[ -e out.txt ] && fail "out.txt was written"

# ---- a pipeline's list of images, left as a cell's value, is shown -------------------
printf -- '-- %%%%\npipe = StableDiffusionPipeline.from_pretrained("%s")\npipe:set_progress_bar_config{disable = true}\n-- %%%%\nimages = pipe{prompt = "a", num_images_per_prompt = 2, num_inference_steps = 2}.images\nimages\n' \
  "$SDREPL_SOURCE_DIR/tests/models/tiny-sd-a" >list.lua
SDREPL_NO_WINDOW=1 export_run list.ipynb list.lua
[ $rc -eq 0 ] || fail "the images list script exited $rc: $(cat list.ipynb.err)"
python3 -c '
import json, sys
nb = json.load(open("list.ipynb"))
shown = [o for o in nb["cells"][1]["outputs"] if o["output_type"] == "display_data"]
if len(shown) != 2:
    sys.exit("FAIL: %d of the 2 images shown" % len(shown))
' || fail "a pipeline's images list"

# ---- img:show(), PIL's call, shows the picture as a cell's value is shown ----------------
printf -- '-- %%%%\nlocal img = Image.new("RGB", {8, 4})\nimg:show()\nprint("after")\n' >show.lua
SDREPL_NO_WINDOW=1 export_run show.ipynb show.lua
[ $rc -eq 0 ] || fail "the show script exited $rc: $(cat show.ipynb.err)"
python3 -c '
import json, sys
outs = json.load(open("show.ipynb"))["cells"][0]["outputs"]
kinds = [o["output_type"] for o in outs]
if kinds[:1] != ["display_data"] or "image/png" not in outs[0]["data"]:
    sys.exit("FAIL: img:show() showed %r" % kinds)
' || fail "img:show()"

mkdir plain && cd plain
"$SDREPL" ../fail.lua >/dev/null 2>&1 && fail "fail.lua exited 0"
[ -z "$(ls -A)" ] || fail "a run without --export wrote files: $(ls -A)"

echo "test_export: ok"
