-- wrk script for the mcp-warden bench: the same MCP tools/call POST to every target.
-- WRK_TOKEN        one bearer token on every request (wrk pre-builds the request: fastest path)
-- WRK_TOKENS_FILE  one token per line; every request takes the next one (thread t takes lines t, t+n, ...)
-- WRK_THREADS      the -t value, to split the token file between threads
-- WRK_OFFSET       where in its slice each thread starts (run.ts moves it on after every run, so a
--                  measured run never reuses the tokens its warm-up just had verified)
-- WRK_DPOP_TOKEN   with WRK_PROOFS_FILE: `Authorization: DPoP <token>` and the next proof of the file
--                  in `DPoP` on every request (one proof per line, split between threads like tokens)
-- done() prints one line "WRKJSON {...}" that run.ts parses.

local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"q":"bench"}}}'
local token = os.getenv("WRK_TOKEN")
local tokens_file = os.getenv("WRK_TOKENS_FILE")
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
local offset = tonumber(os.getenv("WRK_OFFSET") or "0")
local dpop_token = os.getenv("WRK_DPOP_TOKEN")
local proofs_file = os.getenv("WRK_PROOFS_FILE")

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

if tokens_file ~= nil and tokens_file ~= "" then
  local mine = {}
  local idx = 0
  local headers = {}

  function init(args)
    local i = 0
    for line in io.lines(tokens_file) do
      if i % nthreads == tid then mine[#mine + 1] = line end
      i = i + 1
    end
    for k, v in pairs(wrk.headers) do headers[k] = v end
    idx = offset % #mine
  end

  function request()
    idx = idx % #mine + 1
    headers["Authorization"] = "Bearer " .. mine[idx]
    return wrk.format("POST", nil, headers, body)
  end
end

if proofs_file ~= nil and proofs_file ~= "" then
  local mine = {}
  local idx = 0
  local headers = {}

  function init(args)
    local i = 0
    for line in io.lines(proofs_file) do
      if i % nthreads == tid then mine[#mine + 1] = line end
      i = i + 1
    end
    for k, v in pairs(wrk.headers) do headers[k] = v end
    headers["Authorization"] = "DPoP " .. dpop_token
  end

  -- A proof is good once (RFC 9449 §11.1): past the end of its slice a thread replays, and those
  -- 401s count as errors in the run, so the pool run.ts mints is sized above the expected rate.
  function request()
    idx = idx % #mine + 1
    headers["DPoP"] = mine[idx]
    return wrk.format("POST", nil, headers, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
