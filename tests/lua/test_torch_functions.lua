-- The torch functions and Tensor methods a diffusers notebook meets beyond the pipeline
-- (bindings/tensor_shape.c, bindings/tensor_math.c, bindings/torch.c): values against
-- torch 1.13 (tests/reference/torch_functions, made by
-- scripts/reference/make_torch_function_cases.py), exact values where they are obvious,
-- and errors that name what is wrong and leave the session working. Dimensions and
-- indices are 1-based here, so torch's dim=0 is 1 (and argmax answers 1-based).
--
-- Where a GPU is there (sdrepl_device's emulated one, or a real one) the value checks run
-- again on tensors moved to "cuda", compared on the CPU.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/reference/torch_functions/"
local function ref(name) return torch.load_npy(root .. name .. ".npy") end

-- got and want: tensors; same shape and dtype, values within tol
local function close(got, want, tol, what)
  check.eq(table.concat(got.shape, "x"), table.concat(want.shape, "x"), what .. ": shape")
  check.eq(tostring(got.dtype), tostring(want.dtype), what .. ": dtype")
  local g, w = got:cpu():flatten():double():tolist(), want:cpu():flatten():double():tolist()
  local d = 0
  for i = 1, #g do
    local e = math.abs(g[i] - w[i])
    if not (e <= d) then d = e end -- NaN counts
  end
  check.truthy(d <= tol, string.format("%s: max abs difference %g > %g", what, d, tol))
end

local function shape(t) return table.concat(t.shape, "x") end

local function value_checks(dev)
  local tag = " (" .. dev .. ")"
  local a, b, w, c = ref("in_a"):to(dev), ref("in_b"):to(dev), ref("in_w"):to(dev), ref("in_c"):to(dev)

  -- stack: dim 1 is torch's 0; negative dims count from the end of the result
  close(torch.stack({a, a * 2}, 1), ref("stack_0"), 0, "stack dim 1" .. tag)
  close(torch.stack({a, a * 2}), ref("stack_0"), 0, "stack default dim" .. tag)
  close(torch.stack({a, a * 2, a * 3}, 3), ref("stack_2"), 0, "stack dim 3" .. tag)
  close(torch.stack({a, a * 2}, -1), ref("stack_m1"), 0, "stack dim -1" .. tag)
  check.eq(shape(torch.stack({a[1][1][1], a[1][1][2]})), "2", "stack of 0-d tensors" .. tag)

  -- lerp: number weights (both of torch's formulas) and a tensor weight, broadcast end
  close(torch.lerp(a, b, 0.3), ref("lerp_03"), 1e-6, "lerp 0.3" .. tag)
  close(a:lerp(b, 0.7), ref("lerp_07"), 1e-6, "lerp 0.7" .. tag)
  close(a:lerp(b, w), ref("lerp_w"), 1e-6, "lerp tensor weight" .. tag)
  close(a:lerp(b, 0), a, 0, "lerp 0 is start" .. tag)
  close(a:lerp(b:expand(2, 3, 4), 1), b:expand(2, 3, 4), 0, "lerp 1 is end" .. tag)
  close(a:half():lerp(b:half(), 0.3), ref("lerp_03"):half(), 2e-3, "lerp float16" .. tag)

  -- shapes
  close(a:transpose(1, 3), ref("transpose_0_2"), 0, "transpose" .. tag)
  close(torch.transpose(a, -1, 1), ref("transpose_0_2"), 0, "torch.transpose" .. tag)
  close(a:flatten(2), ref("flatten_1"), 0, "flatten(2)" .. tag)
  check.eq(shape(a:flatten()), "24", "flatten()" .. tag)
  check.eq(shape(a:flatten(1, 2)), "6x4", "flatten(1, 2)" .. tag)
  close(c:expand(2, 3, 5), ref("expand_c"), 0, "expand" .. tag)
  close(c:expand({2, -1, 5}), ref("expand_c"), 0, "expand with -1" .. tag)
  close(b["repeat"](b, 2, 1, 2), ref("repeat_b"), 0, "repeat" .. tag)
  close(b:tile({2, 1, 2}), ref("repeat_b"), 0, "tile" .. tag)
  check.eq(shape(b:tile(2)), "3x8", "tile with fewer sizes" .. tag)
  check.eq(shape(a:unsqueeze(1)), "1x2x3x4", "unsqueeze(1)" .. tag)
  check.eq(shape(a:unsqueeze(-1)), "2x3x4x1", "unsqueeze(-1)" .. tag)
  check.eq(shape(a:unsqueeze(3)), "2x3x1x4", "unsqueeze(3)" .. tag)
  check.eq(shape(a:unsqueeze(1):unsqueeze(1):squeeze()), "2x3x4", "squeeze()" .. tag)
  check.eq(shape(c:squeeze(2)), "3", "squeeze(2)" .. tag)
  check.eq(shape(c:squeeze(1)), "3x1", "squeeze of a dimension not 1 keeps it" .. tag)
  close(a:unsqueeze(2):squeeze(2), a, 0, "unsqueeze then squeeze" .. tag)

  -- maths on the host and on the backend
  close(a:pow(2), ref("pow_2"), 1e-6, "pow(2)" .. tag)
  close(a ^ 2, ref("pow_2"), 1e-6, "a ^ 2" .. tag)
  close(a:abs():pow(b:abs()), ref("pow_abs_b"), 1e-5, "pow(tensor)" .. tag)
  close(torch.pow(2, a), ref("pow_2_a"), 1e-5, "torch.pow(2, a)" .. tag)
  close(a:square(), ref("pow_2"), 1e-6, "square" .. tag)
  close(torch.cos(a), ref("cos_a"), 1e-6, "cos" .. tag)
  close(a:sin(), ref("sin_a"), 1e-6, "sin" .. tag)
  close(a:norm(), ref("norm_a"), 1e-5, "norm" .. tag)
  close(a:norm(1), ref("norm_1"), 1e-4, "norm(1)" .. tag)
  close(torch.norm(a, math.huge), ref("norm_inf"), 0, "norm(inf)" .. tag)
  close(a:argmax(), ref("argmax_a"), 0, "argmax()" .. tag)
  close(a:argmax(2), ref("argmax_a_1"), 0, "argmax(2)" .. tag)
  close(torch.argmax(a, -1, true), ref("argmax_a_m1_keep"), 0, "argmax(-1, keepdim)" .. tag)
  local cond = ref("cond_a"):to(dev)
  close(torch.where(cond, a, b), ref("where_a_b"), 0, "where" .. tag)
  close(torch.where(cond, a, 0.0), ref("where_a_0"), 0, "where with a number" .. tag)

  -- the operators as methods equal the operators
  close(a:add(b), a + b, 0, "add" .. tag)
  close(a:sub(2), a - 2, 0, "sub" .. tag)
  close(a:mul(b), a * b, 0, "mul" .. tag)
  close(torch.div(a, 3), a / 3, 0, "torch.div" .. tag)
  close(torch.sqrt(a:abs()), a:abs():sqrt(), 0, "torch.sqrt" .. tag)
  close(torch.exp(a), a:exp(), 0, "torch.exp" .. tag)
  close(torch.clamp(a, -0.5, 0.5), a:clamp(-0.5, 0.5), 0, "torch.clamp" .. tag)

  -- *_like: shape, dtype and device of the tensor
  local z = torch.zeros_like(a:half())
  check.eq(shape(z), "2x3x4", "zeros_like shape" .. tag)
  check.eq(z.dtype, torch.float16, "zeros_like dtype" .. tag)
  check.eq(z.device, a.device, "zeros_like device" .. tag)
  check.eq(torch.ones_like(a):sum():item(), 24.0, "ones_like" .. tag)
  check.eq(torch.full_like(a, 2.5):mean():item(), 2.5, "full_like" .. tag)
  check.eq(torch.zeros_like(a, {dtype = torch.int64}).dtype, torch.int64, "zeros_like dtype option" .. tag)

  -- no autograd: the same values
  check.eq(a:contiguous(), a, "contiguous is the tensor itself" .. tag)
  close(a:detach(), a, 0, "detach" .. tag)
  check.eq(a:double().dtype, torch.float64, "double" .. tag)
  check.eq(a:int().dtype, torch.int32, "int" .. tag)
  check.eq(a:type(), dev == "cpu" and "torch.FloatTensor" or "torch.cuda.FloatTensor", "type()" .. tag)
  check.eq(a:type(torch.float16).dtype, torch.float16, "type(dtype)" .. tag)
end

value_checks("cpu")

-- ranges: values as torch, int64 for integers and float32 otherwise
close(torch.linspace(0, 1, 7), ref("linspace_0_1_7"), 1e-7, "linspace(0, 1, 7)")
close(torch.linspace(-3, 5, 10), ref("linspace_m3_5_10"), 1e-6, "linspace(-3, 5, 10)")
close(torch.linspace(1000, 0.001, 50), ref("linspace_1000_0001_50"), 1e-4, "linspace(1000, 0.001, 50)")
close(torch.linspace(0, 1, 11, {dtype = torch.float64}), ref("linspace_f64"), 1e-15, "linspace float64")
check.eq(torch.linspace(3, 4, 1):item(), 3.0, "linspace with one step")
check.eq(torch.linspace(3, 4, 0):numel(), 0, "linspace with no steps")
close(torch.arange(10), ref("arange_10"), 0, "arange(10)")
close(torch.arange(0.5, 3, 0.3), ref("arange_05_3_03"), 1e-7, "arange(0.5, 3, 0.3)")
close(torch.arange(10, 0, -3), ref("arange_10_0_m3"), 0, "arange(10, 0, -3)")
check.eq(torch.arange(4, {dtype = torch.float32}).dtype, torch.float32, "arange dtype option")
check.eq(torch.arange(4.0).dtype, torch.float32, "arange(4.0) is float32")
check.eq(torch.arange(2, 2):numel(), 0, "empty arange")

-- random *_like: the draws of torch.randn with the same generator
local a = ref("in_a")
close(torch.randn_like(a, {generator = torch.Generator():manual_seed(42)}), ref("randn_like_42"), 0, "randn_like")
close(torch.randn_like(torch.zeros(3, 4, {dtype = torch.float16}), {generator = torch.Generator():manual_seed(7)}),
      ref("randn_like_f16_7"), 0, "randn_like float16")
close(torch.rand_like(a, {generator = torch.Generator():manual_seed(5)}), ref("rand_like_5"), 0, "rand_like")
torch.manual_seed(42)
close(torch.randn_like(a), ref("randn_like_42"), 0, "randn_like with the default generator")

-- numpy(): the tensor itself on the CPU
check.eq(a:numpy(), a, "numpy() on the CPU")

-- no_grad: a value to close, and a function form returning the function's results
do
  local _ <close> = torch.no_grad()
  check.eq(a:sum():item(), a:sum():item(), "inside no_grad")
end
local x, y = torch.no_grad(function(p, q) return p + 1, q end, 1, "q")
check.eq(x, 2, "no_grad(fn) result 1")
check.eq(y, "q", "no_grad(fn) result 2")
check.raises("torch.no_grad: argument 1", function() torch.no_grad(3) end)

-- row assignment, torch's t[i] = value (rows count from 1): in place, views share it
do
  local t = torch.zeros({3, 4})
  t[2] = torch.ones({4})
  t[-1] = 7
  local r = t[1]
  r[3] = 5 -- a row is a view: the element changes in t
  close(t, torch.tensor({{0, 0, 5, 0}, {1, 1, 1, 1}, {7, 7, 7, 7}}):float(), 0, "rows assigned")
  local x = torch.zeros({2, 1, 3})
  x[2] = torch.tensor({1, 2, 3}) -- leading sizes of 1 aside
  close(x[2], torch.tensor({{1, 2, 3}}):float(), 0, "a row of shape (1, 3)")
  local i = torch.zeros({2, 2}, {dtype = torch.long})
  i[1] = torch.tensor({1.7, -2.2}) -- converted to the tensor's dtype, truncated as copy_ does
  check.eq(table.concat(i:tolist()[1], " "), "1 -2", "float values into int64 rows")
  local h = torch.zeros({2, 3}):half()
  h[2] = torch.tensor({0.1, 0.2, 0.3})
  check.eq(h.dtype, torch.float16, "the tensor keeps its dtype")
  check.raises("a row of 4 values cannot take a tensor of shape (5)", function() t[2] = torch.ones({5}) end)
  check.raises("only rows can be assigned", function() t.x = 1 end)
  check.raises("out of range", function() t[4] = 1 end)
  check.raises("a row takes a number or a tensor", function() t[1] = "a" end)
end

-- errors: clear, naming what is wrong, and the session goes on
check.raises("dimension 5 out of range for a 3-d tensor", function() a:transpose(1, 5) end)
check.raises("dimensions count from 1", function() a:unsqueeze(0) end)
check.raises("dimension 5 out of range for a 4-d tensor", function() a:unsqueeze(5) end)
check.raises("Tensor:squeeze: dimension -4 out of range", function() a:squeeze(-4) end)
check.raises("start_dim (3) cannot come after end_dim (2)", function() a:flatten(3, 2) end)
check.raises("stack expects each tensor to be equal size, but got (2, 3, 4) at entry 1 and (3, 4) at entry 2",
             function() torch.stack({a, ref("in_b")}) end)
check.raises("torch.stack: argument 1 (tensors): a non-empty list", function() torch.stack({}) end)
check.raises("entry 2 is a number, not a Tensor", function() torch.stack({a, 3}) end)
check.raises("entry 2 is float16 and entry 1 float32", function() torch.stack({a, a:half()}) end)
check.raises("torch.stack: dimension 5 out of range", function() torch.stack({a, a}, 5) end)
check.raises("must match the existing size (3) at non-singleton dimension 1",
             function() ref("in_b"):expand(2, 4) end)
check.raises("the number of sizes cannot be smaller", function() a:expand(3, 4) end)
check.raises("repeats cannot be negative", function() a:tile(1, -1, 1) end)
check.raises("the number of repeat dims cannot be smaller", function() a["repeat"](a, 2) end)
check.raises("do not broadcast", function() a:lerp(torch.zeros(5), 0.5) end)
check.raises("expected dtype float32 for `end` but got dtype float16", function() a:lerp(a:half(), 0.5) end)
check.raises("Tensor:lerp: argument 2 (weight)", function() a:lerp(a, "x") end)
check.raises("Tensor:mul: shapes (2, 3, 4) and (5) do not broadcast", function() a:mul(torch.zeros(5)) end)
check.raises("Tensor:add: argument 1 (other)", function() a:add("x") end)
check.raises("do not broadcast", function() a:pow(torch.zeros(5)) end)
check.raises("Integers to negative integer powers are not allowed", function() torch.arange(3):pow(-1) end)
check.raises("input dtype should be either floating point", function() torch.arange(3):norm() end)
check.raises("torch.where: shapes", function() torch.where(torch.zeros(2), a, 0) end)
check.raises("number of steps must be non-negative", function() torch.linspace(0, 1, -1) end)
check.raises("step must be nonzero", function() torch.arange(0, 1, 0) end)
check.raises("upper bound and larger bound inconsistent with step sign", function() torch.arange(0, 5, -1) end)
check.raises("torch.arange: argument 1", function() torch.arange() end)
check.raises("unexpected option 'generator'", function() torch.zeros_like(a, {generator = 1}) end)
check.raises("Tensor:type: argument 1 (dtype)", function() a:type("nonsense") end)
check.eq(a:clone():sum():item(), a:sum():item(), "the session still works after the errors")

-- where there is a GPU (sdrepl_device's emulated one): the same values on "cuda"
if torch.cuda.is_available() then
  value_checks("cuda")
  local g = a:cuda()
  check.raises("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu()", function() g:numpy() end)
  check.raises("Expected a 'cuda' device type for generator but found 'cpu'",
               function() torch.randn_like(g, {generator = torch.Generator():manual_seed(1)}) end)
  -- the draws of torch.randn on the same device with the same generator
  local r1 = torch.randn_like(g, {generator = torch.Generator("cuda"):manual_seed(3)})
  local r2 = torch.randn(g.shape, {generator = torch.Generator("cuda"):manual_seed(3), device = "cuda"})
  close(r1, r2:cpu(), 0, "randn_like on cuda")
  check.raises("expected all tensors on the same device", function() torch.stack({a, g}) end)
  check.raises("expected all tensors on the same device", function() torch.where(g, a, a) end)
  check.eq(torch.linspace(0, 1, 5, {device = "cuda"}).device, "cuda:0", "linspace on cuda")
  check.eq(torch.arange(5, {device = "cuda"}).device, "cuda:0", "arange on cuda")
  local gz = torch.zeros({2, 3}, {device = "cuda"})
  gz[1] = torch.ones({3}):cuda()
  gz[2] = 4
  close(gz:cpu(), torch.tensor({{1, 1, 1}, {4, 4, 4}}):float(), 0, "rows assigned on cuda")
  local gi = torch.arange(4, {device = "cuda"}):reshape({2, 2})
  gi[2] = 9
  check.eq(table.concat(gi:cpu():tolist()[2], " "), "9 9", "int64 rows assigned on cuda")
  check.raises("the value is on cpu, the tensor on cuda", function() gz[1] = torch.ones({3}) end)
end

print("torch functions: all checks passed")
