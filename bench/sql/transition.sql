-- The raw transition Mission Control makes for each state change, on its own
-- tables: lock a task row, update it, append one ledger row. pgbench runs
-- this at the same client count as the measurement it is the baseline for.
-- The status is written back unchanged and the event type carries no status,
-- so the ledger check still passes on the database afterwards.
\set tid random(:lo, :hi)
BEGIN;
SELECT id, status FROM planning_planningtask WHERE id = :tid FOR UPDATE;
UPDATE planning_planningtask SET status = status, updated_at = now() WHERE id = :tid;
INSERT INTO planning_event (at, type, actor, task_id, plan_id, attempt_id, data)
    VALUES (now(), 'bench.transition', 'pgbench', :tid, NULL, NULL, '{"bench": true}');
END;
