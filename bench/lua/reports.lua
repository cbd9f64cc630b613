-- wrk script for P1b-wrk and P1h (bench/wrk.py): each wrk thread sends the
-- report bodies of its own file, one POST /api/v1/native-runs/ per line, in
-- the file's order.
--
--   wrk ... -s bench/lua/reports.lua URL -- DIR TOKEN CYCLE
--
-- DIR holds req-1.jsonl, req-2.jsonl, … (one per wrk thread); TOKEN is the
-- executor's API token; CYCLE is 1 to start the file again at its end
-- (heartbeats: the same runs reported again), 0 to stop the thread there
-- (new runs: each report is sent once; bench/wrk.py reports the exhaustion
-- as a problem, since the thread then idles for the rest of the run and the
-- rate comes out low).
-- done() prints one line "WRK-RESULT {json}" that bench/wrk.py parses.

local counter = 0
local threads = {}

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   local dir, token = args[1], args[2]
   cycle = args[3] == "1"
   sent = 0
   exhausted = 0
   reqs = {}
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Token " .. token,
   }
   local f = assert(io.open(dir .. "/req-" .. id .. ".jsonl", "r"))
   for line in f:lines() do
      if #line > 0 then
         reqs[#reqs + 1] = wrk.format("POST", "/api/v1/native-runs/", headers, line)
      end
   end
   f:close()
   loaded = #reqs
   i = 0
end

function request()
   i = i + 1
   if i > #reqs then
      if cycle then
         i = 1
      else
         -- Every report of this thread was sent: stop rather than repeat one
         -- (a repeat would be a heartbeat, a different path).
         exhausted = 1
         wrk.thread:stop()
         return wrk.format("GET", "/healthz")
      end
   end
   sent = sent + 1
   return reqs[i]
end

function done(summary, latency, requests)
   local sent_total, exhausted_total, loaded_total = 0, 0, 0
   for _, thread in ipairs(threads) do
      sent_total = sent_total + (thread:get("sent") or 0)
      exhausted_total = exhausted_total + (thread:get("exhausted") or 0)
      loaded_total = loaded_total + (thread:get("loaded") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'WRK-RESULT {"duration_us": %d, "requests": %d, "status_errors": %d, "connect_errors": %d, ' ..
      '"read_errors": %d, "write_errors": %d, "timeouts": %d, "sent": %d, "loaded": %d, ' ..
      '"threads_exhausted": %d, "latency_p50_us": %d, "latency_p99_us": %d}\n',
      summary.duration, summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
      sent_total, loaded_total, exhausted_total, latency:percentile(50), latency:percentile(99)))
end
