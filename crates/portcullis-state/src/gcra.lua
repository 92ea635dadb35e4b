-- portcullis-state GCRA, all or nothing over #KEYS limits.
-- ARGV[1]: the caller's Unix microseconds, or '' for Redis TIME.
-- ARGV[2i], ARGV[2i+1]: emission interval T and tolerance burst*T of KEYS[i], in microseconds.
-- KEYS[i] holds the TAT in Unix microseconds; it expires when the TAT passes.
-- Reply: {admitted 0|1, now, tat of each key before this request (0 if none)}.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local tats = {}
local admitted = 1
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  tats[i] = tat
  if math.max(tat, now) + interval - now > tolerance then
    admitted = 0
  end
end
if admitted == 1 then
  for i = 1, #KEYS do
    local new_tat = math.max(tats[i], now) + tonumber(ARGV[2 * i])
    local ttl = math.max(1, math.ceil((new_tat - now) / 1000))
    redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl))
  end
end
local reply = {admitted, string.format('%.0f', now)}
for i = 1, #KEYS do
  reply[i + 2] = string.format('%.0f', tats[i])
end
return reply
