-- What the demo shows once the worker has synced: the status of the
-- connector, the vehicle changed on both sides, and its history.
\pset footer off
\x auto

\echo
\echo '== Status'
SELECT connector, kind, profile_version, mode, connected, last_sync_at::timestamp(0),
       vin_count, policy_version, outbound_pending, outbound_dead, inbound_dead,
       worker_running
FROM stocktech_sync.status;

\echo '== Sync runs'
SELECT id, trigger, status, pages, records, vin_count,
       summary #>> '{counts,created}' AS created, summary #>> '{counts,updated}' AS updated,
       round(extract(epoch FROM finished_at - started_at)::numeric, 2) AS seconds
FROM stocktech_sync.sync_runs ORDER BY id;

\echo '== Vehicles per commercial status'
SELECT commercial_status, count(*) FROM stocktech_sync.vin_master GROUP BY 1 ORDER BY 1;

\echo '== The ERP sold the vehicle while the floor had it in maintenance'
SELECT vin, commercial_status, maint_status, last_source, row_version
FROM stocktech_sync.vin_master WHERE vin = :'vin';

\echo '== Its history (policy 3.2 decided each field)'
SELECT audit_id, event, source, policy_version, field, old_value, new_value,
       incoming_value, decision
FROM stocktech_sync.vin_history(:'vin')
WHERE decision <> 'unchanged'
ORDER BY audit_id, item;

\echo '== What the matrix would do with another ERP value for maint_status'
SELECT jsonb_pretty(stocktech_sync.explain(:'vin', 'maint_status', 'done', 'erp'));
