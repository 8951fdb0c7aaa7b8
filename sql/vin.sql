-- VIN normalisation and validation.

-- Valid North American VIN whose check digit is X.
SELECT stocktech_sync.normalize_vin('1FT1RKFMXRK330792');
-- Lowercase with spaces around is normalised.
SELECT stocktech_sync.normalize_vin('  1ft1rkfmxrk330792  ');
-- Wrong check digit: 1 instead of X.
SELECT stocktech_sync.normalize_vin('1FT1RKFM1RK330792');
-- Two characters swapped: the check digit catches it.
SELECT stocktech_sync.normalize_vin('3VWP5LHY7PD190281');
-- Letters I, O and Q.
SELECT stocktech_sync.normalize_vin('1FTIRKFMXRK330792');
SELECT stocktech_sync.normalize_vin('1FT1RKFMXRK33O792');
SELECT stocktech_sync.normalize_vin('QFT1RKFMXRK330792');
-- 16 and 18 characters.
SELECT stocktech_sync.normalize_vin('1FT1RKFMXRK33079');
SELECT stocktech_sync.normalize_vin('1FT1RKFMXRK3307921');
-- Other characters and the empty VIN.
SELECT stocktech_sync.normalize_vin('1FT1RK-MXRK330792');
SELECT stocktech_sync.normalize_vin('   ');
-- NULL in, NULL out.
SELECT stocktech_sync.normalize_vin(NULL) IS NULL AS null_vin;

-- European VIN with a letter in position 9: accepted, unverified.
SELECT stocktech_sync.normalize_vin('WVWZZZ3CZPE512349');
-- The same rejected when strict.
SELECT stocktech_sync.normalize_vin('WVWZZZ3CZPE512349', strict => true);
-- Brazilian VIN starting with 9.
SELECT stocktech_sync.normalize_vin('9BWZZZ377VT004251');

-- check_vin reports instead of raising.
SELECT * FROM stocktech_sync.check_vin('1FT1RKFMXRK330792');
SELECT * FROM stocktech_sync.check_vin('1FT1RKFM1RK330792');
SELECT * FROM stocktech_sync.check_vin('3VWP5LHY7PD190281');
SELECT * FROM stocktech_sync.check_vin('1ftirkfmxrk330792');
SELECT * FROM stocktech_sync.check_vin('1FT1RKFMXRK33079');
SELECT * FROM stocktech_sync.check_vin('WVWZZZ3CZPE512349');
SELECT * FROM stocktech_sync.check_vin('WVWZZZ3CZPE512349', true);
SELECT * FROM stocktech_sync.check_vin('9BWZZZ377VT004251');
SELECT * FROM stocktech_sync.check_vin('');

-- The strict setting is read when no argument is given, and audited.
SELECT stocktech_sync.set_vin_check(true);
SELECT valid, rule FROM stocktech_sync.check_vin('WVWZZZ3CZPE512349');
SELECT stocktech_sync.normalize_vin('WVWZZZ3CZPE512349');
SELECT stocktech_sync.set_vin_check(false);
SELECT valid, rule FROM stocktech_sync.check_vin('WVWZZZ3CZPE512349');
SELECT event, source, decisions FROM stocktech_sync.audit_log
WHERE decisions @> '[{"field": "strict_vin_check"}]' ORDER BY id;

-- The VIN master normalises new keys, records the check digit verification
-- and rejects invalid VINs and VIN changes.
INSERT INTO stocktech_sync.vin_master (vin) VALUES ('  1ft1rkfmxrk330792 ');
INSERT INTO stocktech_sync.vin_master (vin) VALUES ('WVWZZZ3CZPE512349');
SELECT vin, check_digit_verified, vitw_in_transit, row_version
FROM stocktech_sync.vin_master ORDER BY vin;
INSERT INTO stocktech_sync.vin_master (vin) VALUES ('1FT1RKFM1RK330792');
UPDATE stocktech_sync.vin_master SET vin = '1HGCM82633A004352' WHERE vin = '1FT1RKFMXRK330792';
DELETE FROM stocktech_sync.vin_master;
