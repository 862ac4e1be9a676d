-- wrk script: image uploads (PUT /api/v1/products/{id}/image) spread over N products, each
-- answered 202 with the thumbnail job queued.
-- Usage: wrk -s benchmarks/upload.lua URL -- TOKEN FIRST_PRODUCT_ID COUNT IMAGE_FILE
local counter = 0
local first, count, token, body = 1, 1, "", ""

function init(args)
  token = args[1]
  first = tonumber(args[2])
  count = tonumber(args[3])
  local file = io.open(args[4], "rb")
  body = file:read("*all")
  file:close()
end

function request()
  counter = counter + 1
  local id = first + (counter % count)
  return wrk.format("PUT", "/api/v1/products/" .. id .. "/image",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "image/png" }, body)
end
