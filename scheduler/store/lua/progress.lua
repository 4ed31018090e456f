-- Record a running task's progress on its record (progress_done, progress_total,
-- progress_note, progress_at in Redis time). Only the delivery the task was
-- dispatched to may write it: the record's worker and attempt must be the
-- caller's, and the task dispatched, running or just finished by that run (a
-- body's last report may arrive after its outcome). A stale delivery, a later
-- attempt's record or an expired record is left alone.
-- KEYS: task.  ARGV: worker name, attempt, done, total ('' for none), note.
-- Returns 1 when written, 0 when refused.
-- @include _time
local task_key = KEYS[1]
local worker, attempt, done, total, note = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local f = redis.call('HMGET', task_key, 'state', 'worker', 'attempt')
local state = f[1]
if not state or f[2] ~= worker or f[3] ~= attempt then return 0 end
if state ~= 'dispatched' and state ~= 'running' and state ~= 'succeeded' and state ~= 'failed' then
  return 0
end
redis.call('HSET', task_key, 'progress_done', done, 'progress_total', total,
           'progress_note', note, 'progress_at', now_text())
return 1
