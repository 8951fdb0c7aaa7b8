-- The same PDI status change as pdi_extension.sql on bench.vin_checked,
-- the copy of vin_master with its CHECK constraints and no triggers.
\set n random(1, :vehicles)
UPDATE bench.vin_checked
   SET pdi_status = CASE pdi_status WHEN 'passed' THEN 'in_progress'::stocktech_sync.pdi_status
                                    ELSE 'passed'::stocktech_sync.pdi_status END
 WHERE vin = (SELECT vin FROM bench.local_vins WHERE n = :n);
