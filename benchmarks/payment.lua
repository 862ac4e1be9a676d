-- wrk script: flash-sale wins paid, each order once, by its own customer.
-- Usage: wrk -s benchmarks/payment.lua URL -- PAYMENTS_FILE METHOD
-- PAYMENTS_FILE holds "<token> <order id>" lines; METHOD is card (the simulated provider's card
-- that is approved) or credit. Each wrk thread takes every n-th line, so no order is paid twice
-- unless the file runs out (a second payment is a 409 and counts as an error).
local index = 0

function setup(thread)
  index = index + 1
  thread:set("id", index)
end

local payments = {}
local counter = 0
local body = ""

function init(args)
  local file = assert(io.open(args[1], "r"), "cannot open " .. tostring(args[1]))
  local count = tonumber(os.getenv("WRK_THREADS") or "2")
  local line_number = 0
  for line in file:lines() do
    line_number = line_number + 1
    if line_number % count == (id - 1) then
      local token, order = line:match("^(%S+)%s+(%S+)$")
      if token then table.insert(payments, { token, order }) end
    end
  end
  file:close()
  assert(#payments > 0, "no payment in " .. args[1])
  local shipping = '"shipping":{"name":"Bench Buyer","phone":"+212600000000","address":"1 Rue de la Kasbah"}'
  if args[2] == "card" then
    body = '{"method":"card",' .. shipping .. ',"card":{"number":"4242424242424242","exp_month":12,"exp_year":2040,"cvc":"123"}}'
  else
    body = '{"method":"credit",' .. shipping .. '}'
  end
end

function request()
  counter = counter + 1
  local payment = payments[(counter - 1) % #payments + 1]
  return wrk.format("POST", "/api/v1/orders/" .. payment[2] .. "/payment",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. payment[1] }, body)
end
