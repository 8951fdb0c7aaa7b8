-- The same yard location change as location_extension.sql on
-- bench.vin_checked, the copy of vin_master with its CHECK constraints and
-- no triggers.
\set n random(1, :vehicles)
\set location random(1, 999999)
UPDATE bench.vin_checked
   SET warehouse_location = 'B-' || (:location)::text
 WHERE vin = (SELECT vin FROM bench.local_vins WHERE n = :n);
