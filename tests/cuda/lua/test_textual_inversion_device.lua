-- A textual inversion loaded into a pipeline on "cuda" (tests/fixtures/textual_inversion):
-- the text encoder's new rows on the device give the CPU's output, they stay when the
-- pipeline moves back, and the load moves the CUDA generator as torch's
-- resize_token_embeddings does there (one normal draw of the new table's size).
local check = require "check"

local root = (os.getenv("SDREPL_SOURCE_DIR") or ".") .. "/tests"
local fix = root .. "/fixtures/textual_inversion/"
local cpu = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a")
local gpu = StableDiffusionPipeline.from_pretrained(root .. "/models/tiny-sd-a"):to("cuda")
cpu:load_textual_inversion(fix .. "shiny", {token = "<shiny>"})
torch.manual_seed(5)
gpu:load_textual_inversion(fix .. "shiny", {token = "<shiny>"})
local after = torch.randn({4}, {device = "cuda"}):to("cpu")
torch.manual_seed(5)
torch.randn({1517 * 32}, {device = "cuda"}) -- the new table's draw: 1514 + 3 rows of 32
local expect = torch.randn({4}, {device = "cuda"}):to("cpu")
check.eq((after - expect):abs():max():item(), 0, "the CUDA generator moved as torch's")

local ids = torch.tensor({{1512, 1514, 1515, 1516, 1513}})
local a = cpu.text_encoder(ids)[1]
local b = gpu.text_encoder(ids:to("cuda"))[1]:to("cpu")
local d = (a - b):abs():max():item()
check.truthy(d < 1e-4, "the device's rows give the CPU's output: " .. d)
local back = gpu:to("cpu")
check.eq(back.text_encoder.config.vocab_size, 1517, "rows kept on the way back")
check.truthy((back.text_encoder(ids)[1] - a):abs():max():item() < 1e-4, "same output back")
