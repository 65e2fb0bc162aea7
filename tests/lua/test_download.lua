-- tests/lua/test_download.lua — download() and FastDownload() without a network:
-- file:// URLs, argument and option errors, objects and help.
local check = require("check")

local dir = check.tmpdir()
local path = dir .. "/a b.txt"
local f = assert(io.open(path, "wb"))
f:write("content\n")
f:close()

-- A file:// URL gives the file itself, percent-escapes decoded.
check.eq(download("file://" .. path), path, "download(file://)")
check.eq(download("file://" .. dir .. "/a%20b.txt"), path, "percent-decoded file:// URL")
check.eq(download("file://localhost" .. path), path, "file://localhost")
check.eq(FastDownload():download("file://" .. path), path, "FastDownload():download(file://)")
check.eq(FastDownload{base = dir}:download("file://" .. path, {force = true}), path, "force on file://")
check.raises("download: " .. dir .. "/missing.txt: No such file or directory", download,
  "file://" .. dir .. "/missing.txt")
check.raises("not a regular file", download, "file://" .. dir)
check.raises("unsupported file URL", download, "file://host/x")

-- Only URLs that it can fetch.
check.raises("download: unsupported URL 'ftp://example.com/x'", download, "ftp://example.com/x")
check.raises("download: unsupported URL 'example.com/x.png'", download, "example.com/x.png")
check.raises("download: empty URL", download, "")

-- Arguments and options, named as Python would name them.
check.raises("download: argument 1 (url): string expected, got number", download, 1)
check.raises("download: argument 1 (url): string expected, got no value", download)
check.raises("download: argument 2 (opts): table expected, got boolean", download, "file://" .. path, true)
check.raises("download: option 'force': boolean expected, got string", download, "file://" .. path,
  {force = "yes"})
check.raises("download: unexpected option 'forc'", download, "file://" .. path, {forc = true})
check.raises("FastDownload: argument 1 (opts): table expected, got string", FastDownload, "/tmp")
check.raises("FastDownload: option 'base': string expected, got number", FastDownload, {base = 1})
local d = FastDownload()
check.raises("FastDownload:download: argument 1 (url): string expected, got table", d.download, d, {})

-- The object: its type, its printed form, its methods.
check.eq(getmetatable(d).__name, "FastDownload", "metatable name")
check.eq(type(getmetatable(d).__index.download), "function", "download method")
check.eq(tostring(FastDownload{base = dir}), "<FastDownload base=" .. dir .. ">", "tostring")
check.truthy(tostring(d):find("^<FastDownload base=.*/sdrepl/downloads>$"), "default base: " .. tostring(d))
local home = os.getenv("HOME")
if home then
  check.eq(tostring(FastDownload{base = "~/dl"}), "<FastDownload base=" .. home .. "/dl>", "~ expanded")
end

-- help() knows all three.
local printed = {}
local real_print = print
print = function(s) printed[#printed + 1] = s end
help(download)
help(FastDownload)
help(d)
print = real_print
check.truthy(printed[1]:find("download(url, opts={})", 1, true), "help(download): " .. printed[1])
check.truthy(printed[1]:find("force: boolean = false", 1, true), "help lists force")
check.truthy(printed[2]:find("base: string = nil", 1, true), "help lists base: " .. printed[2])
check.truthy(printed[3]:find("FastDownload:download(url, opts={})", 1, true), "help(d): " .. printed[3])

os.remove(path)
os.remove(dir)
