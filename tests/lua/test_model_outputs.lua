-- What the models and schedulers return, as transformers and diffusers return it:
--  * CLIPTextModel from a whole CLIPModel checkpoint (tests/models/tiny-clip-full: model_type
--    "clip", a text_config leaning on CLIPTextConfig's defaults, vision weights beside), as
--    the fast.ai notebook loads openai/clip-vit-large-patch14, and pooler_output, against
--    transformers (tests/reference/clip_model, scripts/reference/make_clip_model_cases.py);
--    tolerance max |ours - theirs| / max |theirs| below 1e-5, as test_text_encoder.lua;
--  * outputs indexable as Python's tuples: out[1] is unet(...)[0], text_encoder(...)[0],
--    scheduler.step(...)[0], vae.decode(...)[0], pipe(...)[0].
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local TOL = 1e-5

local rel_err = check.rel_err

local cases = {
  {"full_legacy", "tiny-clip-full", nil, 2},
  {"sd_a", "tiny-sd-a", "text_encoder"},
  {"sd_b", "tiny-sd-b", "text_encoder", 1513},
}
for _, c in ipairs(cases) do
  local name, folder, sub, eos = c[1], c[2], c[3], c[4]
  local function npy(k) return torch.load_npy(root .. "/reference/clip_model/" .. name .. "_" .. k .. ".npy") end
  local te = CLIPTextModel.from_pretrained(root .. "/models/" .. folder, {subfolder = sub})
  if eos then check.eq(te.config.eos_token_id, eos, name .. " eos_token_id") end
  local out = te(npy("ids"))
  local e1 = rel_err(out.last_hidden_state, npy("last_hidden_state"))
  local e2 = rel_err(out.pooler_output, npy("pooler_output"))
  check.truthy(e1 < TOL, name .. " last_hidden_state relative error " .. e1)
  check.truthy(e2 < TOL, name .. " pooler_output relative error " .. e2)
  -- transformers' tuple: (last_hidden_state, pooler_output)
  check.truthy(rawequal(out[1], out.last_hidden_state), name .. " out[1]")
  check.truthy(rawequal(out[2], out.pooler_output), name .. " out[2]")
  check.eq(out[3], nil, name .. " no third item without hidden states")
  print(string.format("%s: last_hidden_state %.2e, pooler_output %.2e", name, e1, e2))
end

-- CLIPTextConfig's defaults fill what the text_config leaves out.
local full = CLIPTextModel.from_pretrained(root .. "/models/tiny-clip-full")
check.eq(full.config.max_position_embeddings, 77, "default max_position_embeddings")
check.eq(full.config.hidden_act, "quick_gelu", "default hidden_act")
check.eq(full.config.pad_token_id, 1, "default pad_token_id")
local with_hidden = full(torch.tensor({{0, 5, 2}}), {output_hidden_states = true})
check.truthy(rawequal(with_hidden[3], with_hidden.hidden_states), "out[3] is hidden_states")

-- A CLIP config without its text part says so.
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir .. " && cp " .. root .. "/models/tiny-clip-full/model.safetensors " .. dir)
local f = assert(io.open(dir .. "/config.json", "w"))
f:write('{"model_type": "clip", "vision_config": {}}')
f:close()
check.raises('without a "text_config" object', function() CLIPTextModel.from_pretrained(dir) end)
os.execute("rm -rf " .. dir)

-- Outputs as tuples.
local pipe = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a")
pipe:set_progress_bar_config{disable = true}
local ctx = pipe.text_encoder(torch.tensor({{1, 2, 3}}))[1]
local x = torch.randn({1, 4, 8, 8}, {generator = torch.manual_seed(0)})
local u = pipe.unet(x, 10, {encoder_hidden_states = ctx, return_dict = false})
check.truthy(rawequal(u[1], u.sample), "unet(...)[1] is the sample")
check.eq(u[2], nil, "UNet2DConditionOutput has one field")
local d = pipe.vae:decode(x)
check.truthy(rawequal(d[1], d.sample), "vae:decode(...)[1]")
local enc = pipe.vae:encode(torch.zeros({1, 3, 16, 16}))
check.truthy(rawequal(enc[1], enc.latent_dist), "vae:encode(...)[1]")

-- scheduler.step: prev_sample first; pred_original_sample where diffusers gives it
for _, cls in ipairs {"DDIMScheduler", "EulerDiscreteScheduler", "PNDMScheduler"} do
  local s = _G[cls].from_config(pipe.scheduler.config)
  s:set_timesteps(5)
  local t = s.timesteps[1]
  local st = s:step(u[1], t, s:scale_model_input(x, t), {return_dict = false})
  check.truthy(rawequal(st[1], st.prev_sample), cls .. " step(...)[1]")
  check.truthy(rawequal(st[2], st.pred_original_sample), cls .. " step(...)[2]")
  check.eq(st.pred_original_sample == nil, cls == "PNDMScheduler", cls .. " pred_original_sample")
end

local images = pipe{prompt = "a cat", num_inference_steps = 2, output_type = "np"}
check.truthy(rawequal(images[1], images.images), "pipe(...)[1] is images")

-- diffusers' keywords on the parts, as its pipelines call them
local dz = pipe.vae:decode(x, {return_dict = false})[1]
check.eq((dz - d.sample):abs():max():item(), 0, "vae:decode(z, {return_dict = false})[1]")
check.truthy(pipe.vae:encode(torch.zeros({1, 3, 16, 16}), {return_dict = false})[1].mean ~= nil,
             "vae:encode(x, {return_dict = false})[1] is latent_dist")
local s1 = enc.latent_dist:sample(torch.manual_seed(3))
local s2 = enc.latent_dist:sample{generator = torch.manual_seed(3)}
check.eq((s1 - s2):abs():max():item(), 0, "sample(g) and sample{generator = g}")
check.raises("unexpected option 'return_dicts'",
             function() pipe.vae:decode(x, {return_dicts = false}) end)
-- .dtype: torch_dtype, else float32 (what diffusers loads into)
check.eq(tostring(pipe.unet.dtype), "torch.float32", "unet.dtype")
check.eq(tostring(pipe.dtype), "torch.float32", "pipe.dtype")
local half = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-b",
                                                     {torch_dtype = torch.float16})
check.eq(tostring(half.text_encoder.dtype), "torch.float16", "text_encoder.dtype")
check.eq(tostring(half.vae.dtype), "torch.float16", "vae.dtype")
-- Tensor:to with torch's keywords, or a device and a dtype
check.eq(tostring(x:to{dtype = torch.float16}.dtype), "torch.float16", "to{dtype = ...}")
check.eq(tostring(x:to("cpu", torch.bfloat16).dtype), "torch.bfloat16", "to(device, dtype)")
check.eq(tostring(x:to{device = "cpu"}.device), "cpu", "to{device = ...}")
check.truthy(rawequal(x:to{dtype = torch.float32}, x), "unchanged: the same tensor")
check.raises("{device =", function() x:to{dtypes = torch.float16} end)
