-- The demo: install the extension, load a few vehicles, show the
-- configuration.
\pset footer off
CREATE EXTENSION stocktech_sync;

\echo
\echo '== Loaded vehicles'
INSERT INTO stocktech_sync.vin_master (vin, pdi_status, maint_status, warehouse_location)
VALUES ('1ft1rkfmxrk330792 ', 'pending', 'none', 'A-01'),
       ('WVWZZZ3CZPE512349', 'passed', 'in_service', 'B-07'),
       ('9BWZZZ372VT004251', 'in_progress', 'none', 'C-12'),
       ('1HGCM82633A004352', 'pending', 'scheduled', 'A-02');
SELECT vin, check_digit_verified, pdi_status, maint_status, warehouse_location
FROM stocktech_sync.vin_master ORDER BY vin;

\echo '== A VIN with a wrong check digit is rejected'
SELECT * FROM stocktech_sync.check_vin('1FT1RKFM1RK330792');

\echo '== Active conflict policy'
SELECT v.version, f.field, f.erp_access, f.stocktech_access, f.strategy,
       f.locked_in_transit, f.outbound
FROM stocktech_sync.policy_fields f
JOIN stocktech_sync.policy_versions v ON v.version = f.version AND v.is_active
ORDER BY array_position(ARRAY(SELECT field FROM stocktech_sync.governed_fields()), f.field);

\echo '== Mode'
SELECT stocktech_sync.set_mode('hybrid');
SELECT stocktech_sync.current_mode() AS mode;
SELECT logged_at, event, actor, decisions FROM stocktech_sync.audit_log ORDER BY id;
