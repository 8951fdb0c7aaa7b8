-- stocktech_sync 0.1.0: data model, default policy 3.2, configuration API.
--
-- Every object lives in schema stocktech_sync.  Objects whose name starts
-- with an underscore are private to the extension.  Functions that change
-- configuration are SECURITY DEFINER with a fixed search_path and are
-- executable by stocktech_sync_admin only; PUBLIC gets nothing.

\echo Use "CREATE EXTENSION stocktech_sync" to load this file. \quit

-------------------------------------------------------------------------------
-- Roles (cluster-wide, so they may exist from another database)
-------------------------------------------------------------------------------

DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['stocktech_sync_admin', 'stocktech_sync_writer',
                                     'stocktech_sync_reader']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
        END IF;
    END LOOP;
END
$roles$;

-------------------------------------------------------------------------------
-- Types
-------------------------------------------------------------------------------

CREATE TYPE stocktech_sync.commercial_status AS ENUM
    ('available', 'reserved', 'sold', 'invoiced', 'delivered', 'returned', 'blocked');
CREATE TYPE stocktech_sync.financial_status AS ENUM
    ('unpaid', 'floorplan', 'financed', 'consignment', 'paid', 'released');
CREATE TYPE stocktech_sync.maint_status AS ENUM
    ('none', 'scheduled', 'in_service', 'done');
CREATE TYPE stocktech_sync.pdi_status AS ENUM
    ('pending', 'in_progress', 'passed', 'failed');
CREATE TYPE stocktech_sync.sync_mode AS ENUM
    ('manual', 'read_only', 'hybrid', 'bidirectional');
CREATE TYPE stocktech_sync.erp_access AS ENUM
    ('master', 'read_write', 'read', 'locked', 'none');
CREATE TYPE stocktech_sync.stocktech_access AS ENUM
    ('master', 'read_write', 'write', 'read');
CREATE TYPE stocktech_sync.conflict_strategy AS ENUM
    ('erp_wins', 'stocktech_wins', 'merge', 'locked_during_transit');

COMMENT ON TYPE stocktech_sync.commercial_status IS
    'Commercial state of a vehicle, owned jointly by the ERP and StockTech.';
COMMENT ON TYPE stocktech_sync.financial_status IS
    'Financing state of a vehicle, owned jointly by the ERP and StockTech.';
COMMENT ON TYPE stocktech_sync.maint_status IS
    'Workshop state of a vehicle on the yard, owned by StockTech.';
COMMENT ON TYPE stocktech_sync.pdi_status IS
    'Pre-delivery inspection state of a vehicle, owned by StockTech.';
COMMENT ON TYPE stocktech_sync.sync_mode IS
    'Sync mode: manual (CSV import), read_only (ERP polling), hybrid (per-field matrix), '
    'bidirectional (hybrid plus write-back to the ERP).';
COMMENT ON TYPE stocktech_sync.erp_access IS 'What the ERP may do with a governed field.';
COMMENT ON TYPE stocktech_sync.stocktech_access IS 'What StockTech may do with a governed field.';
COMMENT ON TYPE stocktech_sync.conflict_strategy IS
    'How the policy engine decides between an ERP value and a local value of a field.';

-------------------------------------------------------------------------------
-- Settings
-------------------------------------------------------------------------------

CREATE TABLE stocktech_sync.settings (
    singleton boolean PRIMARY KEY DEFAULT true CONSTRAINT settings_single_row CHECK (singleton),
    mode stocktech_sync.sync_mode NOT NULL DEFAULT 'manual',
    strict_vin_check boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by text NOT NULL DEFAULT session_user
);
INSERT INTO stocktech_sync.settings DEFAULT VALUES;

COMMENT ON TABLE stocktech_sync.settings IS
    'The one row of sync settings; change it with set_mode() and set_vin_check().';
COMMENT ON COLUMN stocktech_sync.settings.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN stocktech_sync.settings.mode IS 'Current sync mode.';
COMMENT ON COLUMN stocktech_sync.settings.strict_vin_check IS
    'When true, the VIN check digit is enforced for every region, not only North America.';
COMMENT ON COLUMN stocktech_sync.settings.updated_at IS 'Time of the last settings change.';
COMMENT ON COLUMN stocktech_sync.settings.updated_by IS 'Session user of the last settings change.';

-------------------------------------------------------------------------------
-- VIN master
-------------------------------------------------------------------------------

CREATE TABLE stocktech_sync.vin_master (
    vin text PRIMARY KEY
        CONSTRAINT vin_master_vin_format CHECK (vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
    model_code text,
    model_year smallint CONSTRAINT vin_master_model_year_range
        CHECK (model_year BETWEEN 1900 AND 2200),
    version_code text,
    color_code text,
    engine_number text,
    dealer_code text,
    commercial_status stocktech_sync.commercial_status,
    financial_status stocktech_sync.financial_status,
    list_price numeric(15,2) CONSTRAINT vin_master_list_price_not_negative
        CHECK (list_price >= 0),
    sales_order text,
    customer_ref text,
    warehouse_location text,
    maint_status stocktech_sync.maint_status,
    pdi_status stocktech_sync.pdi_status,
    vitw_in_transit boolean NOT NULL DEFAULT false,
    customs_evidence text,
    arrival_date date,
    odometer_km integer CONSTRAINT vin_master_odometer_not_negative
        CHECK (odometer_km >= 0),
    check_digit_verified boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by text NOT NULL DEFAULT session_user,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by text NOT NULL DEFAULT session_user,
    last_source text NOT NULL DEFAULT 'stocktech'
        CONSTRAINT vin_master_last_source_known CHECK (last_source IN ('erp', 'csv', 'stocktech')),
    row_version bigint NOT NULL DEFAULT 1,
    erp_baseline jsonb NOT NULL DEFAULT '{}',
    local_changed_at jsonb NOT NULL DEFAULT '{}',
    erp_etag text,
    erp_connector text
);

COMMENT ON TABLE stocktech_sync.vin_master IS
    'One row per vehicle: the 18 governed fields and sync bookkeeping.  Writes are '
    'checked against the active conflict policy.';
COMMENT ON COLUMN stocktech_sync.vin_master.vin IS
    'Vehicle identification number: 17 characters, upper case, without I, O and Q.';
COMMENT ON COLUMN stocktech_sync.vin_master.model_code IS 'Model code (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.model_year IS 'Model year (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.version_code IS 'Version or trim code (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.color_code IS 'Exterior colour code (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.engine_number IS 'Engine number (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.dealer_code IS 'Owning dealer code (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.commercial_status IS
    'Commercial status; both sides write, the ERP wins.';
COMMENT ON COLUMN stocktech_sync.vin_master.financial_status IS
    'Financial status; both sides write, the ERP wins.';
COMMENT ON COLUMN stocktech_sync.vin_master.list_price IS 'List price (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.sales_order IS 'ERP sales order number (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.customer_ref IS 'ERP customer reference (ERP master).';
COMMENT ON COLUMN stocktech_sync.vin_master.warehouse_location IS
    'Yard location; merged between both sides, frozen in transit.';
COMMENT ON COLUMN stocktech_sync.vin_master.maint_status IS
    'Workshop status (StockTech master), frozen in transit.';
COMMENT ON COLUMN stocktech_sync.vin_master.pdi_status IS
    'Pre-delivery inspection status (StockTech master), frozen in transit.';
COMMENT ON COLUMN stocktech_sync.vin_master.vitw_in_transit IS
    'Whether the vehicle is in transit (StockTech master); freezes the transit-locked fields.';
COMMENT ON COLUMN stocktech_sync.vin_master.customs_evidence IS
    'Object key of the customs evidence photos (StockTech master).';
COMMENT ON COLUMN stocktech_sync.vin_master.arrival_date IS
    'Arrival date at the dealer; merged between both sides.';
COMMENT ON COLUMN stocktech_sync.vin_master.odometer_km IS
    'Odometer reading in kilometres (StockTech master), frozen in transit.';
COMMENT ON COLUMN stocktech_sync.vin_master.check_digit_verified IS
    'Whether position 9 of the VIN matched the computed check digit.';
COMMENT ON COLUMN stocktech_sync.vin_master.created_at IS 'When the row was created.';
COMMENT ON COLUMN stocktech_sync.vin_master.created_by IS 'Session user that created the row.';
COMMENT ON COLUMN stocktech_sync.vin_master.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN stocktech_sync.vin_master.updated_by IS 'Session user of the last change.';
COMMENT ON COLUMN stocktech_sync.vin_master.last_source IS
    'Source of the last change: erp, csv or stocktech.';
COMMENT ON COLUMN stocktech_sync.vin_master.row_version IS
    'Counter incremented by every change of the row.';
COMMENT ON COLUMN stocktech_sync.vin_master.erp_baseline IS
    'Per field, the ERP value last applied or acknowledged: the base of the three-way merge.';
COMMENT ON COLUMN stocktech_sync.vin_master.local_changed_at IS
    'Per field, the time of the last accepted local change.';
COMMENT ON COLUMN stocktech_sync.vin_master.erp_etag IS
    'ETag of the ERP entity as last received, verbatim, for conditional writes.';
COMMENT ON COLUMN stocktech_sync.vin_master.erp_connector IS
    'Connector that last supplied ERP data for the vehicle.';

CREATE FUNCTION stocktech_sync._vin_master_check_vin()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    checked record;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.vin IS DISTINCT FROM OLD.vin THEN
        RAISE EXCEPTION 'cannot change the VIN of vehicle "%"', OLD.vin
            USING ERRCODE = 'integrity_constraint_violation',
                  DETAIL = pg_catalog.format('The new value was "%s".', NEW.vin),
                  HINT = 'The VIN is the key of a vehicle; insert a new row instead.';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.vin := stocktech_sync.normalize_vin(NEW.vin);
        SELECT * INTO checked FROM stocktech_sync.check_vin(NEW.vin);
        NEW.check_digit_verified := checked.check_digit_verified;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION stocktech_sync._vin_master_check_vin() IS
    'Trigger function: normalises and validates the VIN of new rows and rejects VIN changes.';

CREATE TRIGGER vin_master_check_vin
    BEFORE INSERT OR UPDATE OF vin ON stocktech_sync.vin_master
    FOR EACH ROW EXECUTE FUNCTION stocktech_sync._vin_master_check_vin();

-------------------------------------------------------------------------------
-- Conflict policy
-------------------------------------------------------------------------------

CREATE TABLE stocktech_sync.policy_versions (
    version text PRIMARY KEY
        CONSTRAINT policy_versions_version_format CHECK (version ~ '^[0-9]+(\.[0-9]+){1,2}$'),
    published boolean NOT NULL DEFAULT false,
    is_active boolean NOT NULL DEFAULT false,
    published_at timestamptz,
    published_by text,
    comment text,
    CONSTRAINT policy_versions_active_is_published CHECK (NOT is_active OR published)
);
CREATE UNIQUE INDEX policy_versions_one_active
    ON stocktech_sync.policy_versions (is_active) WHERE is_active;

COMMENT ON TABLE stocktech_sync.policy_versions IS
    'Versions of the per-field conflict policy; a published version never changes.';
COMMENT ON COLUMN stocktech_sync.policy_versions.version IS 'Version number, such as 3.2.';
COMMENT ON COLUMN stocktech_sync.policy_versions.published IS
    'Whether the version is published; its rules are then immutable.';
COMMENT ON COLUMN stocktech_sync.policy_versions.is_active IS
    'Whether the version decides changes now; exactly one version is active.';
COMMENT ON COLUMN stocktech_sync.policy_versions.published_at IS 'When the version was published.';
COMMENT ON COLUMN stocktech_sync.policy_versions.published_by IS 'Who published the version.';
COMMENT ON COLUMN stocktech_sync.policy_versions.comment IS 'What the version changes and why.';

CREATE TABLE stocktech_sync.policy_fields (
    version text NOT NULL REFERENCES stocktech_sync.policy_versions (version),
    field text NOT NULL,
    erp_access stocktech_sync.erp_access NOT NULL,
    stocktech_access stocktech_sync.stocktech_access NOT NULL,
    strategy stocktech_sync.conflict_strategy NOT NULL,
    locked_in_transit boolean NOT NULL DEFAULT false,
    outbound boolean NOT NULL DEFAULT false,
    PRIMARY KEY (version, field)
);

COMMENT ON TABLE stocktech_sync.policy_fields IS
    'The per-field conflict matrix: one rule per governed field and policy version.';
COMMENT ON COLUMN stocktech_sync.policy_fields.version IS 'Policy version of the rule.';
COMMENT ON COLUMN stocktech_sync.policy_fields.field IS 'Governed vin_master column.';
COMMENT ON COLUMN stocktech_sync.policy_fields.erp_access IS 'What the ERP may do with the field.';
COMMENT ON COLUMN stocktech_sync.policy_fields.stocktech_access IS
    'What local writes may do with the field.';
COMMENT ON COLUMN stocktech_sync.policy_fields.strategy IS
    'How an ERP value and a local value of the field are decided.';
COMMENT ON COLUMN stocktech_sync.policy_fields.locked_in_transit IS
    'Whether the field is frozen while the vehicle is in transit.';
COMMENT ON COLUMN stocktech_sync.policy_fields.outbound IS
    'Whether accepted local changes are sent to the ERP in bidirectional mode.';

CREATE FUNCTION stocktech_sync._policy_versions_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'cannot truncate table "%"', TG_TABLE_NAME
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Published policy versions are kept for the audit log.';
    END IF;
    IF NOT OLD.published THEN
        RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'policy version "%" is published and cannot be deleted', OLD.version
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Audit rows refer to the policy version that decided them.',
                  HINT = 'Activate another version with stocktech_sync.activate_policy().';
    END IF;
    IF NEW.version IS DISTINCT FROM OLD.version
       OR NEW.published IS DISTINCT FROM OLD.published
       OR NEW.published_at IS DISTINCT FROM OLD.published_at
       OR NEW.published_by IS DISTINCT FROM OLD.published_by
       OR NEW.comment IS DISTINCT FROM OLD.comment THEN
        RAISE EXCEPTION 'policy version "%" is published and cannot be changed', OLD.version
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Publish a new version with stocktech_sync.publish_policy() and '
                         'activate it with stocktech_sync.activate_policy().';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION stocktech_sync._policy_versions_guard() IS
    'Trigger function: keeps published policy versions unchanged; only is_active may change.';

CREATE TRIGGER policy_versions_guard
    BEFORE UPDATE OR DELETE ON stocktech_sync.policy_versions
    FOR EACH ROW EXECUTE FUNCTION stocktech_sync._policy_versions_guard();
CREATE TRIGGER policy_versions_no_truncate
    BEFORE TRUNCATE ON stocktech_sync.policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION stocktech_sync._policy_versions_guard();

CREATE FUNCTION stocktech_sync._policy_fields_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target_version text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'cannot truncate table "%"', TG_TABLE_NAME
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Published policy versions are kept for the audit log.';
    END IF;
    target_version := CASE TG_OP WHEN 'INSERT' THEN NEW.version ELSE OLD.version END;
    IF EXISTS (SELECT FROM stocktech_sync.policy_versions
               WHERE version = target_version AND published)
       OR (TG_OP = 'UPDATE' AND EXISTS (SELECT FROM stocktech_sync.policy_versions
                                        WHERE version = NEW.version AND published)) THEN
        RAISE EXCEPTION 'policy version "%" is published and cannot be changed', target_version
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Publish a new version with stocktech_sync.publish_policy() and '
                         'activate it with stocktech_sync.activate_policy().';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION stocktech_sync._policy_fields_guard() IS
    'Trigger function: rejects any change to the rules of a published policy version.';

CREATE TRIGGER policy_fields_guard
    BEFORE INSERT OR UPDATE OR DELETE ON stocktech_sync.policy_fields
    FOR EACH ROW EXECUTE FUNCTION stocktech_sync._policy_fields_guard();
CREATE TRIGGER policy_fields_no_truncate
    BEFORE TRUNCATE ON stocktech_sync.policy_fields
    FOR EACH STATEMENT EXECUTE FUNCTION stocktech_sync._policy_fields_guard();

-------------------------------------------------------------------------------
-- Audit log
-------------------------------------------------------------------------------

CREATE TABLE stocktech_sync.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logged_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    txid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    vin text,
    event text NOT NULL CONSTRAINT audit_log_event_known CHECK (event IN
        ('erp_record', 'csv_row', 'local_change', 'config_change', 'deferred_apply',
         'outbound_result', 'operator_action')),
    source text NOT NULL CONSTRAINT audit_log_source_known CHECK (source IN
        ('erp', 'csv', 'stocktech', 'config', 'system')),
    actor text NOT NULL DEFAULT session_user,
    application_name text DEFAULT pg_catalog.current_setting('application_name', true),
    policy_version text,
    connector text,
    profile_version integer,
    source_ts timestamptz,
    decisions jsonb NOT NULL DEFAULT '[]'
        CONSTRAINT audit_log_decisions_array CHECK (pg_catalog.jsonb_typeof(decisions) = 'array'),
    detail jsonb
);
CREATE INDEX audit_log_vin_id ON stocktech_sync.audit_log (vin, id) WHERE vin IS NOT NULL;
CREATE INDEX audit_log_logged_at ON stocktech_sync.audit_log USING brin (logged_at);

COMMENT ON TABLE stocktech_sync.audit_log IS
    'One row per event (ERP record, CSV row, local row change, configuration change) with '
    'every field decision of the event; written in the transaction of the change.';
COMMENT ON COLUMN stocktech_sync.audit_log.id IS 'Event number, increasing in commit order per VIN.';
COMMENT ON COLUMN stocktech_sync.audit_log.logged_at IS 'When the event was decided.';
COMMENT ON COLUMN stocktech_sync.audit_log.txid IS 'Transaction that wrote the event.';
COMMENT ON COLUMN stocktech_sync.audit_log.vin IS 'Vehicle concerned; NULL for configuration.';
COMMENT ON COLUMN stocktech_sync.audit_log.event IS
    'Kind of event: erp_record, csv_row, local_change, config_change, deferred_apply, '
    'outbound_result or operator_action.';
COMMENT ON COLUMN stocktech_sync.audit_log.source IS
    'Where the change came from: erp, csv, stocktech, config or system.';
COMMENT ON COLUMN stocktech_sync.audit_log.actor IS 'Session user that caused the event.';
COMMENT ON COLUMN stocktech_sync.audit_log.application_name IS
    'application_name of the session that caused the event.';
COMMENT ON COLUMN stocktech_sync.audit_log.policy_version IS
    'Policy version that decided the event.';
COMMENT ON COLUMN stocktech_sync.audit_log.connector IS 'Connector that supplied the data.';
COMMENT ON COLUMN stocktech_sync.audit_log.profile_version IS
    'Version of the connector profile that mapped the data.';
COMMENT ON COLUMN stocktech_sync.audit_log.source_ts IS
    'When the source made the change, as the source reported it.';
COMMENT ON COLUMN stocktech_sync.audit_log.decisions IS
    'Array of field decisions: {field, old, new, incoming, decision, strategy, reason}.';
COMMENT ON COLUMN stocktech_sync.audit_log.detail IS 'Further facts about the event.';

CREATE VIEW stocktech_sync.audit_decisions AS
SELECT a.id AS audit_id,
       d.position,
       a.logged_at,
       a.txid,
       a.vin,
       a.event,
       a.source,
       a.actor,
       a.policy_version,
       a.connector,
       d.field,
       d.old_value,
       d.new_value,
       d.incoming_value,
       d.decision,
       d.strategy,
       d.reason
FROM stocktech_sync.audit_log AS a
CROSS JOIN LATERAL (
    SELECT e.ordinality AS position,
           e.value ->> 'field' AS field,
           e.value ->> 'old' AS old_value,
           e.value ->> 'new' AS new_value,
           e.value ->> 'incoming' AS incoming_value,
           e.value ->> 'decision' AS decision,
           e.value ->> 'strategy' AS strategy,
           e.value ->> 'reason' AS reason
    FROM pg_catalog.jsonb_array_elements(a.decisions) WITH ORDINALITY AS e (value, ordinality)
) AS d;

COMMENT ON VIEW stocktech_sync.audit_decisions IS
    'The audit log with one row per field decision, for queries by field.';

CREATE FUNCTION stocktech_sync._audit_config(setting text, old_value text, new_value text,
                                             detail jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO stocktech_sync.audit_log (event, source, policy_version, decisions, detail)
    SELECT 'config_change', 'config',
           (SELECT version FROM stocktech_sync.policy_versions WHERE is_active),
           jsonb_build_array(jsonb_build_object('field', setting, 'old', old_value,
                                                'new', new_value, 'decision', 'applied')),
           detail
    RETURNING id;
$$;
COMMENT ON FUNCTION stocktech_sync._audit_config(text, text, text, jsonb) IS
    'Writes the audit row of a configuration change and returns its id.';

-------------------------------------------------------------------------------
-- Connectors
-------------------------------------------------------------------------------

CREATE TABLE stocktech_sync.connectors (
    name text PRIMARY KEY
        CONSTRAINT connectors_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind text NOT NULL CONSTRAINT connectors_kind_known CHECK (kind IN
        ('odata_v4', 'odata_v2', 'sap_b1_service_layer', 'rest_json', 'csv')),
    enabled boolean NOT NULL DEFAULT false,
    current_version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by text NOT NULL DEFAULT session_user,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE stocktech_sync.connectors IS
    'ERP connectors; each one is configured by versioned profiles, not by code.';
COMMENT ON COLUMN stocktech_sync.connectors.name IS
    'Connector name: lower case letters, digits and underscores.';
COMMENT ON COLUMN stocktech_sync.connectors.kind IS
    'Protocol: odata_v4, odata_v2, sap_b1_service_layer, rest_json or csv.';
COMMENT ON COLUMN stocktech_sync.connectors.enabled IS
    'Whether the background worker polls the connector.';
COMMENT ON COLUMN stocktech_sync.connectors.current_version IS
    'Profile version in use.';
COMMENT ON COLUMN stocktech_sync.connectors.created_at IS 'When the connector was created.';
COMMENT ON COLUMN stocktech_sync.connectors.created_by IS 'Who created the connector.';
COMMENT ON COLUMN stocktech_sync.connectors.updated_at IS 'When the connector last changed.';

CREATE TABLE stocktech_sync.connector_profiles (
    connector text NOT NULL REFERENCES stocktech_sync.connectors (name),
    version integer NOT NULL CONSTRAINT connector_profiles_version_positive CHECK (version > 0),
    profile jsonb NOT NULL
        CONSTRAINT connector_profiles_profile_object CHECK (pg_catalog.jsonb_typeof(profile) = 'object'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by text NOT NULL DEFAULT session_user,
    PRIMARY KEY (connector, version)
);

COMMENT ON TABLE stocktech_sync.connector_profiles IS
    'Versioned connector profiles: endpoint, paging, delta, authentication and field mapping.';
COMMENT ON COLUMN stocktech_sync.connector_profiles.connector IS 'Connector of the profile.';
COMMENT ON COLUMN stocktech_sync.connector_profiles.version IS
    'Profile version, counting from 1; a changed profile is a new version.';
COMMENT ON COLUMN stocktech_sync.connector_profiles.profile IS 'The profile document.';
COMMENT ON COLUMN stocktech_sync.connector_profiles.created_at IS 'When the version was saved.';
COMMENT ON COLUMN stocktech_sync.connector_profiles.created_by IS 'Who saved the version.';

CREATE TABLE stocktech_sync.connector_secrets (
    connector text NOT NULL REFERENCES stocktech_sync.connectors (name),
    name text NOT NULL,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by text NOT NULL DEFAULT session_user,
    PRIMARY KEY (connector, name)
);

COMMENT ON TABLE stocktech_sync.connector_secrets IS
    'Credentials that connector profiles refer to by name; readable by stocktech_sync_admin only.';
COMMENT ON COLUMN stocktech_sync.connector_secrets.connector IS 'Connector owning the secret.';
COMMENT ON COLUMN stocktech_sync.connector_secrets.name IS 'Name the profile uses for the secret.';
COMMENT ON COLUMN stocktech_sync.connector_secrets.value IS 'The secret; never logged or shown.';
COMMENT ON COLUMN stocktech_sync.connector_secrets.updated_at IS 'When the secret last changed.';
COMMENT ON COLUMN stocktech_sync.connector_secrets.updated_by IS 'Who last changed the secret.';

INSERT INTO stocktech_sync.connectors (name, kind, enabled, current_version)
VALUES ('manual', 'csv', false, 1);
INSERT INTO stocktech_sync.connector_profiles (connector, version, profile)
VALUES ('manual', 1, jsonb_build_object(
    'kind', 'csv',
    'description', 'CSV files exported from the ERP whose headers are vin_master column names.',
    'csv', jsonb_build_object('delimiter', ',', 'encoding', 'UTF8', 'decimal_separator', '.',
                              'date_format', 'YYYY-MM-DD', 'header', true)));

-------------------------------------------------------------------------------
-- Queues, deferred changes and dead letters
-------------------------------------------------------------------------------

CREATE TABLE stocktech_sync.inbound_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector text NOT NULL REFERENCES stocktech_sync.connectors (name),
    run_id bigint,
    page_number integer,
    received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    records jsonb NOT NULL
        CONSTRAINT inbound_queue_records_array CHECK (pg_catalog.jsonb_typeof(records) = 'array'),
    status text NOT NULL DEFAULT 'pending'
        CONSTRAINT inbound_queue_status_known CHECK (status IN ('pending', 'applied')),
    applied_at timestamptz
);
CREATE INDEX inbound_queue_pending ON stocktech_sync.inbound_queue (connector, id)
    WHERE status = 'pending';

COMMENT ON TABLE stocktech_sync.inbound_queue IS
    'Pages fetched from the ERP, committed before they are applied so a crash loses nothing.';
COMMENT ON COLUMN stocktech_sync.inbound_queue.id IS 'Page number in arrival order.';
COMMENT ON COLUMN stocktech_sync.inbound_queue.connector IS 'Connector that fetched the page.';
COMMENT ON COLUMN stocktech_sync.inbound_queue.run_id IS 'Sync run that fetched the page.';
COMMENT ON COLUMN stocktech_sync.inbound_queue.page_number IS 'Position of the page in its run.';
COMMENT ON COLUMN stocktech_sync.inbound_queue.received_at IS 'When the page was fetched.';
COMMENT ON COLUMN stocktech_sync.inbound_queue.records IS 'The raw records of the page.';
COMMENT ON COLUMN stocktech_sync.inbound_queue.status IS 'pending or applied.';
COMMENT ON COLUMN stocktech_sync.inbound_queue.applied_at IS 'When the page was applied.';

CREATE TABLE stocktech_sync.inbound_dead_letter (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    source_ref text,
    vin text,
    record jsonb,
    raw_text text,
    reason text NOT NULL,
    sqlstate text,
    status text NOT NULL DEFAULT 'open'
        CONSTRAINT inbound_dead_letter_status_known CHECK (status IN ('open', 'retried', 'discarded')),
    resolved_at timestamptz,
    resolved_by text,
    resolution text
);
CREATE INDEX inbound_dead_letter_open ON stocktech_sync.inbound_dead_letter (connector, id)
    WHERE status = 'open';

COMMENT ON TABLE stocktech_sync.inbound_dead_letter IS
    'Inbound records that could not be applied, with the raw record and the reason.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.id IS 'Dead letter number.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.connector IS 'Connector of the record.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.received_at IS 'When the record failed.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.source_ref IS
    'Where the record came from: a file name and line, or a URL.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.vin IS 'The VIN as received, possibly invalid.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.record IS 'The record as received.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.raw_text IS
    'The raw text of the record when it was not valid JSON or CSV.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.reason IS 'Why the record was rejected.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.sqlstate IS 'SQLSTATE of the error, if any.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.status IS 'open, retried or discarded.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.resolved_at IS 'When an operator resolved it.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.resolved_by IS 'Who resolved it.';
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.resolution IS 'How and why it was resolved.';

CREATE TABLE stocktech_sync.deferred_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vin text NOT NULL REFERENCES stocktech_sync.vin_master (vin) ON DELETE CASCADE,
    field text NOT NULL,
    value text,
    source text NOT NULL CONSTRAINT deferred_changes_source_known CHECK (source IN ('erp', 'csv')),
    source_ts timestamptz NOT NULL,
    connector text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    audit_id bigint
);
CREATE INDEX deferred_changes_vin ON stocktech_sync.deferred_changes (vin, id);

COMMENT ON TABLE stocktech_sync.deferred_changes IS
    'Inbound values for fields frozen while the vehicle is in transit; decided when transit ends.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.id IS 'Arrival order.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.vin IS 'Vehicle in transit.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.field IS 'Frozen field.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.value IS 'Incoming value, canonical text.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.source IS 'erp or csv.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.source_ts IS 'When the source made the change.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.connector IS 'Connector that supplied the value.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.received_at IS 'When the value arrived.';
COMMENT ON COLUMN stocktech_sync.deferred_changes.audit_id IS 'Audit row that recorded the deferral.';

CREATE TABLE stocktech_sync.outbound_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vin text NOT NULL,
    connector text NOT NULL REFERENCES stocktech_sync.connectors (name),
    fields jsonb NOT NULL
        CONSTRAINT outbound_queue_fields_object CHECK (pg_catalog.jsonb_typeof(fields) = 'object'),
    etag text,
    idempotency_key uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid() UNIQUE,
    policy_version text NOT NULL,
    audit_id bigint,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    status text NOT NULL DEFAULT 'pending'
        CONSTRAINT outbound_queue_status_known CHECK (status IN ('pending', 'in_flight', 'done')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    lease_until timestamptz,
    first_sent_at timestamptz,
    last_http_status integer,
    last_error text,
    done_at timestamptz
);
CREATE INDEX outbound_queue_vin_open ON stocktech_sync.outbound_queue (vin, id)
    WHERE status <> 'done';
CREATE INDEX outbound_queue_due ON stocktech_sync.outbound_queue (next_attempt_at, id)
    WHERE status <> 'done';

COMMENT ON TABLE stocktech_sync.outbound_queue IS
    'Local changes to send to the ERP in bidirectional mode, in FIFO order per VIN.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.id IS 'Order of the change.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.vin IS 'Vehicle changed.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.connector IS 'Connector that writes the change.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.fields IS 'Changed fields and their new values.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.etag IS 'ERP ETag known when the change was made.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.idempotency_key IS
    'Key sent with every attempt of the change, so the ERP applies it once.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.policy_version IS
    'Policy version that accepted the change.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.audit_id IS 'Audit row of the local change.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.created_at IS 'When the change was queued.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.status IS 'pending, in_flight or done.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.attempts IS 'Attempts made so far.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.next_attempt_at IS 'Earliest time of the next attempt.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.lease_until IS
    'End of the claim of the worker sending the change; an expired lease is reclaimed.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.first_sent_at IS 'When the first attempt was sent.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.last_http_status IS 'HTTP status of the last attempt.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.last_error IS 'Error of the last attempt.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.done_at IS 'When the ERP acknowledged the change.';

CREATE TABLE stocktech_sync.outbound_dead_letter (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbound_id bigint NOT NULL,
    vin text NOT NULL,
    connector text NOT NULL,
    fields jsonb NOT NULL,
    etag text,
    idempotency_key uuid NOT NULL,
    policy_version text NOT NULL,
    queued_at timestamptz NOT NULL,
    attempts integer NOT NULL,
    http_status integer,
    erp_code text,
    erp_message text,
    reason text NOT NULL,
    dead_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    status text NOT NULL DEFAULT 'open'
        CONSTRAINT outbound_dead_letter_status_known CHECK (status IN ('open', 'retried', 'discarded')),
    resolved_at timestamptz,
    resolved_by text,
    resolution text
);
CREATE INDEX outbound_dead_letter_open ON stocktech_sync.outbound_dead_letter (vin, id)
    WHERE status = 'open';

COMMENT ON TABLE stocktech_sync.outbound_dead_letter IS
    'Outbound changes the ERP rejected or that ran out of attempts; blocks nothing else.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.id IS 'Dead letter number.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.outbound_id IS 'Id of the queued change.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.vin IS 'Vehicle changed.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.connector IS 'Connector of the change.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.fields IS 'Changed fields and values.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.etag IS 'ETag sent with the last attempt.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.idempotency_key IS 'Key of the change.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.policy_version IS
    'Policy version that accepted the change.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.queued_at IS 'When the change was queued.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.attempts IS 'Attempts made.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.http_status IS 'HTTP status of the last attempt.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.erp_code IS 'Error code the ERP returned.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.erp_message IS 'Error message the ERP returned.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.reason IS 'Why the change was dead-lettered.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.dead_at IS 'When it was dead-lettered.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.status IS 'open, retried or discarded.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.resolved_at IS 'When an operator resolved it.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.resolved_by IS 'Who resolved it.';
COMMENT ON COLUMN stocktech_sync.outbound_dead_letter.resolution IS 'How and why it was resolved.';

-------------------------------------------------------------------------------
-- VIN functions
-------------------------------------------------------------------------------

CREATE FUNCTION stocktech_sync._normalize_vin(vin text, strict boolean)
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'stocktech_normalize_vin';
COMMENT ON FUNCTION stocktech_sync._normalize_vin(text, boolean) IS
    'Returns the canonical VIN or raises an error naming the rule that failed.';

CREATE FUNCTION stocktech_sync._check_vin(vin text, strict boolean,
                                          OUT normalized text, OUT valid boolean,
                                          OUT check_digit_verified boolean, OUT rule text,
                                          OUT reason text, OUT expected_check_digit text)
RETURNS record
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'stocktech_check_vin';
COMMENT ON FUNCTION stocktech_sync._check_vin(text, boolean) IS
    'Validates a VIN without raising an error.';

CREATE FUNCTION stocktech_sync.normalize_vin(vin text, strict boolean DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT stocktech_sync._normalize_vin(
        vin, coalesce(strict, (SELECT s.strict_vin_check FROM stocktech_sync.settings AS s)));
$$;
COMMENT ON FUNCTION stocktech_sync.normalize_vin(text, boolean) IS
    'Trims and upper-cases a VIN and validates it; raises an error saying which rule failed. '
    'strict defaults to the strict_vin_check setting.';

CREATE FUNCTION stocktech_sync.check_vin(vin text, strict boolean DEFAULT NULL,
                                         OUT normalized text, OUT valid boolean,
                                         OUT check_digit_verified boolean, OUT rule text,
                                         OUT reason text, OUT expected_check_digit text)
RETURNS record
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM stocktech_sync._check_vin(
        vin, coalesce(strict, (SELECT s.strict_vin_check FROM stocktech_sync.settings AS s)));
$$;
COMMENT ON FUNCTION stocktech_sync.check_vin(text, boolean) IS
    'Validates a VIN and reports the normalised form, validity, check digit verification, '
    'the failed rule and the reason; never raises an error for a bad VIN.';

-------------------------------------------------------------------------------
-- Configuration API
-------------------------------------------------------------------------------

CREATE FUNCTION stocktech_sync.current_mode()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT mode::text FROM stocktech_sync.settings;
$$;
COMMENT ON FUNCTION stocktech_sync.current_mode() IS 'Returns the current sync mode.';

CREATE FUNCTION stocktech_sync.set_mode(mode text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_mode text;
BEGIN
    IF mode IS NULL THEN
        RAISE EXCEPTION 'sync mode must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Valid modes are manual, read_only, hybrid and bidirectional.';
    END IF;
    IF NOT mode = ANY (enum_range(NULL::stocktech_sync.sync_mode)::text[]) THEN
        RAISE EXCEPTION 'invalid sync mode "%"', mode
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid modes are manual, read_only, hybrid and bidirectional.';
    END IF;

    SELECT s.mode::text INTO old_mode FROM stocktech_sync.settings AS s FOR UPDATE;
    IF old_mode = mode THEN
        RAISE NOTICE 'sync mode is already "%"', mode;
        RETURN mode;
    END IF;

    UPDATE stocktech_sync.settings AS s
       SET mode = set_mode.mode::stocktech_sync.sync_mode,
           updated_at = now(),
           updated_by = session_user;
    PERFORM stocktech_sync._audit_config('mode', old_mode, mode);
    RETURN mode;
END
$$;
COMMENT ON FUNCTION stocktech_sync.set_mode(text) IS
    'Sets the sync mode (manual, read_only, hybrid or bidirectional) and audits the change; '
    'setting the current mode again changes nothing.';

CREATE FUNCTION stocktech_sync.set_vin_check(strict boolean)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_strict boolean;
BEGIN
    IF strict IS NULL THEN
        RAISE EXCEPTION 'strict must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass true to enforce the check digit for every region, false otherwise.';
    END IF;
    SELECT s.strict_vin_check INTO old_strict FROM stocktech_sync.settings AS s FOR UPDATE;
    IF old_strict = strict THEN
        RETURN strict;
    END IF;
    UPDATE stocktech_sync.settings AS s
       SET strict_vin_check = set_vin_check.strict, updated_at = now(),
           updated_by = session_user;
    PERFORM stocktech_sync._audit_config('strict_vin_check', old_strict::text, strict::text);
    RETURN strict;
END
$$;
COMMENT ON FUNCTION stocktech_sync.set_vin_check(boolean) IS
    'Turns the strict VIN check digit rule for all regions on or off, audited.';

CREATE FUNCTION stocktech_sync._policy_problem(fields jsonb)
RETURNS text
LANGUAGE c IMMUTABLE STRICT
AS 'MODULE_PATHNAME', 'stocktech_policy_problem';
COMMENT ON FUNCTION stocktech_sync._policy_problem(jsonb) IS
    'Returns the first problem of a policy definition, or NULL when it is valid.';

CREATE FUNCTION stocktech_sync.governed_fields(OUT field text, OUT sql_type text)
RETURNS SETOF record
LANGUAGE c IMMUTABLE STRICT
AS 'MODULE_PATHNAME', 'stocktech_governed_fields';
COMMENT ON FUNCTION stocktech_sync.governed_fields() IS
    'Lists the 18 governed vin_master columns and their SQL types.';

CREATE FUNCTION stocktech_sync.publish_policy(version text, fields jsonb, comment text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
BEGIN
    IF version IS NULL OR version !~ '^[0-9]+(\.[0-9]+){1,2}$' THEN
        RAISE EXCEPTION 'invalid policy version "%"', version
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A policy version is two or three numbers separated by dots, such as 3.3.';
    END IF;
    IF EXISTS (SELECT FROM stocktech_sync.policy_versions AS p WHERE p.version = publish_policy.version) THEN
        RAISE EXCEPTION 'policy version "%" already exists', version
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Published versions never change; publish the new rules under a new version.';
    END IF;
    problem := stocktech_sync._policy_problem(fields);
    IF fields IS NULL OR problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid rules for policy version "%"', version
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = coalesce(upper(left(problem, 1)) || substr(problem, 2) || '.',
                                    'The rules are null.'),
                  HINT = 'Pass a JSON array with one object per governed field: field, erp_access, '
                         'stocktech_access, strategy, locked_in_transit, outbound.';
    END IF;

    INSERT INTO stocktech_sync.policy_versions (version, published, comment)
    VALUES (publish_policy.version, false, publish_policy.comment);
    INSERT INTO stocktech_sync.policy_fields
        (version, field, erp_access, stocktech_access, strategy, locked_in_transit, outbound)
    SELECT publish_policy.version, r.field, r.erp_access::stocktech_sync.erp_access,
           r.stocktech_access::stocktech_sync.stocktech_access,
           r.strategy::stocktech_sync.conflict_strategy,
           coalesce(r.locked_in_transit, false), coalesce(r.outbound, false)
    FROM jsonb_to_recordset(fields) AS r (field text, erp_access text, stocktech_access text,
                                           strategy text, locked_in_transit boolean,
                                           outbound boolean);
    UPDATE stocktech_sync.policy_versions AS p
       SET published = true, published_at = now(), published_by = session_user
     WHERE p.version = publish_policy.version;

    PERFORM stocktech_sync._audit_config('policy_published', NULL, version,
                                         jsonb_build_object('comment', comment, 'rules', fields));
    RETURN version;
END
$$;
COMMENT ON FUNCTION stocktech_sync.publish_policy(text, jsonb, text) IS
    'Publishes an immutable policy version from a JSON array of field rules, audited; '
    'activate it with activate_policy().';

CREATE FUNCTION stocktech_sync.activate_policy(version text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_version text;
BEGIN
    IF NOT EXISTS (SELECT FROM stocktech_sync.policy_versions AS p
                   WHERE p.version = activate_policy.version AND p.published) THEN
        RAISE EXCEPTION 'policy version "%" does not exist', version
            USING ERRCODE = 'undefined_object',
                  HINT = 'Publish it first with stocktech_sync.publish_policy().';
    END IF;
    -- Serialise activations so two sessions never both see no active version.
    LOCK TABLE stocktech_sync.policy_versions IN SHARE ROW EXCLUSIVE MODE;
    SELECT p.version INTO old_version FROM stocktech_sync.policy_versions AS p WHERE p.is_active;
    IF old_version = version THEN
        RAISE NOTICE 'policy version "%" is already active', version;
        RETURN version;
    END IF;
    UPDATE stocktech_sync.policy_versions AS p SET is_active = false WHERE p.is_active;
    UPDATE stocktech_sync.policy_versions AS p SET is_active = true
     WHERE p.version = activate_policy.version;
    PERFORM stocktech_sync._audit_config('active_policy', old_version, version);
    RETURN version;
END
$$;
COMMENT ON FUNCTION stocktech_sync.activate_policy(text) IS
    'Makes a published policy version the one that decides changes, audited.';

-------------------------------------------------------------------------------
-- Default policy 3.2
-------------------------------------------------------------------------------

SELECT stocktech_sync.publish_policy('3.2', $json$[
  {"field": "model_code",         "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "model_year",         "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "version_code",       "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "color_code",         "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "engine_number",      "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "dealer_code",        "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "commercial_status",  "erp_access": "read_write", "stocktech_access": "read_write", "strategy": "erp_wins",              "locked_in_transit": false, "outbound": true},
  {"field": "financial_status",   "erp_access": "read_write", "stocktech_access": "read_write", "strategy": "erp_wins",              "locked_in_transit": false, "outbound": true},
  {"field": "list_price",         "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "sales_order",        "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "customer_ref",       "erp_access": "master",     "stocktech_access": "read",       "strategy": "erp_wins",              "locked_in_transit": false, "outbound": false},
  {"field": "warehouse_location", "erp_access": "read",       "stocktech_access": "write",      "strategy": "merge",                 "locked_in_transit": true,  "outbound": true},
  {"field": "maint_status",       "erp_access": "read",       "stocktech_access": "master",     "strategy": "stocktech_wins",        "locked_in_transit": true,  "outbound": true},
  {"field": "pdi_status",         "erp_access": "read",       "stocktech_access": "master",     "strategy": "stocktech_wins",        "locked_in_transit": true,  "outbound": true},
  {"field": "vitw_in_transit",    "erp_access": "locked",     "stocktech_access": "master",     "strategy": "locked_during_transit", "locked_in_transit": false, "outbound": true},
  {"field": "customs_evidence",   "erp_access": "read",       "stocktech_access": "master",     "strategy": "stocktech_wins",        "locked_in_transit": false, "outbound": false},
  {"field": "arrival_date",       "erp_access": "read_write", "stocktech_access": "read_write", "strategy": "merge",                 "locked_in_transit": false, "outbound": true},
  {"field": "odometer_km",        "erp_access": "read",       "stocktech_access": "master",     "strategy": "stocktech_wins",        "locked_in_transit": true,  "outbound": true}
]$json$::jsonb, 'Default policy shipped with stocktech_sync: 18 fields, 4 strategies.');
SELECT stocktech_sync.activate_policy('3.2');

-------------------------------------------------------------------------------
-- Privileges
-------------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA stocktech_sync FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA stocktech_sync FROM PUBLIC;

GRANT USAGE ON SCHEMA stocktech_sync
    TO stocktech_sync_reader, stocktech_sync_writer, stocktech_sync_admin;

GRANT SELECT ON stocktech_sync.vin_master, stocktech_sync.settings,
                stocktech_sync.policy_versions, stocktech_sync.policy_fields,
                stocktech_sync.audit_log, stocktech_sync.audit_decisions,
                stocktech_sync.connectors, stocktech_sync.connector_profiles,
                stocktech_sync.inbound_queue, stocktech_sync.inbound_dead_letter,
                stocktech_sync.deferred_changes, stocktech_sync.outbound_queue,
                stocktech_sync.outbound_dead_letter
    TO stocktech_sync_reader, stocktech_sync_writer, stocktech_sync_admin;

GRANT INSERT, UPDATE ON stocktech_sync.vin_master TO stocktech_sync_writer, stocktech_sync_admin;
GRANT DELETE ON stocktech_sync.vin_master TO stocktech_sync_admin;
GRANT SELECT ON stocktech_sync.connector_secrets TO stocktech_sync_admin;

GRANT EXECUTE ON FUNCTION
    stocktech_sync._normalize_vin(text, boolean),
    stocktech_sync._check_vin(text, boolean),
    stocktech_sync.normalize_vin(text, boolean),
    stocktech_sync.check_vin(text, boolean),
    stocktech_sync.current_mode(),
    stocktech_sync.governed_fields(),
    stocktech_sync._vin_master_check_vin()
    TO stocktech_sync_reader, stocktech_sync_writer, stocktech_sync_admin;

GRANT EXECUTE ON FUNCTION
    stocktech_sync.set_mode(text),
    stocktech_sync.set_vin_check(boolean),
    stocktech_sync.publish_policy(text, jsonb, text),
    stocktech_sync.activate_policy(text),
    stocktech_sync._policy_problem(jsonb)
    TO stocktech_sync_admin;
