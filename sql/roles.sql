-- Role privileges: the reader reads, the writer writes vehicles, the admin
-- configures; nobody but the admin reads secrets.
INSERT INTO stocktech_sync.connector_secrets (connector, name, value)
VALUES ('manual', 'token', 'not-for-readers');

SET ROLE stocktech_sync_reader;
SELECT count(*) >= 0 AS reader_reads FROM stocktech_sync.vin_master;
SELECT count(*) AS reader_reads_policy FROM stocktech_sync.policy_fields;
INSERT INTO stocktech_sync.vin_master (vin) VALUES ('1HGCM82633A004352');
UPDATE stocktech_sync.vin_master SET pdi_status = 'passed';
SELECT * FROM stocktech_sync.connector_secrets;
SELECT stocktech_sync.set_mode('hybrid');
RESET ROLE;

SET ROLE stocktech_sync_writer;
INSERT INTO stocktech_sync.vin_master (vin) VALUES ('1HGCM82633A004352');
SELECT vin, created_by = session_user AS by_session FROM stocktech_sync.vin_master;
SELECT * FROM stocktech_sync.connector_secrets;
DELETE FROM stocktech_sync.vin_master;
SELECT stocktech_sync.set_mode('hybrid');
SELECT stocktech_sync.publish_policy('5.0', '[]', 'writer');
INSERT INTO stocktech_sync.audit_log (event, source) VALUES ('local_change', 'stocktech');
RESET ROLE;

SET ROLE stocktech_sync_admin;
SELECT connector, name FROM stocktech_sync.connector_secrets;
SELECT stocktech_sync.set_mode('hybrid');
SELECT stocktech_sync.set_mode('manual');
RESET ROLE;

-- A role without any grant sees nothing.
CREATE ROLE stocktech_regress_nobody;
SET ROLE stocktech_regress_nobody;
SELECT count(*) FROM stocktech_sync.vin_master;
SELECT stocktech_sync.current_mode();
RESET ROLE;
DROP ROLE stocktech_regress_nobody;
DELETE FROM stocktech_sync.connector_secrets;
