-- Progress inside a chunk: the lines a worker has checked and refused so far in a chunk it
-- holds (they only grow, whoever holds it), and their sum over a task's chunks still in work,
-- shown in the task's counters until each chunk commits its final counts.
ALTER TABLE chunks ADD COLUMN progress_success BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN progress_failure BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN progress_success BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN progress_failure BIGINT NOT NULL DEFAULT 0;
