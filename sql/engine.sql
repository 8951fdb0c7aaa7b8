-- The policy engine on ERP records and local writes, with policy 3.2.
SELECT stocktech_sync.set_mode('hybrid');
DELETE FROM stocktech_sync.vin_master;

-- A helper that prints one record's decisions compactly.
CREATE FUNCTION pg_temp.decisions(result jsonb)
RETURNS TABLE (field text, decision text, old text, new text)
LANGUAGE sql AS $$
    SELECT d ->> 'field', d ->> 'decision', d ->> 'old', d ->> 'new'
    FROM jsonb_array_elements(result -> 'decisions') AS d ORDER BY 1;
$$;

-- The ERP creates the vehicle.
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "model_code": "F150", "model_year": 2024,
      "commercial_status": "available", "financial_status": "floorplan",
      "list_price": "48990.5", "dealer_code": "D100", "arrival_date": "2026-11-20",
      "maint_status": "scheduled"}'));
SELECT vin, model_code, model_year, commercial_status, list_price, maint_status,
       last_source, row_version, erp_baseline ->> 'commercial_status' AS baseline_status
FROM stocktech_sync.vin_master;

-- Canonical values do not depend on the session's DateStyle: the same date
-- sent under another style is unchanged, and the baseline stays ISO.
SET datestyle = 'SQL, DMY';
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "arrival_date": "2026-11-20"}'));
RESET datestyle;
SELECT erp_baseline ->> 'arrival_date' AS baseline_date FROM stocktech_sync.vin_master;

-- The floor puts the vehicle into maintenance.
UPDATE stocktech_sync.vin_master SET maint_status = 'in_service', warehouse_location = 'WS-3'
WHERE vin = '1FT1RKFMXRK330792';
SELECT maint_status, warehouse_location, last_source, row_version,
       local_changed_at ? 'maint_status' AS maint_change_recorded
FROM stocktech_sync.vin_master;

-- The ERP says sold while the floor has it in maintenance: the sale is
-- applied, the maintenance state stays.
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "commercial_status": "sold", "maint_status": "none"}'));
SELECT commercial_status, maint_status FROM stocktech_sync.vin_master;
SELECT event, source, policy_version, field, old_value, new_value, incoming_value, decision
FROM stocktech_sync.audit_decisions
WHERE vin = '1FT1RKFMXRK330792' AND field IN ('commercial_status', 'maint_status')
ORDER BY audit_id, position;

-- Local writes the matrix rejects, each with its message.
UPDATE stocktech_sync.vin_master SET model_code = 'F250';
UPDATE stocktech_sync.vin_master SET list_price = 1;
UPDATE stocktech_sync.vin_master SET vin = '1HGCM82633A004352';
UPDATE stocktech_sync.vin_master SET erp_baseline = '{}';
UPDATE stocktech_sync.vin_master SET row_version = 99;
INSERT INTO stocktech_sync.vin_master (vin, model_code) VALUES ('1HGCM82633A004352', 'ACCORD');
-- Local writes the matrix accepts: shared fields and StockTech fields.
UPDATE stocktech_sync.vin_master SET commercial_status = 'reserved', pdi_status = 'passed',
                                     odometer_km = 12;
SELECT commercial_status, pdi_status, odometer_km FROM stocktech_sync.vin_master;
-- The ERP sending its old value again (an overlap re-read) does not undo
-- the local change; a new ERP value does.
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "commercial_status": "sold"}'));
SELECT commercial_status FROM stocktech_sync.vin_master;
-- Writing the same values again decides nothing and audits nothing.
SELECT count(*) AS audit_rows_before FROM stocktech_sync.audit_log WHERE vin IS NOT NULL;
UPDATE stocktech_sync.vin_master SET pdi_status = 'passed';
SELECT count(*) AS audit_rows_after FROM stocktech_sync.audit_log WHERE vin IS NOT NULL;

-- read_only: the ERP is master of every field it supplies.
SELECT stocktech_sync.set_mode('read_only');
UPDATE stocktech_sync.vin_master SET commercial_status = 'blocked';
UPDATE stocktech_sync.vin_master SET arrival_date = '2026-12-01';
UPDATE stocktech_sync.vin_master SET pdi_status = 'failed';
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "commercial_status": "invoiced", "pdi_status": "pending", "model_code": "F150",
      "arrival_date": "2026-11-21"}'));
-- hybrid again: the same local write is accepted; nothing was lost.
SELECT stocktech_sync.set_mode('hybrid');
UPDATE stocktech_sync.vin_master SET commercial_status = 'blocked';
SELECT commercial_status, pdi_status, arrival_date FROM stocktech_sync.vin_master;
SELECT stocktech_sync.set_mode('manual');
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "commercial_status": "delivered"}'));
SELECT stocktech_sync.set_mode('hybrid');

-- Merge: both sides changed since the baseline.
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "warehouse_location": "WS-3"}'));
UPDATE stocktech_sync.vin_master SET warehouse_location = 'B-12';
-- The ERP change is older than the local one: the local value stays.
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "warehouse_location": "C-01"}', 'manual',
    now() - interval '1 hour'));
-- Sent again, the ERP value is no longer a change: the local value stays.
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "warehouse_location": "C-01"}'));
-- A newer ERP change wins the next conflict.
UPDATE stocktech_sync.vin_master SET warehouse_location = 'B-13';
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "warehouse_location": "D-02"}', 'manual',
    now() + interval '1 hour'));
SELECT field, decision, incoming_value, new_value, reason FROM stocktech_sync.vin_history('1ft1rkfmxrk330792')
WHERE decision = 'conflict_resolved';

-- Transit: frozen fields reject local writes and defer ERP values.
UPDATE stocktech_sync.vin_master SET vitw_in_transit = true;
UPDATE stocktech_sync.vin_master SET warehouse_location = 'TRUCK';
UPDATE stocktech_sync.vin_master SET odometer_km = 40;
UPDATE stocktech_sync.vin_master SET commercial_status = 'available';
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "warehouse_location": "YARD-1", "maint_status": "done",
      "odometer_km": 41, "commercial_status": "reserved", "vitw_in_transit": false}'));
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "warehouse_location": "YARD-2"}'));
SELECT field, value, source FROM stocktech_sync.deferred_changes ORDER BY id;
SELECT warehouse_location, maint_status, odometer_km, vitw_in_transit
FROM stocktech_sync.vin_master;
-- Arrival: the deferred values are decided in arrival order, in the same
-- transaction as the write that ends transit.
UPDATE stocktech_sync.vin_master SET vitw_in_transit = false, pdi_status = 'pending';
SELECT warehouse_location, maint_status, odometer_km, vitw_in_transit, pdi_status
FROM stocktech_sync.vin_master;
SELECT count(*) AS deferred_left FROM stocktech_sync.deferred_changes;
SELECT event, source, field, old_value, new_value, incoming_value, decision
FROM stocktech_sync.audit_decisions WHERE event = 'deferred_apply' ORDER BY audit_id, position;

-- explain agrees with the real decision and changes nothing.
SELECT stocktech_sync.explain('1FT1RKFMXRK330792', 'commercial_status', 'invoiced')
       - 'reason' AS explained;
SELECT row_version AS version_before FROM stocktech_sync.vin_master;
SELECT * FROM pg_temp.decisions(stocktech_sync.apply_erp_record(
    '{"vin": "1FT1RKFMXRK330792", "commercial_status": "invoiced"}'));
SELECT stocktech_sync.explain('1FT1RKFMXRK330792', 'model_code', 'X', 'stocktech')
       ->> 'decision' AS local_model_code,
       stocktech_sync.explain('1FT1RKFMXRK330792', 'maint_status', 'done', 'erp')
       ->> 'decision' AS erp_maint_status,
       stocktech_sync.explain('1FT1RKFMXRK330792', 'vitw_in_transit', 'true', 'erp')
       ->> 'decision' AS erp_transit;
SELECT stocktech_sync.explain('1FT1RKFMXRK330792', 'colour', 'red');
SELECT stocktech_sync.explain('1FT1RKFMXRK330792', 'maint_status', 'done', 'floor');

-- A rolled-back change leaves no audit row; a rejected write leaves none.
SELECT count(*) AS audit_rows FROM stocktech_sync.audit_log;
BEGIN;
UPDATE stocktech_sync.vin_master SET pdi_status = 'in_progress';
SELECT stocktech_sync.apply_erp_record('{"vin": "1FT1RKFMXRK330792", "dealer_code": "D200"}')
       -> 'decisions' -> 0 ->> 'decision' AS decision;
ROLLBACK;
UPDATE stocktech_sync.vin_master SET model_code = 'NOPE';
SELECT count(*) AS audit_rows FROM stocktech_sync.audit_log;

-- Every kind of decision of a committed change is in the audit log.
SELECT decision, count(*) > 0 AS audited FROM stocktech_sync.audit_decisions
WHERE vin = '1FT1RKFMXRK330792' GROUP BY decision ORDER BY decision;
SELECT policy_version, count(*) FROM stocktech_sync.audit_log WHERE vin IS NOT NULL
GROUP BY policy_version;

-- Deleting a vehicle is audited with its last values.
DELETE FROM stocktech_sync.vin_master;
SELECT event, detail, jsonb_array_length(decisions) AS fields
FROM stocktech_sync.audit_log ORDER BY id DESC LIMIT 1;
