-- portcullis-state quota: count one request in KEYS[1] if it stays within ARGV[1].
-- ARGV[2]: Unix seconds at which the key stops mattering (period end plus a grace).
-- Reply: {counted 0|1, used after this call}.
local used = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if used >= tonumber(ARGV[1]) then
  return {0, used}
end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return {1, used}
