-- A local PDI status change of a random vehicle not in transit, through
-- the guard trigger of stocktech_sync.vin_master.  The new value always
-- differs from the stored one, so every update is decided and audited.
\set n random(1, :vehicles)
UPDATE stocktech_sync.vin_master
   SET pdi_status = CASE pdi_status WHEN 'passed' THEN 'in_progress'::stocktech_sync.pdi_status
                                    ELSE 'passed'::stocktech_sync.pdi_status END
 WHERE vin = (SELECT vin FROM bench.local_vins WHERE n = :n);
