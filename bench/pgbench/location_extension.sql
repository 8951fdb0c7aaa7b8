-- A local yard location change (strategy merge) of a random vehicle not in
-- transit, through the guard trigger of stocktech_sync.vin_master.
\set n random(1, :vehicles)
\set location random(1, 999999)
UPDATE stocktech_sync.vin_master
   SET warehouse_location = 'B-' || (:location)::text
 WHERE vin = (SELECT vin FROM bench.local_vins WHERE n = :n);
