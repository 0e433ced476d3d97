-- Who claimed a delivery in flight, and who started a run: the process's identity
-- (HOST/BOOT/PIDNS/PID/START, see src/store/claimer.rs), written with each claim and each
-- start. A process that finds rows in flight, or a run still running, of a process of its own
-- host that is gone (killed, crashed) takes the rows over at once instead of waiting for
-- their lease, and records the run failed. Rows of other hosts keep their lease.
-- Rows claimed before this migration have no claimer: they wait for their lease, as before.
ALTER TABLE deliveries ADD COLUMN claimer TEXT;
ALTER TABLE runs ADD COLUMN claimer TEXT;
