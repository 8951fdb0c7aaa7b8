-- The PDI status change of pdi_raw.sql plus one audit row in the same
-- statement: the minimum work of an audited write without a trigger.
\set n random(1, :vehicles)
WITH changed AS (
    UPDATE bench.vin_raw
       SET pdi_status = CASE pdi_status WHEN 'passed' THEN 'in_progress'::stocktech_sync.pdi_status
                                        ELSE 'passed'::stocktech_sync.pdi_status END
     WHERE vin = (SELECT vin FROM bench.local_vins WHERE n = :n)
    RETURNING vin, pdi_status
)
INSERT INTO bench.audit_raw (vin, event, source, policy_version, decisions)
SELECT vin, 'local_change', 'stocktech', '3.2',
       jsonb_build_array(jsonb_build_object('field', 'pdi_status', 'new', pdi_status,
                                            'decision', 'applied'))
FROM changed;
