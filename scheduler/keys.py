"""Every Redis key and Celery queue name yardmaster uses, built in one place.

All names share the configurable namespace prefix, so two clusters can share
one Redis without meeting. Nothing else in the code base formats key strings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builder for one namespace.

    Attributes:
        ns: The namespace prefix (``YM_NAMESPACE``), ``ym`` by default.
    """

    ns: str = "ym"

    # -- tasks -----------------------------------------------------------------
    def task(self, task_id: str) -> str:
        """Hash holding one task's record and its state."""
        return f"{self.ns}:task:{task_id}"

    @property
    def pending(self) -> str:
        """Sorted set of pending task ids, scored by submission sequence."""
        return f"{self.ns}:pending"

    @property
    def pending_by_priority(self) -> str:
        """Hash: priority -> number of pending tasks with it."""
        return f"{self.ns}:pending:bypri"

    @property
    def task_prefix(self) -> str:
        """The common prefix of every task key (for Lua scripts that derive them)."""
        return self.task("")

    def dependents(self, task_id: str) -> str:
        """List of the ids of the tasks waiting on one task (workflows, docs/workflows.md)."""
        return f"{self.ns}:deps:{task_id}"

    def workflow(self, workflow_id: str) -> str:
        """Set of the task ids of one workflow."""
        return f"{self.ns}:workflow:{workflow_id}"

    @property
    def workflows(self) -> str:
        """Sorted set of workflow ids by first submission (submit_after.lua adds them;
        readers drop those whose task set expired)."""
        return f"{self.ns}:workflows"

    @property
    def waiting(self) -> str:
        """Gauge of the tasks in state ``waiting`` (kept by the Lua scripts, see
        ``_dependents.lua``; the name is the stats hash's with ``waiting`` for ``stats``)."""
        return f"{self.ns}:waiting"

    @property
    def seq(self) -> str:
        """Counter giving every submission a cluster-wide sequence number."""
        return f"{self.ns}:seq"

    @property
    def replicated(self) -> str:
        """Counter written just before a WAIT for replicas (YM_DURABLE_REPLICAS), so the
        WAIT covers every earlier write, whichever connection made it."""
        return f"{self.ns}:replicated"

    @property
    def stats(self) -> str:
        """Hash of lifetime counters: submitted, dispatched, started and one per terminal state."""
        return f"{self.ns}:stats"

    @property
    def admission(self) -> str:
        """String set while submissions are refused for Redis's memory (the hysteresis of
        ``submit.lua``: set above the high-water mark, deleted under the low-water mark)."""
        return f"{self.ns}:admission:memory"

    @property
    def memory_sample(self) -> str:
        """String: the last reading of Redis's used share of ``maxmemory`` by ``submit.lua``
        ('' without a limit), kept ``YM_MEMORY_SAMPLE_MS``."""
        return f"{self.ns}:admission:sample"

    @property
    def orphan_policy(self) -> str:
        """Hash: task name -> ``fail`` for task types that must not run again after a lost worker."""
        return f"{self.ns}:orphan_policy"

    @property
    def task_names(self) -> str:
        """Set of task names registered by the workers that have started."""
        return f"{self.ns}:tasknames"

    @property
    def unschedulable(self) -> str:
        """Hash: id -> reason of each pending task no live worker could ever run (placement)."""
        return f"{self.ns}:unschedulable"

    # -- dispatcher ------------------------------------------------------------
    @property
    def inbox(self) -> str:
        """List the dispatcher drains: submissions, freed slots, cancels, worker changes."""
        return f"{self.ns}:inbox"

    @property
    def handoff(self) -> str:
        """List of the next tasks in the strategy's order, each with its message template.

        A worker finishing a task binds the head of it to its freed slot at once
        (``finish.lua``), so a completion does not wait for the dispatcher.
        """
        return f"{self.ns}:handoff"

    @property
    def events(self) -> str:
        """Stream of terminal-state events, for monitors (capped at ``events_maxlen``)."""
        return f"{self.ns}:events"

    @property
    def leader(self) -> str:
        """Lease held by the active dispatcher (its token as the value)."""
        return f"{self.ns}:dispatcher:leader"

    def ledger(self, name: str) -> str:
        """List the ``ledger`` demo task appends each completed body run to (an audit trail)."""
        return f"{self.ns}:ledger:{name}"

    def ledger_committed(self, name: str) -> str:
        """List the ``ledger`` demo task appends to through its outbox: one entry per task."""
        return f"{self.ns}:ledger:{name}:committed"

    def ledger_seen(self, name: str) -> str:
        """Set of the run nonces a ledger list already holds (appends are idempotent)."""
        return f"{self.ns}:ledger:{name}:seen"

    # -- workers ---------------------------------------------------------------
    @property
    def workers(self) -> str:
        """Set of registered worker names."""
        return f"{self.ns}:workers"

    def worker(self, name: str) -> str:
        """Hash of one worker: slots, queue, heartbeat, counters."""
        return f"{self.ns}:worker:{name}"

    def worker_tasks(self, name: str) -> str:
        """Set of task ids dispatched to a worker and not yet finished: its taken slots."""
        return f"{self.ns}:worker:{name}:tasks"

    def worker_warm(self, name: str) -> str:
        """List of a worker's most recently used affinity keys, newest first."""
        return f"{self.ns}:worker:{name}:warm"

    def worker_queue(self, name: str) -> str:
        """The Celery queue only this worker consumes: the late-binding target."""
        return f"{self.ns}.q.{name}"

    # -- learned estimates -----------------------------------------------------
    @property
    def durations(self) -> str:
        """Hash: duration key -> EMA of run time in seconds."""
        return f"{self.ns}:ema"

    @property
    def duration_counts(self) -> str:
        """Hash: duration key -> number of runs observed."""
        return f"{self.ns}:ema:n"

    def affinity(self, affinity_key: str) -> str:
        """Hash: worker name -> affinity score in [0, 1] for one affinity key."""
        return f"{self.ns}:affinity:{affinity_key}"

    @property
    def affinity_prefix(self) -> str:
        """The common prefix of every affinity key (for loading them all)."""
        return self.affinity("")

    # -- strategy steering -----------------------------------------------------
    @property
    def strategy(self) -> str:
        """Hash: ``version``, ``record`` (the latest requested configuration, JSON)
        and ``active`` (what the dispatcher applied, JSON)."""
        return f"{self.ns}:strategy"

    @property
    def strategy_history(self) -> str:
        """List of every configuration version, oldest first (JSON records)."""
        return f"{self.ns}:strategy:history"

    @property
    def guard_watcher(self) -> str:
        """String, present (with a short TTL) while a ``yardmaster monitor`` runs the
        rollout guard: what ``strategy set --guard`` checks before promising a watch."""
        return f"{self.ns}:strategy:watcher"

    @property
    def strategy_switches(self) -> str:
        """List of the adaptive strategy's recent switches, newest first (JSON)."""
        return f"{self.ns}:strategy:switches"

    # -- solution cache, deduplication, locks, limits --------------------------
    def cache_entry(self, digest: str) -> str:
        """Hash of one cached result: ``r`` (result JSON), ``n`` (task name); expires with its TTL."""
        return f"{self.ns}:cache:e:{digest}"

    @property
    def cache_index(self) -> str:
        """Sorted set of cached digests scored by last use, for least-recently-used eviction."""
        return f"{self.ns}:cache:index"

    @property
    def cache_stats(self) -> str:
        """Hash of cache counters: hits, misses, coalesced, idempotent, evicted, and per task name."""
        return f"{self.ns}:cache:stats"

    def inflight(self, digest: str) -> str:
        """String: id of the task now pending or running for one call digest (coalescing)."""
        return f"{self.ns}:inflight:{digest}"

    def idempotency(self, key: str) -> str:
        """String: id of the task submitted with an idempotency key, for the window."""
        return f"{self.ns}:idem:{key}"

    def guard(self, task_id: str) -> str:
        """Lock of the delivery now running a task's body (execution guard)."""
        return f"{self.ns}:guard:{task_id}"

    def guard_done(self, task_id: str) -> str:
        """String: the outcome of a task's body once it finished (JSON), for redeliveries."""
        return f"{self.ns}:done:{task_id}"

    def concurrency(self, key: str) -> str:
        """Set of task ids of one concurrency key now dispatched or running."""
        return f"{self.ns}:conc:{key}"

    @property
    def concurrency_prefix(self) -> str:
        """The common prefix of the concurrency sets (for Lua scripts that derive them)."""
        return self.concurrency("")

    @property
    def rate_limits(self) -> str:
        """Hash: task name -> global rate limit in tasks per second."""
        return f"{self.ns}:ratelimits"

    # -- retries, breakers, cancellation ---------------------------------------
    @property
    def delayed(self) -> str:
        """Sorted set of pending tasks waiting out a retry backoff, scored by their not-before
        time (Redis server time); the dispatcher moves them to ``pending`` when due."""
        return f"{self.ns}:delayed"

    @property
    def expiring(self) -> str:
        """Sorted set of tasks with a Celery ``expires`` time, scored by it (UNIX seconds);
        the dispatcher ends those still pending when it passes."""
        return f"{self.ns}:expiring"

    @property
    def outcomes(self) -> str:
        """Hash: ``<task name>\\tok`` and ``<task name>\\tfail`` -> runs that ended so (the
        circuit breakers' input; a retried failure counts as a failure)."""
        return f"{self.ns}:outcomes"

    @property
    def breakers(self) -> str:
        """Hash: task name -> its circuit breaker's state (JSON), written on transitions."""
        return f"{self.ns}:breakers"

    @property
    def breaker_transitions(self) -> str:
        """List of recent circuit breaker transitions, newest first (JSON)."""
        return f"{self.ns}:breakers:transitions"

    def worker_control(self, name: str) -> str:
        """List of requests to a worker's main process (terminate a running task)."""
        return f"{self.ns}:worker:{name}:control"

    def demo(self, key: str) -> str:
        """Scratch keys of the demo tasks (attempt counters and timelines)."""
        return f"{self.ns}:demo:{key}"
