-- wrk script for every Starling scenario:
--   wrk -t2 -c16 -d10s -s bench/wrk/starling.lua http://127.0.0.1:PORT -- MODE RUN_DIR
-- MODE: feed (homeFeed query text), feed-apq (the same by persisted-query hash),
--       floor (GET /bench/feed), plain / caches / orjson (the feed query on the
--       bench/ablations.py endpoints), write (postTweet), mixed (95% feed-apq,
--       3% postTweet, 1% likeTweet, 1% follow).
-- Each request is sent as a different user: tokens.txt holds one token per line, line i
-- being user i of user_ids.txt. Request bodies come from RUN_DIR (written by the harness);
-- %TOKEN-free templates use %s for the one variable part.
-- done() prints one line "BENCH_JSON {...}" with counts and latency percentiles (us).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

local function slurp(path)
  local file = assert(io.open(path, "r"))
  local text = file:read("*a")
  file:close()
  return (text:gsub("%s+$", ""))
end

-- Globals, so that done() can read them from each thread (thread:get).
errors = 0
reads, posts, likes, follows = 0, 0, 0, 0

local mode, tokens, user_ids, tweet_ids, bodies
local cursor, sent = 0, 0

function init(args)
  mode = args[1]
  local dir = args[2]
  tokens = lines(dir .. "/tokens.txt")
  user_ids = lines(dir .. "/user_ids.txt")
  tweet_ids = lines(dir .. "/tweet_ids.txt")
  bodies = {
    feed = slurp(dir .. "/body-feed.json"),
    apq = slurp(dir .. "/body-feed-apq.json"),
    post = slurp(dir .. "/body-post.json"),
    like = slurp(dir .. "/body-like.json"),
    follow = slurp(dir .. "/body-follow.json"),
  }
  -- Threads start at different users and walk the list: many distinct viewers.
  cursor = math.floor(#tokens * thread_id / 2)
  math.randomseed(1000 + thread_id)
end

local function headers(user)
  return { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[user] }
end

local function read_request(user, body)
  reads = reads + 1
  return wrk.format("POST", "/graphql", headers(user), body)
end

local function post_request(user)
  posts = posts + 1
  sent = sent + 1
  local text = string.format("load test post %d from thread %d #bench", sent, thread_id)
  return wrk.format("POST", "/graphql", headers(user), string.format(bodies.post, text))
end

function request()
  cursor = cursor % #tokens + 1
  local user = cursor
  if mode == "feed" then
    return read_request(user, bodies.feed)
  elseif mode == "feed-apq" then
    return read_request(user, bodies.apq)
  elseif mode == "floor" then
    reads = reads + 1
    return wrk.format("GET", "/bench/feed?first=20", headers(user))
  elseif mode == "plain" or mode == "caches" or mode == "orjson" or mode == "prefetch" then
    reads = reads + 1
    return wrk.format("POST", "/bench/graphql/" .. mode, headers(user), bodies.feed)
  elseif mode == "write" then
    return post_request(math.random(#tokens))
  end
  -- mixed
  local roll = math.random(100)
  if roll <= 95 then
    return read_request(user, bodies.apq)
  elseif roll <= 98 then
    return post_request(math.random(#tokens))
  elseif roll == 99 then
    likes = likes + 1
    local body = string.format(bodies.like, tweet_ids[math.random(#tweet_ids)])
    return wrk.format("POST", "/graphql", headers(math.random(#tokens)), body)
  end
  follows = follows + 1
  local who = math.random(#tokens)
  local whom = math.random(#user_ids - 1)
  if whom >= who then whom = whom + 1 end -- never yourself
  return wrk.format("POST", "/graphql", headers(who), string.format(bodies.follow, user_ids[whom]))
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local totals = { errors = 0, reads = 0, posts = 0, likes = 0, follows = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"sent": {"reads": %d, "posts": %d, "likes": %d, "follows": %d}, ' ..
    '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d, "p99.9": %d}}\n',
    summary.requests, summary.duration, summary.bytes, totals.errors,
    e.connect, e.read, e.write, e.status, e.timeout,
    totals.reads, totals.posts, totals.likes, totals.follows,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9)))
end
