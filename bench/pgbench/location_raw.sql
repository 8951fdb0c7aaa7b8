-- The same yard location change as location_extension.sql on
-- bench.vin_raw, the copy of vin_master without triggers.
\set n random(1, :vehicles)
\set location random(1, 999999)
UPDATE bench.vin_raw
   SET warehouse_location = 'B-' || (:location)::text
 WHERE vin = (SELECT vin FROM bench.local_vins WHERE n = :n);
