-- apply_erp_batch: each record in its own subtransaction; poison records go
-- to the dead letter with their reason and block nothing.
SELECT stocktech_sync.set_mode('hybrid');
SELECT stocktech_sync.apply_erp_batch($$[
  {"vin": "1HGCM82633A004352", "model_code": "ACCORD", "commercial_status": "available"},
  {"vin": "1FT1RKFM1RK330792", "model_code": "F150"},
  {"vin": "WVWZZZ3CZPE512349", "commercial_status": "gone"},
  {"vin": "WVWZZZ3CZPE512349", "colour": "red"},
  {"vin": "WVWZZZ3CZPE512349", "model_year": "twenty"},
  {"model_code": "NOVIN"},
  "not an object",
  {"vin": "WVWZZZ3CZPE512349", "model_code": "GOLF", "list_price": 25990.00},
  {"vin": "1HGCM82633A004352", "model_code": "ACCORD", "commercial_status": "available"},
  {"vin": "9BWZZZ377VT004251", "model_year": 1800}
]$$);
SELECT vin, model_code, commercial_status, list_price, check_digit_verified
FROM stocktech_sync.vin_master ORDER BY vin;
SELECT connector, source_ref, vin, reason, sqlstate, status, record
FROM stocktech_sync.inbound_dead_letter ORDER BY id;

-- Invalid calls.
SELECT stocktech_sync.apply_erp_batch('{"vin": "x"}');
SELECT stocktech_sync.apply_erp_batch('[]', 'no_such_connector');
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352"}', 'no_such_connector');
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352", "model_code": ["a"]}');
SELECT stocktech_sync.apply_erp_record('[1, 2]');

-- Only the admin may apply ERP records.
SET ROLE stocktech_sync_writer;
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352"}');
RESET ROLE;
SET ROLE stocktech_sync_admin;
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352", "dealer_code": "D1"}')
       -> 'decisions' -> 0 ->> 'decision' AS admin_decision;
RESET ROLE;
-- A writer's local change is audited, although the writer cannot insert
-- into the audit log itself; the actor is the session user.
SET ROLE stocktech_sync_writer;
UPDATE stocktech_sync.vin_master SET pdi_status = 'passed' WHERE vin = '1HGCM82633A004352';
RESET ROLE;
SELECT actor = session_user AS session_actor, event FROM stocktech_sync.audit_log
ORDER BY id DESC LIMIT 1;
