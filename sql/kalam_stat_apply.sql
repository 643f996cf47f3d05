--
-- kalam_stat_apply: the apply path of each Raft group, over the last
-- minute and since kalam.stat_apply_reset()
--
SELECT kalam.stat_apply_reset();
SELECT count(*) = 2 * (SELECT count(*) FROM kalam.groups) AS a_row_per_group_and_period,
       bool_and(period IN ('minute', 'total')) AS periods
  FROM kalam.stat_apply;

CREATE FOREIGN TABLE app.sa (k int, v text) SERVER kalam OPTIONS (type 'shared', primary_key 'k');
INSERT INTO app.sa SELECT g, 'row ' || g FROM generate_series(1, 100) g;
INSERT INTO app.sa VALUES (1000, 'another entry');
BEGIN;
UPDATE app.sa SET v = 'updated' WHERE k <= 10;
COMMIT;

SELECT period, entries >= 3 AS entries, commands >= 3 AS commands,
       rows_written >= 111 AS rows_written, bytes > 1000 AS bytes,
       apply_p50_ms >= 0 AND apply_p99_ms >= apply_p50_ms
         AND apply_max_ms >= apply_p50_ms AS apply_times,
       propose_to_commit_p50_ms >= 0
         AND propose_to_commit_p99_ms >= propose_to_commit_p50_ms AS commit_times,
       commit_to_apply_p50_ms >= 0
         AND commit_to_apply_p99_ms >= commit_to_apply_p50_ms AS visible_times,
       forwarded, forward_rtt_p50_ms, parked_entries, parked_wait_max_ms
  FROM kalam.stat_apply WHERE group_name = 'shared' ORDER BY period;

-- a reset empties the totals; the last minute stays
SELECT kalam.stat_apply_reset();
SELECT period, entries, commands, rows_written, bytes, apply_p50_ms, apply_max_ms,
       since > now() - interval '1 minute' AS recent
  FROM kalam.stat_apply WHERE group_name = 'shared' AND period = 'total';
SELECT entries >= 3 AS minute_kept FROM kalam.stat_apply
 WHERE group_name = 'shared' AND period = 'minute';

-- everyone may read the view; only superusers reset it
CREATE ROLE stat_reader;
SET ROLE stat_reader;
SELECT count(*) > 0 AS readable FROM kalam.stat_apply;
SELECT kalam.stat_apply_reset();
RESET ROLE;
DROP ROLE stat_reader;
DROP FOREIGN TABLE app.sa;
