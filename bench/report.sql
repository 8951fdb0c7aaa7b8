-- report.sql
--    The result tables of bench/run.sh, from bench.measurements: the median
--    of each variant with its spread, then each target as a ratio of two
--    medians measured in the same run.

\pset footer off

-- Medians and spread of every variant.  spread is (max - min) / median of
-- the runs, a measure of the noise on this machine.
SELECT m.benchmark, m.variant, count(*) AS runs,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(m.seconds, m.latency_ms))::numeric, 3)
           AS median,
       CASE WHEN m.benchmark = 'local' THEN 'ms latency' ELSE 's' END AS unit,
       round(min(coalesce(m.seconds, m.latency_ms)), 3) AS min,
       round(max(coalesce(m.seconds, m.latency_ms)), 3) AS max,
       round(100 * (max(coalesce(m.seconds, m.latency_ms)) - min(coalesce(m.seconds, m.latency_ms)))
             / nullif(percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(m.seconds, m.latency_ms))::numeric, 0))
           || '%' AS spread,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY m.tps)::numeric) AS median_tps,
       max(m.peak_rss_kb) / 1024 AS peak_rss_mb,
       max(m.peak_anon_kb) / 1024 AS peak_private_mb,
       round(avg(m.load_average), 2) AS load_before
FROM bench.measurements AS m
WHERE m.variant NOT LIKE '%-profiled'
GROUP BY m.benchmark, m.variant
ORDER BY m.benchmark, m.variant;

-- Each target and context ratio.  value is the measured variant's median
-- over the baseline's (a slowdown), or the baseline's over the variant's
-- (a speed-up), as the comparison column names it.  per_run gives the same
-- ratio for each repetition, whose variants ran next to each other, to
-- show the noise.
WITH medians AS (
    SELECT benchmark, variant,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(seconds, latency_ms))::numeric
               AS median,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY tps)::numeric AS median_tps,
           max(peak_rss_kb) AS peak_rss_kb,
           max(peak_anon_kb) AS peak_anon_kb
    FROM bench.measurements
    GROUP BY benchmark, variant
),
comparisons (position, benchmark, comparison, variant, baseline, kind, limit_value, target) AS (
    VALUES
        (1, 'apply', 'time: apply_erp_batch / raw upsert', 'extension', 'raw', 'slowdown', 2.0, '<= 2x'),
        (2, 'apply', 'speed-up: PL/pgSQL engine / apply_erp_batch', 'extension', 'plpgsql', 'speedup', 10.0, '>= 10x'),
        (3, 'apply', 'time: apply_erp_batch / raw upsert + same audit rows', 'extension', 'raw_full_audit', 'slowdown', NULL, 'context'),
        (4, 'apply', 'time: raw upsert + same audit rows / raw upsert', 'raw_full_audit', 'raw', 'slowdown', NULL, 'context'),
        (5, 'apply', 'time: raw upsert + minimal audit / raw upsert', 'raw_audit', 'raw', 'slowdown', NULL, 'context'),
        (6, 'local', 'latency: pdi_status UPDATE, trigger / no trigger', 'pdi-extension', 'pdi-raw', 'slowdown', 1.3, '<= 1.3x'),
        (7, 'local', 'latency: warehouse_location UPDATE, trigger / no trigger', 'location-extension', 'location-raw', 'slowdown', 1.3, '<= 1.3x'),
        (8, 'local', 'latency: pdi_status, UPDATE with CHECKs / no CHECKs', 'pdi-raw_checked', 'pdi-raw', 'slowdown', NULL, 'context'),
        (9, 'local', 'latency: pdi_status, UPDATE + audit INSERT / UPDATE', 'pdi-raw_audit', 'pdi-raw', 'slowdown', NULL, 'context'),
        (10, 'local', 'latency: pdi_status, trigger / UPDATE + audit INSERT', 'pdi-extension', 'pdi-raw_audit', 'slowdown', NULL, 'context'),
        (11, 'local', 'latency: warehouse_location, UPDATE with CHECKs / no CHECKs', 'location-raw_checked', 'location-raw', 'slowdown', NULL, 'context'),
        (12, 'local', 'latency: warehouse_location, trigger / UPDATE + audit INSERT', 'location-extension', 'location-raw_audit', 'slowdown', NULL, 'context'),
        (13, 'import', 'time: import_csv / COPY + raw upsert', 'extension', 'copy_upsert', 'slowdown', 2.5, '<= 2.5x'),
        (14, 'import', 'memory: import_csv backend peak RSS (MB)', 'extension', NULL, 'memory', 256.0, '<= 256 MB'),
        (15, 'import', 'memory: import_csv backend peak private (MB)', 'extension', NULL, 'private_memory', NULL, 'context')
),
per_run AS (
    SELECT c.position,
           string_agg(CASE c.kind
                          WHEN 'slowdown' THEN round(coalesce(v.seconds, v.latency_ms)
                                                     / coalesce(b.seconds, b.latency_ms), 2)
                          WHEN 'speedup' THEN round(coalesce(b.seconds, b.latency_ms)
                                                    / coalesce(v.seconds, v.latency_ms), 2)
                      END::text, ' ' ORDER BY v.repetition) AS ratios
    FROM comparisons AS c
    JOIN bench.measurements AS v ON v.benchmark = c.benchmark AND v.variant = c.variant
    JOIN bench.measurements AS b
      ON b.benchmark = c.benchmark AND b.variant = c.baseline AND b.repetition = v.repetition
    GROUP BY c.position
)
SELECT c.benchmark, c.comparison,
       CASE c.kind
           WHEN 'slowdown' THEN round(v.median / b.median, 2)
           WHEN 'speedup' THEN round(b.median / v.median, 2)
           WHEN 'memory' THEN round(v.peak_rss_kb / 1024.0)
           WHEN 'private_memory' THEN round(v.peak_anon_kb / 1024.0)
       END AS value,
       r.ratios AS per_run,
       CASE WHEN c.benchmark = 'local' AND c.kind = 'slowdown'
            THEN round(b.median_tps / v.median_tps, 2) END AS tps_ratio,
       c.target,
       CASE
           WHEN c.limit_value IS NULL THEN ''
           WHEN c.kind = 'slowdown' THEN CASE WHEN v.median / b.median <= c.limit_value THEN 'met' ELSE 'MISSED' END
           WHEN c.kind = 'speedup' THEN CASE WHEN b.median / v.median >= c.limit_value THEN 'met' ELSE 'MISSED' END
           WHEN c.kind = 'memory' THEN CASE WHEN v.peak_rss_kb / 1024.0 <= c.limit_value THEN 'met' ELSE 'MISSED' END
       END AS result
FROM comparisons AS c
JOIN medians AS v ON v.benchmark = c.benchmark AND v.variant = c.variant
LEFT JOIN medians AS b ON b.benchmark = c.benchmark AND b.variant = c.baseline
LEFT JOIN per_run AS r ON r.position = c.position
WHERE c.kind IN ('memory', 'private_memory') OR b.variant IS NOT NULL
ORDER BY c.position;
