-- wrk script: purchase attempts by signed-in customers, each customer once, in turn.
-- Usage: wrk -s benchmarks/flash-sale.lua URL/api/v1/flash-sales/ID/purchases -- SHOPPERS_FILE
-- SHOPPERS_FILE holds "<customer id> <token>" lines (souk customers mint). Each wrk thread takes
-- every n-th line, so no two threads send the same customer; past the end a thread starts over
-- (those attempts are answered 409 limit reached and count as errors when stock is left).
local threads = {}
local index = 0

function setup(thread)
  index = index + 1
  thread:set("id", index)
  table.insert(threads, thread)
end

local tokens = {}
local counter = 0

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open " .. tostring(args[1]))
  local line_number = 0
  local count = tonumber(os.getenv("WRK_THREADS") or "2")
  for line in file:lines() do
    line_number = line_number + 1
    if line_number % count == (id - 1) then
      local token = line:match("^%S+%s+(%S+)$")
      if token then table.insert(tokens, token) end
    end
  end
  file:close()
  assert(#tokens > 0, "no shopper in " .. args[1])
end

function request()
  counter = counter + 1
  local token = tokens[(counter - 1) % #tokens + 1]
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, "{}")
end
