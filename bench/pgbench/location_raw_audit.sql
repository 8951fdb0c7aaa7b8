-- The yard location change of location_raw.sql plus one audit row in the
-- same statement: the minimum work of an audited write without a trigger.
\set n random(1, :vehicles)
\set location random(1, 999999)
WITH changed AS (
    UPDATE bench.vin_raw
       SET warehouse_location = 'B-' || (:location)::text
     WHERE vin = (SELECT vin FROM bench.local_vins WHERE n = :n)
    RETURNING vin, warehouse_location
)
INSERT INTO bench.audit_raw (vin, event, source, policy_version, decisions)
SELECT vin, 'local_change', 'stocktech', '3.2',
       jsonb_build_array(jsonb_build_object('field', 'warehouse_location',
                                            'new', warehouse_location, 'decision', 'applied'))
FROM changed;
