-- The events stream's entry for a task that reached a terminal state (read by
-- the monitors and the task listing), capped at about maxlen entries. Every
-- entry starts with the same six fields; ... are further field/value pairs, in
-- the order they are stored.
local function append_event(stream, maxlen, id, name, state, worker, priority, submitted_at, ...)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'id', id, 'name', name or '', 'state', state, 'worker', worker or '',
    'priority', priority or '', 'submitted_at', submitted_at or '', ...)
end
