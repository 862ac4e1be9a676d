-- wrk script: orders through the store link, one unit of one of 20 products each.
-- Usage: wrk -s benchmarks/order.lua URL -- FIRST_PRODUCT_ID
local counter = 0
local first_product = 1

function init(args)
  first_product = tonumber(args[1]) or 1
end

function request()
  counter = counter + 1
  local product = first_product + (counter % 20)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" },
    '{"customer":{"name":"Bench Buyer","phone":"+212600000000","address":"1 Rue de la Kasbah"},' ..
    '"items":[{"product_id":' .. product .. ',"quantity":1}]}')
end
