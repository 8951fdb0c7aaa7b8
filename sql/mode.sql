-- Mode changes are validated and audited; setting the current mode again
-- changes nothing.
SELECT stocktech_sync.current_mode();
SELECT stocktech_sync.set_mode('read_only');
SELECT stocktech_sync.set_mode('hybrid');
SELECT stocktech_sync.set_mode('hybrid');
SELECT stocktech_sync.set_mode('bidirectional');
SELECT stocktech_sync.set_mode('manual');
SELECT stocktech_sync.current_mode();
SELECT stocktech_sync.set_mode('M3');
SELECT stocktech_sync.set_mode(NULL);
SELECT actor = session_user AS by_session_user, event, source,
       decisions -> 0 ->> 'field' AS setting,
       decisions -> 0 ->> 'old' AS old, decisions -> 0 ->> 'new' AS new,
       policy_version, txid IS NOT NULL AS has_txid
FROM stocktech_sync.audit_log WHERE decisions @> '[{"field": "mode"}]' ORDER BY id;

-- A mode change rolled back leaves neither the mode nor an audit row.
BEGIN;
SELECT stocktech_sync.set_mode('hybrid');
ROLLBACK;
SELECT stocktech_sync.current_mode();
SELECT count(*) AS mode_changes FROM stocktech_sync.audit_log
WHERE decisions @> '[{"field": "mode"}]';

-- The per-field view lists the same decisions.
SELECT event, field, old_value, new_value, decision
FROM stocktech_sync.audit_decisions WHERE field = 'mode' ORDER BY audit_id;
