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
