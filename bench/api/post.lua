-- post.lua: wrk script for figure 1 of bench/api/run.py. Every request is
-- POST BENCH_PATH with a JSON message body carrying its own id (as a phone
-- sends: the daemon's idempotency check runs for each), the bearer token
-- BENCH_TOKEN and BENCH_TO as the recipient. done() prints one line run.py
-- reads: BENCH requests duration_us p50_us p99_us mean_us non2xx errors
local path = os.getenv("BENCH_PATH") or "/v1/message"
local token = os.getenv("BENCH_TOKEN") or ""
local to = os.getenv("BENCH_TO") or "bob@localhost"
local tag = os.getenv("BENCH_TAG") or "w"
local n = 0
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. token,
}

request = function()
  n = n + 1
  local body = string.format(
    '{"to":"%s","body":"benchmark message %d","id":"%s-%d"}', to, n, tag, n)
  return wrk.format("POST", path, headers, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %.1f %.1f %.1f %d %d\n",
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.mean, e.status,
    e.connect + e.read + e.write + e.timeout))
end
