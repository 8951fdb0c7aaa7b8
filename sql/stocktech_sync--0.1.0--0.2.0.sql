-- stocktech_sync 0.1.0 to 0.2.0: the policy engine on writes.
--
-- Inbound records (ERP and CSV) and local SQL writes go through the C++
-- policy engine; the guard trigger replaces the VIN check trigger of 0.1.0;
-- configuration changes invalidate the per-backend configuration cache.

\echo Use "ALTER EXTENSION stocktech_sync UPDATE TO '0.2.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- Configuration cache invalidation
-------------------------------------------------------------------------------

CREATE FUNCTION stocktech_sync._config_changed()
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'stocktech_config_changed';
COMMENT ON FUNCTION stocktech_sync._config_changed() IS
    'Makes every backend reload the cached sync configuration once the transaction commits.';

CREATE FUNCTION stocktech_sync._config_changed_trigger()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM stocktech_sync._config_changed();
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION stocktech_sync._config_changed_trigger() IS
    'Trigger function: invalidates the cached configuration after a settings or policy change.';

CREATE TRIGGER settings_changed
    AFTER INSERT OR UPDATE OR DELETE ON stocktech_sync.settings
    FOR EACH STATEMENT EXECUTE FUNCTION stocktech_sync._config_changed_trigger();
CREATE TRIGGER policy_versions_changed
    AFTER INSERT OR UPDATE OR DELETE ON stocktech_sync.policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION stocktech_sync._config_changed_trigger();

-------------------------------------------------------------------------------
-- The guard trigger on local writes
-------------------------------------------------------------------------------

DROP TRIGGER vin_master_check_vin ON stocktech_sync.vin_master;
DROP FUNCTION stocktech_sync._vin_master_check_vin();

CREATE FUNCTION stocktech_sync._vin_master_guard()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'stocktech_vin_master_guard';
COMMENT ON FUNCTION stocktech_sync._vin_master_guard() IS
    'Trigger function: enforces the active conflict policy on local writes, applies deferred '
    'values when transit ends, and audits every accepted change.';

CREATE TRIGGER vin_master_guard
    BEFORE INSERT OR UPDATE ON stocktech_sync.vin_master
    FOR EACH ROW EXECUTE FUNCTION stocktech_sync._vin_master_guard();

CREATE FUNCTION stocktech_sync._vin_master_audit_delete()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO stocktech_sync.audit_log (vin, event, source, policy_version, decisions, detail)
    SELECT OLD.vin, 'local_change', 'stocktech',
           (SELECT version FROM stocktech_sync.policy_versions WHERE is_active),
           coalesce(jsonb_agg(jsonb_build_object(
               'field', f.field, 'old', to_jsonb(OLD) ->> f.field, 'new', NULL,
               'decision', 'applied', 'reason', 'vehicle deleted')
               ORDER BY f.ordinality)
               FILTER (WHERE to_jsonb(OLD) ->> f.field IS NOT NULL), '[]'),
           jsonb_build_object('deleted', true)
    FROM stocktech_sync.governed_fields() WITH ORDINALITY AS f (field, sql_type, ordinality);
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION stocktech_sync._vin_master_audit_delete() IS
    'Trigger function: audits the deletion of a vehicle with its last values.';

CREATE TRIGGER vin_master_audit_delete
    AFTER DELETE ON stocktech_sync.vin_master
    FOR EACH ROW EXECUTE FUNCTION stocktech_sync._vin_master_audit_delete();

-------------------------------------------------------------------------------
-- Inbound records
-------------------------------------------------------------------------------

CREATE FUNCTION stocktech_sync.apply_erp_record(record jsonb, connector text DEFAULT 'manual',
                                                source_ts timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'stocktech_apply_erp_record';
COMMENT ON FUNCTION stocktech_sync.apply_erp_record(jsonb, text, timestamptz) IS
    'Applies one ERP record (vin and vin_master column names) through the conflict policy and '
    'returns each field''s decision; creates the vehicle when it is new.';

CREATE FUNCTION stocktech_sync.apply_erp_batch(records jsonb, connector text DEFAULT 'manual')
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'stocktech_apply_erp_batch';
COMMENT ON FUNCTION stocktech_sync.apply_erp_batch(jsonb, text) IS
    'Applies an array of ERP records, each in its own subtransaction; records that fail go to '
    'inbound_dead_letter.  Returns the counts of the batch.';

CREATE FUNCTION stocktech_sync.explain(vin text, field text, value text,
                                       source text DEFAULT 'erp')
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'stocktech_explain';
COMMENT ON FUNCTION stocktech_sync.explain(text, text, text, text) IS
    'Returns what the conflict policy would decide for a value of a field of a vehicle coming '
    'from source (erp, csv or stocktech), and why, without changing anything.';

CREATE FUNCTION stocktech_sync.vin_history(vin text)
RETURNS TABLE (audit_id bigint, item bigint, logged_at timestamptz, event text,
               source text, actor text, policy_version text, connector text, field text,
               old_value text, new_value text, incoming_value text, decision text,
               reason text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.audit_id, d.position, d.logged_at, d.event, d.source, d.actor, d.policy_version,
           d.connector, d.field, d.old_value, d.new_value, d.incoming_value, d.decision,
           d.reason
    FROM stocktech_sync.audit_decisions AS d
    WHERE d.vin = stocktech_sync.normalize_vin(vin_history.vin)
    ORDER BY d.audit_id, d.position;
$$;
COMMENT ON FUNCTION stocktech_sync.vin_history(text) IS
    'Returns the audit trail of a vehicle, one row per field decision, oldest first.';

-------------------------------------------------------------------------------
-- Privileges
-------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
    stocktech_sync._config_changed(),
    stocktech_sync._config_changed_trigger(),
    stocktech_sync._vin_master_guard(),
    stocktech_sync._vin_master_audit_delete(),
    stocktech_sync.apply_erp_record(jsonb, text, timestamptz),
    stocktech_sync.apply_erp_batch(jsonb, text),
    stocktech_sync.explain(text, text, text, text),
    stocktech_sync.vin_history(text)
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    stocktech_sync.explain(text, text, text, text),
    stocktech_sync.vin_history(text)
    TO stocktech_sync_reader, stocktech_sync_writer, stocktech_sync_admin;
GRANT EXECUTE ON FUNCTION
    stocktech_sync.apply_erp_record(jsonb, text, timestamptz),
    stocktech_sync.apply_erp_batch(jsonb, text),
    stocktech_sync._config_changed()
    TO stocktech_sync_admin;

-------------------------------------------------------------------------------
-- CSV import (M1)
--
-- Two ways to load an ERP export: import_csv() reads a file on the database
-- server through COPY; a client without access to the server's file system
-- loads the file into import_staging with psql's \copy and calls
-- apply_staged().  Both map each row with the connector's CSV profile and
-- apply it through the conflict policy with source csv.  A row that cannot
-- be applied goes to inbound_dead_letter, and the other rows still apply.
-------------------------------------------------------------------------------

-- Profile version 1 of the built-in connector 'manual' has no mapping, so
-- no file can be read with it.  Version 2 reads files whose header line
-- names vin_master columns.  It is added only while the current profile
-- still has no mapping, so a profile that an administrator already wrote
-- stays current.
WITH current_profile AS (
    SELECT c.name, p.profile, (SELECT max(v.version) FROM stocktech_sync.connector_profiles AS v
                               WHERE v.connector = c.name) AS last_version
    FROM stocktech_sync.connectors AS c
    JOIN stocktech_sync.connector_profiles AS p
      ON p.connector = c.name AND p.version = c.current_version
    WHERE c.name = 'manual' AND NOT p.profile ? 'mapping'
), new_profile AS (
    INSERT INTO stocktech_sync.connector_profiles (connector, version, profile)
    SELECT name, last_version + 1, $json${
      "format_version": 1,
      "kind": "csv",
      "description": "CSV files whose header line names vin_master columns: vin, model_code, ..., odometer_km. Comma-separated, UTF-8, '.' as decimal separator, dates as YYYY-MM-DD.",
      "csv": {"delimiter": ",", "encoding": "UTF8", "decimal_separator": ".",
              "date_format": "YYYY-MM-DD", "quote": "\"", "header": true},
      "mapping": {
        "vin":                {"from": "vin",                "transform": ["trim", "upper"]},
        "model_code":         {"from": "model_code",         "transform": ["trim"]},
        "model_year":         {"from": "model_year",         "transform": ["trim"]},
        "version_code":       {"from": "version_code",       "transform": ["trim"]},
        "color_code":         {"from": "color_code",         "transform": ["trim"]},
        "engine_number":      {"from": "engine_number",      "transform": ["trim"]},
        "dealer_code":        {"from": "dealer_code",        "transform": ["trim"]},
        "commercial_status":  {"from": "commercial_status",  "transform": ["trim", "lower"]},
        "financial_status":   {"from": "financial_status",   "transform": ["trim", "lower"]},
        "list_price":         {"from": "list_price",         "transform": ["trim"]},
        "sales_order":        {"from": "sales_order",        "transform": ["trim"]},
        "customer_ref":       {"from": "customer_ref",       "transform": ["trim"]},
        "warehouse_location": {"from": "warehouse_location", "transform": ["trim"]},
        "maint_status":       {"from": "maint_status",       "transform": ["trim", "lower"]},
        "pdi_status":         {"from": "pdi_status",         "transform": ["trim", "lower"]},
        "vitw_in_transit":    {"from": "vitw_in_transit",    "transform": ["trim"]},
        "customs_evidence":   {"from": "customs_evidence",   "transform": ["trim"]},
        "arrival_date":       {"from": "arrival_date",       "transform": ["trim"]},
        "odometer_km":        {"from": "odometer_km",        "transform": ["trim"]}
      }
    }$json$::jsonb
    FROM current_profile
    RETURNING connector, version
)
UPDATE stocktech_sync.connectors AS c
   SET current_version = n.version, updated_at = pg_catalog.now()
  FROM new_profile AS n
 WHERE c.name = n.connector;

CREATE TABLE stocktech_sync.import_staging (
    id bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME stocktech_sync.import_staging_id_seq)
        PRIMARY KEY,
    loaded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    loaded_by text NOT NULL DEFAULT session_user,
    source_file text,
    line_number bigint,
    vin text,
    model_code text,
    model_year text,
    version_code text,
    color_code text,
    engine_number text,
    dealer_code text,
    commercial_status text,
    financial_status text,
    list_price text,
    sales_order text,
    customer_ref text,
    warehouse_location text,
    maint_status text,
    pdi_status text,
    vitw_in_transit text,
    customs_evidence text,
    arrival_date text,
    odometer_km text
);

COMMENT ON TABLE stocktech_sync.import_staging IS
    'CSV rows loaded from a client, for example with psql''s \copy, waiting for '
    'apply_staged().  Values are text as in the file; a NULL leaves the field unchanged.';
COMMENT ON SEQUENCE stocktech_sync.import_staging_id_seq IS
    'Identity of import_staging.id: the order in which staged rows are applied.';
COMMENT ON COLUMN stocktech_sync.import_staging.id IS
    'Load order; apply_staged() applies rows in this order.';
COMMENT ON COLUMN stocktech_sync.import_staging.loaded_at IS
    'When the row was loaded; used as the source timestamp of its values.';
COMMENT ON COLUMN stocktech_sync.import_staging.loaded_by IS 'Session user that loaded the row.';
COMMENT ON COLUMN stocktech_sync.import_staging.source_file IS
    'Name of the file the row came from, if the loader sets it; shown in dead letters.';
COMMENT ON COLUMN stocktech_sync.import_staging.line_number IS
    'Line of the row in source_file, if the loader sets it; shown in dead letters.';
COMMENT ON COLUMN stocktech_sync.import_staging.vin IS 'VIN as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.model_code IS 'model_code as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.model_year IS 'model_year as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.version_code IS 'version_code as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.color_code IS 'color_code as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.engine_number IS 'engine_number as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.dealer_code IS 'dealer_code as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.commercial_status IS
    'commercial_status as in the file, before the connector''s value map.';
COMMENT ON COLUMN stocktech_sync.import_staging.financial_status IS
    'financial_status as in the file, before the connector''s value map.';
COMMENT ON COLUMN stocktech_sync.import_staging.list_price IS
    'list_price as in the file, with the connector''s decimal separator.';
COMMENT ON COLUMN stocktech_sync.import_staging.sales_order IS 'sales_order as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.customer_ref IS 'customer_ref as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.warehouse_location IS
    'warehouse_location as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.maint_status IS
    'maint_status as in the file, before the connector''s value map.';
COMMENT ON COLUMN stocktech_sync.import_staging.pdi_status IS
    'pdi_status as in the file, before the connector''s value map.';
COMMENT ON COLUMN stocktech_sync.import_staging.vitw_in_transit IS
    'vitw_in_transit as in the file: true, false, yes, no, 1, 0, X or empty.';
COMMENT ON COLUMN stocktech_sync.import_staging.customs_evidence IS
    'customs_evidence as in the file.';
COMMENT ON COLUMN stocktech_sync.import_staging.arrival_date IS
    'arrival_date as in the file, in the connector''s date format.';
COMMENT ON COLUMN stocktech_sync.import_staging.odometer_km IS 'odometer_km as in the file.';

CREATE FUNCTION stocktech_sync.import_csv(path text, connector text DEFAULT 'manual',
                                          options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'stocktech_import_csv';
COMMENT ON FUNCTION stocktech_sync.import_csv(text, text, jsonb) IS
    'Imports a CSV file on the database server through the connector''s CSV profile, whose '
    'settings options overrides key by key; each row is applied in its own subtransaction and '
    'rows that fail go to inbound_dead_letter.  Needs superuser or pg_read_server_files.  '
    'Returns the counts of the import.';

CREATE FUNCTION stocktech_sync.apply_staged(connector text DEFAULT 'manual')
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'stocktech_apply_staged';
COMMENT ON FUNCTION stocktech_sync.apply_staged(text) IS
    'Applies the rows of import_staging in id order through the connector''s CSV profile, '
    'dead-letters the rows that fail, deletes every row it read and returns the counts.';

REVOKE ALL ON TABLE stocktech_sync.import_staging FROM PUBLIC;
REVOKE ALL ON SEQUENCE stocktech_sync.import_staging_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION
    stocktech_sync.import_csv(text, text, jsonb),
    stocktech_sync.apply_staged(text)
    FROM PUBLIC;

GRANT SELECT, INSERT ON stocktech_sync.import_staging
    TO stocktech_sync_admin, stocktech_sync_writer;
GRANT USAGE, SELECT ON SEQUENCE stocktech_sync.import_staging_id_seq
    TO stocktech_sync_admin, stocktech_sync_writer;
GRANT EXECUTE ON FUNCTION
    stocktech_sync.import_csv(text, text, jsonb),
    stocktech_sync.apply_staged(text)
    TO stocktech_sync_admin;
