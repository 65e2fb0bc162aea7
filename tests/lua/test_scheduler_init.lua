-- Schedulers made by calling their class, as diffusers' X(**kwargs) (the fast.ai deep dive:
-- LMSDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
-- num_train_timesteps=1000)). Expected values printed by diffusers 0.27.2 for the same calls:
-- the config (the arguments given, the defaults listed in _use_default_values), the
-- timesteps and sigmas of set_timesteps(5), init_noise_sigma (float32 values, compared
-- at 1e-6 relative).
local check = require "check"

local function near(got, want, what)
  check.truthy(math.abs(got - want) <= 1e-6 * math.max(1, math.abs(want)),
               string.format("%s: %.9g, diffusers %.9g", what, got, want))
end

local function as_set(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[v] = true end
  return s
end

local function same_config(got, want, what)
  for k, v in pairs(want) do
    if k == "_use_default_values" then
      local a, b = as_set(got[k]), as_set(v)
      for name in pairs(b) do check.truthy(a[name], what .. ": " .. name .. " defaulted") end
      for name in pairs(a) do check.truthy(b[name], what .. ": " .. name .. " not defaulted") end
    elseif type(v) == "number" then
      near(got[k], v, what .. "." .. k)
    else
      check.eq(got[k], v, what .. "." .. k)
    end
  end
  for k in pairs(got) do check.truthy(want[k] ~= nil or got[k] == nil, what .. ": extra key " .. k) end
end

local lms = LMSDiscreteScheduler{beta_start = 0.00085, beta_end = 0.012,
                                 beta_schedule = "scaled_linear", num_train_timesteps = 1000}
same_config(lms.config, {
  num_train_timesteps = 1000, beta_start = 0.00085, beta_end = 0.012, beta_schedule = "scaled_linear",
  use_karras_sigmas = false, prediction_type = "epsilon", timestep_spacing = "linspace",
  steps_offset = 0,
  _use_default_values = {"steps_offset", "prediction_type", "use_karras_sigmas", "timestep_spacing",
                         "trained_betas"},
}, "LMSDiscreteScheduler")
lms:set_timesteps(5)
local ts = lms.timesteps:tolist()
for i, v in ipairs {999.0, 749.25, 499.5, 249.75, 0.0} do near(ts[i], v, "timesteps[" .. i .. "]") end
local sig = lms.sigmas:tolist()
for i, v in ipairs {14.614645004272461, 4.086089611053467, 1.6155833005905151, 0.6951509714126587,
                    0.029167532920837402, 0.0} do
  near(sig[i], v, "sigmas[" .. i .. "]")
end
near(lms.init_noise_sigma, 14.614645004272461, "init_noise_sigma")

-- Defaults only; then another class from its config, with a keyword argument.
local ddpm = DDPMScheduler{num_train_timesteps = 1000}
same_config(ddpm.config, {
  num_train_timesteps = 1000, beta_start = 0.0001, beta_end = 0.02, beta_schedule = "linear",
  variance_type = "fixed_small", clip_sample = true, prediction_type = "epsilon",
  thresholding = false, dynamic_thresholding_ratio = 0.995, clip_sample_range = 1.0,
  sample_max_value = 1.0, timestep_spacing = "leading", steps_offset = 0,
  rescale_betas_zero_snr = false,
  _use_default_values = {"clip_sample", "thresholding", "clip_sample_range", "sample_max_value",
                         "steps_offset", "timestep_spacing", "prediction_type", "beta_schedule",
                         "beta_start", "beta_end", "rescale_betas_zero_snr", "variance_type",
                         "dynamic_thresholding_ratio", "trained_betas"},
}, "DDPMScheduler")
check.eq(tostring(DDPMScheduler()), "<DDPMScheduler>", "no arguments at all")
local euler = EulerDiscreteScheduler.from_config(lms.config, {timestep_spacing = "trailing"})
euler:set_timesteps(4)
local et = euler.timesteps:tolist()
for i, v in ipairs {999.0, 749.0, 499.0, 249.0} do near(et[i], v, "euler timesteps[" .. i .. "]") end

-- Mistakes say what diffusers says, and the session goes on.
check.raises("LMSDiscreteScheduler.__init__() got an unexpected keyword argument 'foo'",
             function() LMSDiscreteScheduler{foo = 1} end)
check.raises('beta_schedule "bogus" is not supported',
             function() LMSDiscreteScheduler{beta_schedule = "bogus"} end)
check.raises("a table of keyword arguments expected, got number", function() DDIMScheduler(5) end)
check.raises("keyword arguments are named", function() DDIMScheduler{1000} end)

-- set_timesteps with diffusers' keyword, and both ways at once refused as diffusers does
local k = DDIMScheduler()
k:set_timesteps{num_inference_steps = 4}
check.eq(#k.timesteps:tolist(), 4, "set_timesteps{num_inference_steps = 4}")
check.raises("Can only pass one of `num_inference_steps` or `custom_timesteps`.",
             function() DDPMScheduler():set_timesteps{num_inference_steps = 3, timesteps = {10, 5}} end)

-- LCMScheduler (LCM-LoRA's): its own schedule, compatibles of its own, and `denoised` as the
-- step's second output (diffusers' LCMSchedulerOutput)
local lcm = LCMScheduler.from_config(DDIMScheduler().config)
lcm:set_timesteps(4)
local lt = lcm.timesteps:tolist()
for i, v in ipairs {999, 759, 499, 259} do check.eq(lt[i], v, "lcm timesteps[" .. i .. "]") end
check.eq(#lcm.compatibles, 1, "LCMScheduler's compatibles: itself")
local x = torch.ones(1, 4, 2, 2)
local out = lcm:step(x * 0.1, 999, x, {generator = torch.Generator():manual_seed(0)})
check.truthy(out.denoised and out[2] == out.denoised, "LCMSchedulerOutput.denoised")
check.raises("is smaller than `num_inference_steps`: 51. Make sure to either reduce " ..
             "`num_inference_steps` to a value smaller than 50 or increase `strength` to a value " ..
             "higher than 1.02.", function() LCMScheduler():set_timesteps(51) end)
check.raises("`original_steps x strength`: 4 x 1.0 is smaller than `num_inference_steps`: 8",
             function() LCMScheduler{original_inference_steps = 4}:set_timesteps(8) end)
