-- wrk script: every request is a purchase attempt by a buyer never seen before.
-- Usage: wrk -s benchmarks/flash-sale.lua http://host:port/api/v1/flash-sales/ID/purchases
local threads = 0
math.randomseed(os.time())

-- setup runs in wrk's main Lua state, once per thread: give each thread its own buyer prefix.
function setup(thread)
  threads = threads + 1
  thread:set("prefix", "t" .. threads .. "r" .. math.random(1, 1000000000) .. "n")
end

local counter = 0

function request()
  counter = counter + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, '{"buyer_id":"' .. prefix .. counter .. '"}')
end
