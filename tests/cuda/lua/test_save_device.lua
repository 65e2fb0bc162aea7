-- save_pretrained of a pipeline on "cuda": its weights are read back from the device (a host
-- read of device memory faults on the emulated device), so the folder is the one the CPU
-- pipeline writes, byte for byte: float32 as its source folder, float16 as the CPU's float16
-- save; and one model alone from the device.
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests/models/"
local base = os.tmpname()
os.remove(base)

local read = check.read_file

local weights = {"unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model",
                 "text_encoder/model"}
local function same(a, b, suffix, what)
  for _, w in ipairs(weights) do
    local x, y = read(a .. "/" .. w .. suffix), read(b .. "/" .. w .. suffix)
    check.truthy(x and x == y, string.format("%s: %s%s", what, w, suffix))
  end
  check.truthy(read(a .. "/unet/config.json") == read(b .. "/unet/config.json"), what .. ": config")
end

local src = root .. "tiny-sd-a"
local gpu = StableDiffusionPipeline.from_pretrained(src):to("cuda")
check.truthy(tostring(gpu.device):find("cuda", 1, true), "the pipeline is on the device")
gpu:save_pretrained(base .. "-f32")
same(base .. "-f32", src, ".safetensors", "float32 from the device")

local half = StableDiffusionPipeline.from_pretrained(src, {torch_dtype = torch.float16})
half:save_pretrained(base .. "-cpu16", {variant = "fp16"})
local gpu16 = StableDiffusionPipeline.from_pretrained(src, {torch_dtype = torch.float16}):to("cuda")
gpu16:save_pretrained(base .. "-gpu16", {variant = "fp16"})
same(base .. "-gpu16", base .. "-cpu16", ".fp16.safetensors", "float16 from the device")

gpu.unet:save_pretrained(base .. "-unet")
check.truthy(read(base .. "-unet/diffusion_pytorch_model.safetensors") ==
             read(src .. "/unet/diffusion_pytorch_model.safetensors"), "pipe.unet from the device")

os.execute("rm -rf '" .. base .. "'-*")
print("save_pretrained on the device: the CPU's files")
