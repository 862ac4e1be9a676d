-- wrk script: search or suggest queries over the generated catalogue: whole words, prefixes,
-- typos and two-word queries, in turn.
-- Usage: wrk -s benchmarks/search.lua URL -- search|suggest
local counter = 0
local mode = "search"
local queries = {
  "lantern", "brass lantern", "choc", "choclate", "carpet", "carpte", "basket", "bask", "silk scarf",
  "copper", "tagine", "lanten", "spice", "saffron", "olive", "woven", "ceramic teapot", "teapt", "leather", "cand",
}

function init(args)
  mode = args[1] or "search"
end

function request()
  counter = counter + 1
  local q = queries[(counter % #queries) + 1]:gsub(" ", "+")
  if mode == "suggest" then
    return wrk.format("GET", "/api/v1/search/suggest?q=" .. q)
  end
  return wrk.format("GET", "/api/v1/search?q=" .. q .. "&limit=20")
end
