-- harness.sql
--    Tables and procedures that bench/run.sh drives.  They contain the apply
--    data set and the untriggered copies of vin_master, apply the batches
--    with each engine, reset the tables to the starting state, and check
--    that the PL/pgSQL baseline ends in the same state as the extension.
--
-- Requires bench/data.sql, bench/plpgsql_engine.sql and the extension.

-- Every figure bench/run.sh measures, one row per repetition.
CREATE TABLE bench.measurements (
    benchmark text NOT NULL,
    variant text NOT NULL,
    repetition integer NOT NULL,
    seconds numeric,
    tps numeric,
    latency_ms numeric,
    peak_rss_kb bigint,
    peak_anon_kb bigint,
    load_average numeric,
    PRIMARY KEY (benchmark, variant, repetition)
);

-- The vehicles of the apply benchmark with their first ERP values.
CREATE TABLE bench.vehicles (
    id integer PRIMARY KEY,
    vin text NOT NULL UNIQUE,
    v bench.vehicle NOT NULL
);

-- ERP records as the engines receive them, in batches.
CREATE TABLE bench.erp_batches (
    data_set text NOT NULL,
    batch_number integer NOT NULL,
    records jsonb NOT NULL,
    PRIMARY KEY (data_set, batch_number)
);

-- The counts each engine returned per batch.
CREATE TABLE bench.batch_counts (
    engine text NOT NULL,
    data_set text NOT NULL,
    batch_number integer NOT NULL,
    counts jsonb
);

-- The untriggered copy of vin_master: the physical limit of an upsert.
CREATE TABLE bench.vin_raw (
    LIKE stocktech_sync.vin_master INCLUDING DEFAULTS,
    PRIMARY KEY (vin)
);
-- The untriggered copy with the CHECK constraints of vin_master, for the
-- local benchmark: it separates the cost of the constraints from the
-- trigger's.
CREATE TABLE bench.vin_checked (
    LIKE stocktech_sync.vin_master INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (vin)
);

-- Audit rows of the raw upsert variants that write one.
CREATE TABLE bench.audit_raw (LIKE stocktech_sync.audit_log INCLUDING ALL);

-- The audit rows the extension wrote for the changed records, with the
-- decisions as uncompressed text, so the raw_full_audit variant inserts
-- the same bytes and parses and compresses them as the extension does.
CREATE TABLE bench.audit_payload (
    batch_number integer NOT NULL,
    vin text NOT NULL,
    policy_version text,
    connector text,
    profile_version integer,
    decisions text NOT NULL,
    detail jsonb
);
ALTER TABLE bench.audit_payload ALTER COLUMN decisions SET STORAGE EXTERNAL;
CREATE INDEX ON bench.audit_payload (batch_number);

-- Keep the audit rows of the extension's last apply run of the changed
-- records in bench.audit_payload.
CREATE PROCEDURE bench.save_audit_payload(batch_size integer)
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM bench.audit_payload;
    INSERT INTO bench.audit_payload
    SELECT (c.id - 1) / batch_size + 1, a.vin, a.policy_version, a.connector,
           a.profile_version, a.decisions::text, a.detail
    FROM stocktech_sync.audit_log AS a
    JOIN bench.changed_records AS c USING (vin)
    WHERE a.event = 'erp_record'
    ORDER BY a.id;
END
$$;

-- Build the batches of data_set from the rows of source (vin and the 18
-- governed fields), batch_size records per batch, in id order.
CREATE PROCEDURE bench.make_batches(data_set text, source regclass, batch_size integer)
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM bench.erp_batches AS b WHERE b.data_set = make_batches.data_set;
    EXECUTE format(
        'INSERT INTO bench.erp_batches (data_set, batch_number, records) '
        'SELECT %L, (s.id - 1) / %s + 1, jsonb_agg(to_jsonb(s) - ''id'' ORDER BY s.id) '
        'FROM %s AS s GROUP BY 2', data_set, batch_size, source);
END
$$;

-- Apply every batch of data_set with engine, one transaction per batch:
--   extension  stocktech_sync.apply_erp_batch()
--   plpgsql    bench.plpgsql_apply_batch()
--   raw        INSERT ... ON CONFLICT (vin) DO UPDATE of all 18 fields into bench.vin_raw
--   raw_audit  the same upsert plus one bench.audit_raw row per record
--              holding the record
--   raw_full_audit  the same upsert plus the extension's own audit rows
--              for the batch, from bench.audit_payload
CREATE PROCEDURE bench.apply_batches(engine text, data_set text)
LANGUAGE plpgsql
AS $$
DECLARE
    batch integer;
    records jsonb;
    counts jsonb;
BEGIN
    IF engine NOT IN ('extension', 'plpgsql', 'raw', 'raw_audit', 'raw_full_audit') THEN
        RAISE EXCEPTION 'unknown engine "%"', engine
            USING HINT = 'Use extension, plpgsql, raw, raw_audit or raw_full_audit.';
    END IF;
    FOR batch IN
        SELECT b.batch_number FROM bench.erp_batches AS b
        WHERE b.data_set = apply_batches.data_set
        ORDER BY b.batch_number
    LOOP
        SELECT b.records INTO records FROM bench.erp_batches AS b
        WHERE b.data_set = apply_batches.data_set AND b.batch_number = batch;

        counts := NULL;
        IF engine = 'extension' THEN
            counts := stocktech_sync.apply_erp_batch(records, 'manual');
        ELSIF engine = 'plpgsql' THEN
            counts := bench.plpgsql_apply_batch(records, 'manual');
        ELSE
            INSERT INTO bench.vin_raw AS t
                (vin, model_code, model_year, version_code, color_code, engine_number,
                 dealer_code, commercial_status, financial_status, list_price, sales_order,
                 customer_ref, warehouse_location, maint_status, pdi_status, vitw_in_transit,
                 customs_evidence, arrival_date, odometer_km, last_source)
            SELECT r.vin, r.model_code, r.model_year, r.version_code, r.color_code,
                   r.engine_number, r.dealer_code, r.commercial_status, r.financial_status,
                   r.list_price, r.sales_order, r.customer_ref, r.warehouse_location,
                   r.maint_status, r.pdi_status, r.vitw_in_transit, r.customs_evidence,
                   r.arrival_date, r.odometer_km, 'erp'
            FROM jsonb_populate_recordset(NULL::bench.vin_raw, records) AS r
            ON CONFLICT (vin) DO UPDATE
               SET model_code = excluded.model_code, model_year = excluded.model_year,
                   version_code = excluded.version_code, color_code = excluded.color_code,
                   engine_number = excluded.engine_number, dealer_code = excluded.dealer_code,
                   commercial_status = excluded.commercial_status,
                   financial_status = excluded.financial_status,
                   list_price = excluded.list_price, sales_order = excluded.sales_order,
                   customer_ref = excluded.customer_ref,
                   warehouse_location = excluded.warehouse_location,
                   maint_status = excluded.maint_status, pdi_status = excluded.pdi_status,
                   vitw_in_transit = excluded.vitw_in_transit,
                   customs_evidence = excluded.customs_evidence,
                   arrival_date = excluded.arrival_date, odometer_km = excluded.odometer_km,
                   last_source = 'erp', updated_at = now();
            IF engine = 'raw_audit' THEN
                INSERT INTO bench.audit_raw (vin, event, source, policy_version, connector,
                                             source_ts, decisions)
                SELECT e.value ->> 'vin', 'erp_record', 'erp', '3.2', 'manual', now(),
                       jsonb_build_array(e.value)
                FROM jsonb_array_elements(records) AS e;
            ELSIF engine = 'raw_full_audit' THEN
                INSERT INTO bench.audit_raw (vin, event, source, policy_version, connector,
                                             profile_version, source_ts, decisions, detail)
                SELECT p.vin, 'erp_record', 'erp', p.policy_version, p.connector,
                       p.profile_version, now(), p.decisions::jsonb, p.detail
                FROM bench.audit_payload AS p
                WHERE p.batch_number = batch;
            END IF;
        END IF;

        INSERT INTO bench.batch_counts VALUES (engine, data_set, batch, counts);
        COMMIT;
    END LOOP;
END
$$;

-- Put engine's tables back into the starting state: the snapshot rows (or
-- no rows, when with_snapshot is false), and empty audit, deferred and
-- dead-letter tables.  The guard trigger does not fire while
-- session_replication_role is replica.
CREATE PROCEDURE bench.reset_target(engine text, with_snapshot boolean DEFAULT true)
LANGUAGE plpgsql
AS $$
BEGIN
    SET LOCAL session_replication_role = replica;
    IF engine = 'extension' THEN
        TRUNCATE stocktech_sync.deferred_changes, stocktech_sync.vin_master,
                 stocktech_sync.audit_log, stocktech_sync.inbound_dead_letter RESTART IDENTITY;
        IF with_snapshot THEN
            INSERT INTO stocktech_sync.vin_master SELECT * FROM bench.snapshot_vin_master;
        END IF;
    ELSIF engine = 'plpgsql' THEN
        TRUNCATE bench.deferred_plpgsql, bench.vin_plpgsql, bench.audit_plpgsql,
                 bench.dead_letter_plpgsql RESTART IDENTITY;
        IF with_snapshot THEN
            INSERT INTO bench.vin_plpgsql SELECT * FROM bench.snapshot_vin_master;
        END IF;
    ELSIF engine IN ('raw', 'raw_audit', 'raw_full_audit') THEN
        TRUNCATE bench.vin_raw, bench.audit_raw RESTART IDENTITY;
        IF with_snapshot THEN
            INSERT INTO bench.vin_raw SELECT * FROM bench.snapshot_vin_master;
        END IF;
    ELSIF engine = 'raw_checked' THEN
        TRUNCATE bench.vin_checked;
        IF with_snapshot THEN
            INSERT INTO bench.vin_checked SELECT * FROM bench.snapshot_vin_master;
        END IF;
    ELSE
        RAISE EXCEPTION 'unknown engine "%"', engine
            USING HINT = 'Use extension, plpgsql, raw, raw_audit, raw_full_audit or raw_checked.';
    END IF;
    DELETE FROM bench.batch_counts AS c WHERE c.engine = reset_target.engine;
END
$$;

-- CSV rows loaded with COPY for the import baseline, typed like vin_master.
CREATE TABLE bench.csv_staging (
    vin text,
    model_code text,
    model_year smallint,
    version_code text,
    color_code text,
    engine_number text,
    dealer_code text,
    commercial_status stocktech_sync.commercial_status,
    financial_status stocktech_sync.financial_status,
    list_price numeric(15,2),
    sales_order text,
    customer_ref text,
    warehouse_location text,
    maint_status stocktech_sync.maint_status,
    pdi_status stocktech_sync.pdi_status,
    vitw_in_transit boolean,
    customs_evidence text,
    arrival_date date,
    odometer_km integer
);

-- The import baseline after COPY: the raw upsert of every staged row.
CREATE PROCEDURE bench.upsert_staging()
LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO bench.vin_raw AS t
        (vin, model_code, model_year, version_code, color_code, engine_number, dealer_code,
         commercial_status, financial_status, list_price, sales_order, customer_ref,
         warehouse_location, maint_status, pdi_status, vitw_in_transit, customs_evidence,
         arrival_date, odometer_km, last_source)
    SELECT s.vin, s.model_code, s.model_year, s.version_code, s.color_code, s.engine_number,
           s.dealer_code, s.commercial_status, s.financial_status, s.list_price, s.sales_order,
           s.customer_ref, s.warehouse_location, s.maint_status, s.pdi_status,
           s.vitw_in_transit, s.customs_evidence, s.arrival_date, s.odometer_km, 'csv'
    FROM bench.csv_staging AS s
    ON CONFLICT (vin) DO UPDATE
       SET model_code = excluded.model_code, model_year = excluded.model_year,
           version_code = excluded.version_code, color_code = excluded.color_code,
           engine_number = excluded.engine_number, dealer_code = excluded.dealer_code,
           commercial_status = excluded.commercial_status,
           financial_status = excluded.financial_status, list_price = excluded.list_price,
           sales_order = excluded.sales_order, customer_ref = excluded.customer_ref,
           warehouse_location = excluded.warehouse_location,
           maint_status = excluded.maint_status, pdi_status = excluded.pdi_status,
           vitw_in_transit = excluded.vitw_in_transit,
           customs_evidence = excluded.customs_evidence, arrival_date = excluded.arrival_date,
           odometer_km = excluded.odometer_km, last_source = 'csv', updated_at = now();
END;

-- Count the differences between the extension's state and the PL/pgSQL
-- baseline's after both applied the same data set from the same snapshot.
-- It compares the rows of vin_master (all columns but created_at and
-- updated_at), the audit rows (all columns but the id, times and
-- transaction), the deferred changes and the counts of each batch.  Zero
-- everywhere means both made the same decisions.
CREATE FUNCTION bench.compare_engines(OUT item text, OUT compared bigint, OUT mismatches bigint)
RETURNS SETOF record
LANGUAGE sql
BEGIN ATOMIC
    WITH e AS (SELECT vin, to_jsonb(m) - 'created_at' - 'updated_at' AS r
               FROM stocktech_sync.vin_master AS m),
         p AS (SELECT vin, to_jsonb(m) - 'created_at' - 'updated_at' AS r
               FROM bench.vin_plpgsql AS m)
    SELECT 'vin_master rows', count(*), count(*) FILTER (WHERE e.r IS DISTINCT FROM p.r)
    FROM e FULL JOIN p USING (vin)
    UNION ALL
    SELECT 'audit rows',
           (SELECT count(*) FROM stocktech_sync.audit_log),
           (SELECT count(*) FROM (
               (SELECT vin, event, source, actor, policy_version, connector, profile_version,
                       decisions, detail FROM stocktech_sync.audit_log
                EXCEPT ALL
                SELECT vin, event, source, actor, policy_version, connector, profile_version,
                       decisions, detail FROM bench.audit_plpgsql)
               UNION ALL
               (SELECT vin, event, source, actor, policy_version, connector, profile_version,
                       decisions, detail FROM bench.audit_plpgsql
                EXCEPT ALL
                SELECT vin, event, source, actor, policy_version, connector, profile_version,
                       decisions, detail FROM stocktech_sync.audit_log)) AS d)
    UNION ALL
    SELECT 'deferred changes',
           (SELECT count(*) FROM stocktech_sync.deferred_changes),
           (SELECT count(*) FROM (
               (SELECT vin, field, value, source, connector FROM stocktech_sync.deferred_changes
                EXCEPT ALL
                SELECT vin, field, value, source, connector FROM bench.deferred_plpgsql)
               UNION ALL
               (SELECT vin, field, value, source, connector FROM bench.deferred_plpgsql
                EXCEPT ALL
                SELECT vin, field, value, source, connector
                FROM stocktech_sync.deferred_changes)) AS d)
    UNION ALL
    SELECT 'batch counts',
           (SELECT count(*) FROM bench.batch_counts WHERE engine = 'extension'),
           (SELECT count(*) FROM bench.batch_counts AS x
            JOIN bench.batch_counts AS y USING (data_set, batch_number)
            WHERE x.engine = 'extension' AND y.engine = 'plpgsql'
              AND x.counts IS DISTINCT FROM y.counts);
END;
