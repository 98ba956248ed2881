-- Lua 5.4: tables, strings, closures, coroutines, integers and floats.
local t = {}
for i = 1, 1000 do t[i] = (i * 7919) % 1009 end
table.sort(t)
print("sorted", t[1], t[500], t[1000])
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
print("fib", fib(24))
print("fmt", string.format("%.12f %5.2e %x %q", math.pi, 1e-10, 255, "a\nb"))
print("int", math.maxinteger, math.mininteger, 7 // 2, -7 // 2, 7 % -3, 2^53)
print("float", 0.1 + 0.2, 1/0, -1/0, math.tointeger(3.0), 3 | 5, 6 ~ 3)
local words = {}
for w in ("the quick brown fox jumps over the lazy dog"):gmatch("%a+") do
  words[#words + 1] = w:upper()
end
print("gmatch", table.concat(words, ","))
print("gsub", (("hello world"):gsub("o", "0")))
local co = coroutine.wrap(function(a)
  for i = 1, 3 do a = coroutine.yield(a * i) end
  return "end"
end)
print("coroutine", co(2), co(3), co(4), co(5))
local counter = (function() local n = 0 return function() n = n + 1 return n end end)()
counter(); counter()
print("closure", counter())
local mt = setmetatable({}, { __index = function(_, k) return k * 2 end })
print("metatable", mt[21])
print("utf8", utf8.char(233, 9731), utf8.len("é☃"))
print("pack", string.unpack("<i4", string.pack("<i4", -2)))
local f = assert(io.open("/tmp/lua-test.txt", "w"))
for i = 1, 50 do f:write("row ", i, "\n") end
f:close()
local n = 0
for _ in io.lines("/tmp/lua-test.txt") do n = n + 1 end
print("file", n, os.remove("/tmp/lua-test.txt"))
print("date", os.date("!%Y-%m-%d %H:%M:%S", 1700000000))
