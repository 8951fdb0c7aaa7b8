-- Attempts to get around the policy or the audit, and inputs that must be
-- rejected with a clear error.
SELECT stocktech_sync.set_mode('hybrid');
DELETE FROM stocktech_sync.vin_master;
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352", "model_code": "ACCORD"}')
       ->> 'created' AS created;

-- explain() needs a VIN, a field and a source.
SELECT stocktech_sync.explain(NULL, 'maint_status', 'done', 'erp');
SELECT stocktech_sync.explain('1HGCM82633A004352', NULL, 'done', 'erp');
SELECT stocktech_sync.explain('1HGCM82633A004352', 'maint_status', NULL, 'erp') ->> 'decision'
       AS clearing_decision;

-- A new row cannot carry ERP bookkeeping; created_at and created_by are
-- the engine's.
INSERT INTO stocktech_sync.vin_master (vin, erp_baseline) VALUES ('WVWZZZ1KZAW000001', '{"x": "1"}');
INSERT INTO stocktech_sync.vin_master (vin, erp_etag) VALUES ('WVWZZZ1KZAW000001', 'W/"forged"');
INSERT INTO stocktech_sync.vin_master (vin, erp_connector) VALUES ('WVWZZZ1KZAW000001', 'manual');
INSERT INTO stocktech_sync.vin_master (vin, row_version) VALUES ('WVWZZZ1KZAW000001', 7);
INSERT INTO stocktech_sync.vin_master (vin, created_at, created_by, pdi_status)
VALUES ('WVWZZZ1KZAW000001', '2000-01-01', 'someone else', 'passed');
SELECT created_at > '2001-01-01' AS fresh_created_at, created_by = session_user AS real_creator
FROM stocktech_sync.vin_master WHERE vin = 'WVWZZZ1KZAW000001';

-- INSERT ... ON CONFLICT audits only what it really writes.
SELECT count(*) AS audit_rows_before FROM stocktech_sync.audit_log WHERE vin = 'WVWZZZ1KZAW000001';
INSERT INTO stocktech_sync.vin_master (vin, pdi_status) VALUES ('WVWZZZ1KZAW000001', 'failed')
ON CONFLICT (vin) DO NOTHING;
INSERT INTO stocktech_sync.vin_master (vin, pdi_status) VALUES ('WVWZZZ1KZAW000001', 'failed')
ON CONFLICT (vin) DO UPDATE SET maint_status = 'done';
SELECT pdi_status, maint_status FROM stocktech_sync.vin_master WHERE vin = 'WVWZZZ1KZAW000001';
SELECT event, detail, decisions -> 0 ->> 'field' AS field, decisions -> 0 ->> 'new' AS new
FROM stocktech_sync.audit_log WHERE vin = 'WVWZZZ1KZAW000001' ORDER BY id;

-- Values PostgreSQL parses but nobody means (terse: the detail holds the
-- whole row with its timestamps).
\set VERBOSITY terse
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352", "list_price": "NaN"}');
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352", "arrival_date": "infinity"}');
\set VERBOSITY default
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352", "commercial_status": "SOLD"}');
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352", "model_year": 99999}');

-- A writer's operator in its search_path never runs with the owner's rights.
CREATE ROLE stocktech_regress_writer IN ROLE stocktech_sync_writer;
CREATE SCHEMA regress_hack AUTHORIZATION stocktech_regress_writer;
SET ROLE stocktech_regress_writer;
CREATE TABLE regress_hack.calls (who text);
CREATE FUNCTION regress_hack.spy(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_hack.calls VALUES (current_user);
    RETURN pg_catalog.texteq(a, b);
END $$;
CREATE OPERATOR regress_hack.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_hack.spy);
SET search_path = regress_hack, pg_catalog;
UPDATE stocktech_sync.vin_master SET pdi_status = 'in_progress'
WHERE vin OPERATOR(pg_catalog.=) 'WVWZZZ1KZAW000001';
RESET search_path;
SELECT who, count(*) FROM regress_hack.calls GROUP BY who ORDER BY who;
RESET ROLE;
DROP SCHEMA regress_hack CASCADE;
DROP ROLE stocktech_regress_writer;

-- Inbound dead letters can be discarded and retried by the admin.
DELETE FROM stocktech_sync.inbound_dead_letter;
SELECT stocktech_sync.apply_erp_batch('[{"vin": "WVWZZZ1KZAW000009", "commercial_status": "gone"},
                                        {"vin": "WVWZZZ1KZAW000010", "commercial_status": "gone"}]')
       ->> 'dead_lettered' AS dead_lettered;
SET ROLE stocktech_sync_admin;
SELECT stocktech_sync.discard_inbound(min(id), 'status code retired in the ERP')
FROM stocktech_sync.inbound_dead_letter;
SELECT stocktech_sync.retry_inbound(max(id)) FROM stocktech_sync.inbound_dead_letter;
RESET ROLE;
UPDATE stocktech_sync.inbound_dead_letter SET record = '{"vin": "WVWZZZ1KZAW000010", "commercial_status": "sold"}'
WHERE status = 'open';
SET ROLE stocktech_sync_admin;
SELECT stocktech_sync.retry_inbound(max(id)) ->> 'created' AS created
FROM stocktech_sync.inbound_dead_letter;
RESET ROLE;
SELECT status, resolution FROM stocktech_sync.inbound_dead_letter ORDER BY id;
SELECT detail ->> 'action' AS action FROM stocktech_sync.audit_log
WHERE event = 'operator_action' ORDER BY id;
