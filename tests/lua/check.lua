-- tests/lua/check.lua — assertions for Lua tests: any failure raises, so sdrepl exits non-zero.
local check = {}

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function check.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: got %s, want %s", what or "value", show(got), show(want)), 2)
  end
end

function check.near(got, want, tol, what)
  if math.abs(got - want) > tol then
    error(string.format("%s: got %s, want %s within %s", what or "value", show(got), show(want), tol), 2)
  end
end

-- Calls fn and checks that it raises an error whose message contains `text` (plain).
function check.raises(text, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error containing " .. show(text) .. ", got none", 2) end
  err = tostring(err)
  if not err:find(text, 1, true) then
    error("expected an error containing " .. show(text) .. ", got " .. show(err), 2)
  end
  return err
end

-- max |got - want| / max |want| of two tensors of one shape (a NaN fails).
function check.rel_err(got, want, what)
  what = what and what .. " " or ""
  check.eq(#got.shape, #want.shape, what .. "rank")
  for i = 1, #want.shape do check.eq(got.shape[i], want.shape[i], what .. "shape[" .. i .. "]") end
  local diff = (got - want):abs():max():item()
  check.truthy(diff == diff, what .. "has no NaN")
  return diff / want:abs():max():item()
end

-- A file's whole contents (bytes), or nil when it cannot be opened.
function check.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function check.truthy(v, what)
  if not v then error((what or "value") .. " is " .. show(v), 2) end
end

-- A reference case's call arguments: base, then the case's own (given), its seed (or seeds)
-- made torch.Generators as diffusers' script made them, then extra over all.
function check.case_args(base, given, extra)
  local args = {}
  for k, v in pairs(base or {}) do args[k] = v end
  for k, v in pairs(given) do args[k] = v end
  if args.seeds then
    args.generator = {}
    for i, s in ipairs(args.seeds) do args.generator[i] = torch.Generator():manual_seed(s) end
  elseif args.seed then
    args.generator = torch.Generator():manual_seed(args.seed)
  end
  args.seeds, args.seed = nil, nil
  for k, v in pairs(extra or {}) do args[k] = v end
  return args
end

-- A fresh temporary directory, removed at exit by the OS's tmp cleaning.
function check.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

return check
