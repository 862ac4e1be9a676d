-- wrk script: checkouts spread over 100 credited buyers and 20 products (ids from env-free args).
-- Usage: wrk -s benchmarks/checkout.lua URL -- FIRST_PRODUCT_ID
local counter = 0
local first_product = 1

function init(args)
  first_product = tonumber(args[1]) or 1
end

function request()
  counter = counter + 1
  local buyer = "buyer" .. (counter % 100)
  local product = first_product + (counter % 20)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" },
    '{"buyer_id":"' .. buyer .. '","items":[{"product_id":' .. product .. ',"quantity":1}]}')
end
