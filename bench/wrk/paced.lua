-- starling.lua with a pause before each request, for a steady rate below capacity:
--   wrk -t2 -c4 -d10s -s bench/wrk/paced.lua http://127.0.0.1:PORT -- MODE RUN_DIR PAUSE_MS
-- Each connection waits PAUSE_MS, sends, waits for the answer, and so on: the rate is about
-- connections * 1000 / (PAUSE_MS + latency) requests per second.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "starling.lua")

local pause = 0
local base_init = init

function init(args)
  pause = tonumber(args[3]) or 0
  base_init(args)
end

function delay()
  return pause
end
