-- The upgrade chain: install the oldest version, then walk every upgrade
-- script to the default version.
DROP EXTENSION stocktech_sync;
CREATE EXTENSION stocktech_sync VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'stocktech_sync';
SELECT tgname FROM pg_trigger
WHERE tgrelid = 'stocktech_sync.vin_master'::regclass AND NOT tgisinternal ORDER BY tgname;
INSERT INTO stocktech_sync.vin_master (vin, model_code) VALUES ('1HGCM82633A004352', 'ACCORD');

ALTER EXTENSION stocktech_sync UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'stocktech_sync';
SELECT tgname FROM pg_trigger
WHERE tgrelid = 'stocktech_sync.vin_master'::regclass AND NOT tgisinternal ORDER BY tgname;

-- Data written under 0.1.0 is still there and now governed by the policy.
SELECT vin, model_code, check_digit_verified FROM stocktech_sync.vin_master;
UPDATE stocktech_sync.vin_master SET model_code = 'CIVIC';
SELECT stocktech_sync.apply_erp_record('{"vin": "1HGCM82633A004352", "model_code": "CIVIC"}')
       -> 'decisions' -> 0 ->> 'decision' AS decision;

-- The upgraded schema matches a fresh install of the same version.
SELECT count(*) AS functions FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'stocktech_sync';
DROP EXTENSION stocktech_sync;
CREATE EXTENSION stocktech_sync;
SELECT count(*) AS functions FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'stocktech_sync';
