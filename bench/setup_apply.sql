-- setup_apply.sql
--    The starting state of the apply and local-update benchmarks, built
--    through the extension, and the ERP records of the measured run.
--    psql variables: vehicles (number of vehicles), batch_size (records per
--    apply_erp_batch call).
--
-- Steps:
--  1. The ERP creates :vehicles vehicles with all 18 governed fields
--     (apply_erp_batch, :batch_size records per call).  The policy makes
--     the engine ignore the StockTech-owned fields on the way in.
--  2. StockTech sets its own fields with one local UPDATE through the guard
--     trigger: maintenance, PDI, customs evidence and odometer for every
--     vehicle, and a yard location of its own for one vehicle in three, so
--     the merge strategy meets both-sides changes.
--  3. One vehicle in twenty goes into transit (a local UPDATE), so inbound
--     values for its frozen fields are deferred.
--  4. The result is kept in bench.snapshot_vin_master; every measured run
--     starts from it.
--  5. The changed records: for every vehicle and each of the 18 fields, the
--     stored value, or with probability 0.3 a new one (for the transit flag,
--     its negation).

\set ON_ERROR_STOP on

SELECT stocktech_sync.set_mode('hybrid');

INSERT INTO bench.vehicles (id, vin, v)
SELECT id, vin, v FROM bench.initial_vehicles(:vehicles);
ANALYZE bench.vehicles;

-- 1. The ERP creates the vehicles.
CREATE TABLE bench.initial_records AS
SELECT id, vin, (v).* FROM bench.vehicles;
CALL bench.make_batches('initial', 'bench.initial_records', :batch_size);
SELECT clock_timestamp() AS started \gset
CALL bench.apply_batches('extension', 'initial');
SELECT round(extract(epoch FROM clock_timestamp() - :'started'::timestamptz)::numeric, 2)
       AS initial_load_seconds \gset

-- 2. StockTech's own values, through the guard trigger.
SELECT clock_timestamp() AS started \gset
UPDATE stocktech_sync.vin_master AS m
   SET maint_status = (x.v).maint_status,
       pdi_status = (x.v).pdi_status,
       customs_evidence = (x.v).customs_evidence,
       odometer_km = (x.v).odometer_km,
       warehouse_location = CASE WHEN bench.h(x.id, 90) % 3 = 0
                                 THEN 'L' || bench.h(x.id, 91) % 20 || '-' || bench.h(x.id, 92) % 500
                                 ELSE m.warehouse_location END
  FROM bench.vehicles AS x
 WHERE x.vin = m.vin;
SELECT round(extract(epoch FROM clock_timestamp() - :'started'::timestamptz)::numeric, 2)
       AS local_update_seconds \gset

-- 3. Some vehicles are in transit.
UPDATE stocktech_sync.vin_master AS m
   SET vitw_in_transit = true
  FROM bench.vehicles AS x
 WHERE x.vin = m.vin AND x.id % 20 = 0;

-- 4. The starting state.
CREATE TABLE bench.snapshot_vin_master AS TABLE stocktech_sync.vin_master;
ALTER TABLE bench.snapshot_vin_master ADD PRIMARY KEY (vin);

-- VINs of vehicles not in transit, numbered densely for pgbench's random().
CREATE TABLE bench.local_vins AS
SELECT row_number() OVER (ORDER BY s.vin)::integer AS n, s.vin
FROM bench.snapshot_vin_master AS s
WHERE NOT s.vitw_in_transit;
ALTER TABLE bench.local_vins ADD PRIMARY KEY (n);

-- 5. The ERP's next export: each field changed with probability 0.3.
CREATE TABLE bench.changed_records AS
SELECT x.id, s.vin,
       CASE WHEN bench.h(x.id, 301) % 10 < 3 THEN (n.v).model_code ELSE s.model_code END AS model_code,
       CASE WHEN bench.h(x.id, 302) % 10 < 3 THEN (n.v).model_year ELSE s.model_year END AS model_year,
       CASE WHEN bench.h(x.id, 303) % 10 < 3 THEN (n.v).version_code ELSE s.version_code END AS version_code,
       CASE WHEN bench.h(x.id, 304) % 10 < 3 THEN (n.v).color_code ELSE s.color_code END AS color_code,
       CASE WHEN bench.h(x.id, 305) % 10 < 3 THEN (n.v).engine_number ELSE s.engine_number END AS engine_number,
       CASE WHEN bench.h(x.id, 306) % 10 < 3 THEN (n.v).dealer_code ELSE s.dealer_code END AS dealer_code,
       CASE WHEN bench.h(x.id, 307) % 10 < 3 THEN (n.v).commercial_status ELSE s.commercial_status END AS commercial_status,
       CASE WHEN bench.h(x.id, 308) % 10 < 3 THEN (n.v).financial_status ELSE s.financial_status END AS financial_status,
       CASE WHEN bench.h(x.id, 309) % 10 < 3 THEN (n.v).list_price ELSE s.list_price END AS list_price,
       CASE WHEN bench.h(x.id, 310) % 10 < 3 THEN (n.v).sales_order ELSE s.sales_order END AS sales_order,
       CASE WHEN bench.h(x.id, 311) % 10 < 3 THEN (n.v).customer_ref ELSE s.customer_ref END AS customer_ref,
       CASE WHEN bench.h(x.id, 312) % 10 < 3 THEN (n.v).warehouse_location ELSE s.warehouse_location END AS warehouse_location,
       CASE WHEN bench.h(x.id, 313) % 10 < 3 THEN (n.v).maint_status ELSE s.maint_status END AS maint_status,
       CASE WHEN bench.h(x.id, 314) % 10 < 3 THEN (n.v).pdi_status ELSE s.pdi_status END AS pdi_status,
       CASE WHEN bench.h(x.id, 315) % 10 < 3 THEN NOT s.vitw_in_transit ELSE s.vitw_in_transit END AS vitw_in_transit,
       CASE WHEN bench.h(x.id, 316) % 10 < 3 THEN (n.v).customs_evidence ELSE s.customs_evidence END AS customs_evidence,
       CASE WHEN bench.h(x.id, 317) % 10 < 3 THEN (n.v).arrival_date ELSE s.arrival_date END AS arrival_date,
       CASE WHEN bench.h(x.id, 318) % 10 < 3 THEN (n.v).odometer_km ELSE s.odometer_km END AS odometer_km
FROM bench.vehicles AS x
JOIN bench.snapshot_vin_master AS s USING (vin)
-- OFFSET 0 keeps the subquery, so vehicle_values() runs once per vehicle
-- and not once per field reference.
CROSS JOIN LATERAL (SELECT bench.vehicle_values(x.id, 2) AS v OFFSET 0) AS n;
CALL bench.make_batches('changed', 'bench.changed_records', :batch_size);

-- The share of field values that differ from the stored row, measured.
CREATE TABLE bench.data_set_facts AS
SELECT :vehicles::integer AS vehicles,
       :batch_size::integer AS batch_size,
       :initial_load_seconds::numeric AS initial_load_seconds,
       :local_update_seconds::numeric AS local_update_seconds,
       (SELECT count(*) FROM bench.snapshot_vin_master WHERE vitw_in_transit) AS in_transit,
       (SELECT count(*) FROM bench.snapshot_vin_master WHERE check_digit_verified)
           AS north_american,
       (SELECT round(avg(((j.c -> g.f) IS DISTINCT FROM (j.s -> g.f))::integer), 4)
        FROM bench.changed_records AS c
        JOIN bench.snapshot_vin_master AS s USING (vin)
        CROSS JOIN LATERAL (SELECT to_jsonb(c) AS c, to_jsonb(s) AS s) AS j
        CROSS JOIN stocktech_sync.governed_fields() AS g (f, t)) AS changed_share,
       (SELECT pg_size_pretty(avg(length(records::text))::bigint)
        FROM bench.erp_batches WHERE data_set = 'changed') AS batch_text_size;
