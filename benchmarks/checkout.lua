-- wrk script: checkouts by signed-in, credited customers, spread over 20 products.
-- Usage: wrk -s benchmarks/checkout.lua URL/api/v1/checkouts -- FIRST_PRODUCT_ID SHOPPERS_FILE
-- SHOPPERS_FILE holds "<customer id> <token>" lines (souk customers mint); customers take turns, so
-- each stays within the per-buyer checkout limit as deployed if there are enough of them.
local index = 0

function setup(thread)
  index = index + 1
  thread:set("id", index)
end

local counter = 0
local first_product = 1
local tokens = {}

function init(args)
  first_product = tonumber(args[1]) or 1
  local file = assert(io.open(args[2], "r"), "cannot open " .. tostring(args[2]))
  for line in file:lines() do
    local token = line:match("^%S+%s+(%S+)$")
    if token then table.insert(tokens, token) end
  end
  file:close()
  assert(#tokens > 0, "no shopper in " .. args[2])
  -- The two threads start half the list apart.
  counter = (id - 1) * math.floor(#tokens / 2)
end

function request()
  counter = counter + 1
  local token = tokens[counter % #tokens + 1]
  local product = first_product + (counter % 20)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token },
    '{"items":[{"product_id":' .. product .. ',"quantity":1}]}')
end
