-- Admission control, shared by every script that accepts new tasks (submit.lua,
-- submit_delayed.lua, submit_after.lua; docs/reliability.md, "Backpressure"). A
-- batch is refused, before the script writes any task, when the backlog (the
-- pending index plus the delayed set: tasks that may run without any other
-- task ending first) has reached max pending, or when Redis's used memory
-- passed the high-water share of maxmemory (read from INFO memory here, at most
-- every sample ms: the memory sample key keeps the last reading, so concurrent
-- producers see one decision); once refused for memory, the memory flag key
-- keeps refusing until usage falls under the low-water share. The check runs
-- inside the script, so concurrent producers cannot both pass one free slot's
-- check and write: the bound is exact up to the batch admitted last.
-- Returns nil (admitted) or the refusal {'backpressure', 'pending' or 'memory',
-- current, limit} (current and limit as text: tasks, or shares of maxmemory).
local function admission_refusal(pending, delayed, memory_flag, memory_sample, max_pending,
                                 high, low, sample_ms)
  if max_pending > 0 then
    local backlog = redis.call('ZCARD', pending) + redis.call('ZCARD', delayed)
    if backlog >= max_pending then
      return {'backpressure', 'pending', tostring(backlog), tostring(max_pending)}
    end
  end
  if high > 0 then
    -- the share of maxmemory used, from a sample at most sample_ms old ('' : no limit)
    local sampled = redis.call('GET', memory_sample)
    if not sampled then
      -- pcall: a user the ACL denies INFO gets no memory check rather than no submissions
      local info = redis.pcall('INFO', 'memory')
      local limit = type(info) == 'string' and tonumber(string.match(info, 'maxmemory:(%d+)'))
      sampled = ''
      if limit and limit > 0 then
        sampled = tostring(tonumber(string.match(info, 'used_memory:(%d+)')) / limit)
      end
      -- pcall: over maxmemory the sample cannot be kept, and need not be
      if sample_ms > 0 then redis.pcall('SET', memory_sample, sampled, 'PX', sample_ms) end
    end
    local ratio = tonumber(sampled)
    if ratio then
      local refusing = redis.call('EXISTS', memory_flag) == 1
      if ratio >= high or (refusing and ratio >= low) then
        -- pcall: over maxmemory itself the flag cannot be written, and need not be
        if not refusing then redis.pcall('SET', memory_flag, '1') end
        return {'backpressure', 'memory', tostring(ratio), tostring(high)}
      end
      if refusing then redis.call('DEL', memory_flag) end
    end
  end
  return nil
end
