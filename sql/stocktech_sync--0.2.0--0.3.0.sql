-- stocktech_sync 0.2.0 to 0.3.0: ERP inbound sync.
--
-- Connector management (create_connector, set_secret, enable_connector),
-- the connector state and run history behind the status view, sync_now()
-- for a synchronous poll, and retry_inbound() for dead letters.

\echo Use "ALTER EXTENSION stocktech_sync UPDATE TO '0.3.0'" to load this file. \quit

-------------------------------------------------------------------------------
-- State and history
-------------------------------------------------------------------------------

CREATE TABLE stocktech_sync.connector_state (
    connector text PRIMARY KEY REFERENCES stocktech_sync.connectors (name),
    watermark_modified timestamptz,
    watermark_key text,
    delta_link text,
    connected boolean,
    last_contact_at timestamptz,
    last_error text,
    last_error_at timestamptz,
    last_sync_at timestamptz,
    last_run_id bigint,
    vin_count integer,
    next_run_at timestamptz
);

COMMENT ON TABLE stocktech_sync.connector_state IS
    'Per connector: the delta watermark and the outcome of the last poll.';
COMMENT ON COLUMN stocktech_sync.connector_state.connector IS 'Connector.';
COMMENT ON COLUMN stocktech_sync.connector_state.watermark_modified IS
    'Modified timestamp of the last record of the last successful run.';
COMMENT ON COLUMN stocktech_sync.connector_state.watermark_key IS
    'Key of that record; the watermark is the pair, because many records share a timestamp.';
COMMENT ON COLUMN stocktech_sync.connector_state.delta_link IS
    'Delta link returned by the last run, for connectors that use delta links.';
COMMENT ON COLUMN stocktech_sync.connector_state.connected IS
    'Whether the last contact with the ERP succeeded.';
COMMENT ON COLUMN stocktech_sync.connector_state.last_contact_at IS
    'When the ERP last answered successfully.';
COMMENT ON COLUMN stocktech_sync.connector_state.last_error IS 'Error of the last failed run.';
COMMENT ON COLUMN stocktech_sync.connector_state.last_error_at IS 'When the last run failed.';
COMMENT ON COLUMN stocktech_sync.connector_state.last_sync_at IS
    'When the last successful run ended.';
COMMENT ON COLUMN stocktech_sync.connector_state.last_run_id IS 'Last run in sync_runs.';
COMMENT ON COLUMN stocktech_sync.connector_state.vin_count IS
    'Vehicles covered by the last successful run.';
COMMENT ON COLUMN stocktech_sync.connector_state.next_run_at IS
    'When the inbound worker polls the connector next.';

CREATE TABLE stocktech_sync.sync_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector text NOT NULL REFERENCES stocktech_sync.connectors (name),
    profile_version integer NOT NULL,
    trigger text NOT NULL CONSTRAINT sync_runs_trigger_known CHECK (trigger IN ('worker', 'sync_now')),
    started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'running'
        CONSTRAINT sync_runs_status_known CHECK (status IN ('running', 'succeeded', 'failed')),
    watermark_from timestamptz,
    pages integer,
    records integer,
    vin_count integer,
    expected_count bigint,
    summary jsonb,
    error text
);
CREATE INDEX sync_runs_connector ON stocktech_sync.sync_runs (connector, id);

COMMENT ON TABLE stocktech_sync.sync_runs IS 'One row per poll run, with its counts and outcome.';
COMMENT ON COLUMN stocktech_sync.sync_runs.id IS 'Run number.';
COMMENT ON COLUMN stocktech_sync.sync_runs.connector IS 'Connector polled.';
COMMENT ON COLUMN stocktech_sync.sync_runs.profile_version IS 'Profile version used.';
COMMENT ON COLUMN stocktech_sync.sync_runs.trigger IS 'worker or sync_now.';
COMMENT ON COLUMN stocktech_sync.sync_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN stocktech_sync.sync_runs.finished_at IS 'When the run ended.';
COMMENT ON COLUMN stocktech_sync.sync_runs.status IS 'running, succeeded or failed.';
COMMENT ON COLUMN stocktech_sync.sync_runs.watermark_from IS 'Watermark the run started from.';
COMMENT ON COLUMN stocktech_sync.sync_runs.pages IS 'Pages fetched.';
COMMENT ON COLUMN stocktech_sync.sync_runs.records IS 'Records read.';
COMMENT ON COLUMN stocktech_sync.sync_runs.vin_count IS 'Vehicles the run covered.';
COMMENT ON COLUMN stocktech_sync.sync_runs.expected_count IS
    'Record count the ERP announced ($count or __count).';
COMMENT ON COLUMN stocktech_sync.sync_runs.summary IS 'The run summary that sync_now() returns.';
COMMENT ON COLUMN stocktech_sync.sync_runs.error IS 'Why the run failed.';

ALTER TABLE stocktech_sync.inbound_dead_letter
    ADD COLUMN record_kind text NOT NULL DEFAULT 'columns'
        CONSTRAINT inbound_dead_letter_record_kind_known
        CHECK (record_kind IN ('columns', 'erp', 'csv_row'));
COMMENT ON COLUMN stocktech_sync.inbound_dead_letter.record_kind IS
    'Shape of the record: columns (vin_master column names), erp (an ERP entity mapped by the '
    'connector profile) or csv_row (a CSV row mapped by the profile).';

-------------------------------------------------------------------------------
-- Connector management
-------------------------------------------------------------------------------

CREATE FUNCTION stocktech_sync._profile_problem(profile jsonb)
RETURNS text
LANGUAGE c IMMUTABLE STRICT
AS 'MODULE_PATHNAME', 'stocktech_profile_problem';
COMMENT ON FUNCTION stocktech_sync._profile_problem(jsonb) IS
    'Returns the problems of a connector profile, one per line, or NULL when it is valid.';

CREATE FUNCTION stocktech_sync._wake_workers()
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'stocktech_wake_workers';
COMMENT ON FUNCTION stocktech_sync._wake_workers() IS
    'Wakes the inbound workers of this database when the calling transaction commits.';

CREATE FUNCTION stocktech_sync.create_connector(name text, profile jsonb)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
    current_profile jsonb;
    current_version integer;
    new_version integer;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid connector name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A connector name starts with a lower case letter and has only lower '
                         'case letters, digits and underscores, at most 63 characters.';
    END IF;
    IF profile IS NULL THEN
        RAISE EXCEPTION 'connector profile must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    problem := stocktech_sync._profile_problem(profile);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid profile for connector "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = problem,
                  HINT = 'The profile keys are described in docs/connectors.md and '
                         'connectors/profile.schema.json.';
    END IF;

    SELECT c.current_version, p.profile INTO current_version, current_profile
    FROM stocktech_sync.connectors AS c
    JOIN stocktech_sync.connector_profiles AS p
      ON p.connector = c.name AND p.version = c.current_version
    WHERE c.name = create_connector.name
    FOR UPDATE OF c;

    IF NOT FOUND THEN
        INSERT INTO stocktech_sync.connectors (name, kind, enabled, current_version)
        VALUES (create_connector.name, profile ->> 'kind', false, 1);
        INSERT INTO stocktech_sync.connector_profiles (connector, version, profile)
        VALUES (create_connector.name, 1, profile);
        INSERT INTO stocktech_sync.connector_state (connector) VALUES (create_connector.name);
        PERFORM stocktech_sync._audit_config('connector', NULL, name,
                                             jsonb_build_object('profile_version', 1,
                                                                'kind', profile ->> 'kind'));
        RETURN 1;
    END IF;

    IF current_profile = profile THEN
        RETURN current_version;
    END IF;
    IF (SELECT kind FROM stocktech_sync.connectors AS c WHERE c.name = create_connector.name)
       <> profile ->> 'kind' THEN
        RAISE EXCEPTION 'cannot change the kind of connector "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The connector is %s; the new profile is %s.',
                                             (SELECT kind FROM stocktech_sync.connectors AS c
                                              WHERE c.name = create_connector.name),
                                             profile ->> 'kind'),
                  HINT = 'Create a new connector for another kind of ERP interface.';
    END IF;

    new_version := (SELECT max(p.version) + 1 FROM stocktech_sync.connector_profiles AS p
                    WHERE p.connector = create_connector.name);
    INSERT INTO stocktech_sync.connector_profiles (connector, version, profile)
    VALUES (create_connector.name, new_version, profile);
    UPDATE stocktech_sync.connectors AS c
       SET current_version = new_version, updated_at = now()
     WHERE c.name = create_connector.name;
    PERFORM stocktech_sync._audit_config('connector_profile', current_version::text,
                                         new_version::text,
                                         jsonb_build_object('connector', name));
    PERFORM stocktech_sync._wake_workers();
    RETURN new_version;
END
$$;
COMMENT ON FUNCTION stocktech_sync.create_connector(text, jsonb) IS
    'Creates a connector from a profile, or saves a changed profile as its next version; '
    'validates the profile and audits the change.  Returns the profile version in use.';

CREATE FUNCTION stocktech_sync.set_secret(connector text, name text, value text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM stocktech_sync.connectors AS c WHERE c.name = set_secret.connector) THEN
        RAISE EXCEPTION 'connector "%" does not exist', connector
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with stocktech_sync.create_connector().';
    END IF;
    IF name IS NULL OR name = '' OR value IS NULL THEN
        RAISE EXCEPTION 'secret name and value must not be empty'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO stocktech_sync.connector_secrets AS s (connector, name, value)
    VALUES (set_secret.connector, set_secret.name, set_secret.value)
    ON CONFLICT ON CONSTRAINT connector_secrets_pkey
    DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = session_user;
    -- The audit names the secret, never its value.
    PERFORM stocktech_sync._audit_config('secret', NULL, name,
                                         jsonb_build_object('connector', connector));
END
$$;
COMMENT ON FUNCTION stocktech_sync.set_secret(text, text, text) IS
    'Stores a secret that a connector profile refers to by name; audited without its value.';

CREATE FUNCTION stocktech_sync.enable_connector(name text, enabled boolean)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    was_enabled boolean;
BEGIN
    SELECT c.enabled INTO was_enabled FROM stocktech_sync.connectors AS c
    WHERE c.name = enable_connector.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'connector "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with stocktech_sync.create_connector().';
    END IF;
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF was_enabled = enabled THEN
        RETURN enabled;
    END IF;
    UPDATE stocktech_sync.connectors AS c SET enabled = enable_connector.enabled, updated_at = now()
    WHERE c.name = enable_connector.name;
    INSERT INTO stocktech_sync.connector_state AS s (connector, next_run_at)
    VALUES (enable_connector.name, now())
    ON CONFLICT (connector) DO UPDATE SET next_run_at = now();
    PERFORM stocktech_sync._audit_config('connector_enabled', was_enabled::text, enabled::text,
                                         jsonb_build_object('connector', name));
    PERFORM stocktech_sync._wake_workers();
    RETURN enabled;
END
$$;
COMMENT ON FUNCTION stocktech_sync.enable_connector(text, boolean) IS
    'Enables or disables polling of a connector by the inbound worker, audited; enabling '
    'schedules a poll at once.';

CREATE FUNCTION stocktech_sync.sync_now(connector text)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'stocktech_sync_now';
COMMENT ON FUNCTION stocktech_sync.sync_now(text) IS
    'Polls a connector once, synchronously, through the same code as the inbound worker, in '
    'the calling transaction; returns the run summary.';

CREATE FUNCTION stocktech_sync.retry_inbound(id bigint)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'stocktech_retry_inbound';
COMMENT ON FUNCTION stocktech_sync.retry_inbound(bigint) IS
    'Applies an open inbound dead letter again through the current profile and policy; '
    'marks it retried and audits the action.';

CREATE FUNCTION stocktech_sync.discard_inbound(id bigint, reason text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    letter record;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'a reason is required to discard a dead letter'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO letter FROM stocktech_sync.inbound_dead_letter AS d
    WHERE d.id = discard_inbound.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'inbound dead letter % does not exist', id
            USING ERRCODE = 'undefined_object';
    END IF;
    IF letter.status <> 'open' THEN
        RAISE EXCEPTION 'inbound dead letter % is %', id, letter.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Only open dead letters can be discarded.';
    END IF;
    UPDATE stocktech_sync.inbound_dead_letter AS d
       SET status = 'discarded', resolved_at = now(), resolved_by = session_user,
           resolution = discard_inbound.reason
     WHERE d.id = discard_inbound.id;
    INSERT INTO stocktech_sync.audit_log (vin, event, source, connector, decisions, detail)
    VALUES (letter.vin, 'operator_action', 'config', letter.connector, '[]',
            jsonb_build_object('action', 'discard_inbound', 'dead_letter_id', id,
                               'reason', discard_inbound.reason));
END
$$;
COMMENT ON FUNCTION stocktech_sync.discard_inbound(bigint, text) IS
    'Closes an open inbound dead letter without applying it, with a reason, audited.';

-------------------------------------------------------------------------------
-- Status
-------------------------------------------------------------------------------

CREATE FUNCTION stocktech_sync.worker_running()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM pg_stat_activity
                   WHERE backend_type = 'stocktech_sync inbound'
                     AND datname = current_database());
$$;
COMMENT ON FUNCTION stocktech_sync.worker_running() IS
    'Whether the inbound background worker of this database is running.';

CREATE VIEW stocktech_sync.status AS
SELECT c.name AS connector,
       c.kind,
       c.enabled,
       c.current_version AS profile_version,
       (SELECT mode::text FROM stocktech_sync.settings) AS mode,
       coalesce(s.connected, false) AS connected,
       s.last_contact_at,
       s.last_error,
       s.last_error_at,
       s.last_sync_at,
       s.vin_count,
       s.watermark_modified,
       s.watermark_key,
       s.next_run_at,
       (SELECT version FROM stocktech_sync.policy_versions WHERE is_active) AS policy_version,
       (SELECT count(*) FROM stocktech_sync.outbound_queue AS q
        WHERE q.connector = c.name AND q.status <> 'done') AS outbound_pending,
       (SELECT count(*) FROM stocktech_sync.outbound_dead_letter AS d
        WHERE d.connector = c.name AND d.status = 'open') AS outbound_dead,
       (SELECT count(*) FROM stocktech_sync.inbound_dead_letter AS d
        WHERE d.connector = c.name AND d.status = 'open') AS inbound_dead,
       (SELECT count(*) FROM stocktech_sync.inbound_queue AS q
        WHERE q.connector = c.name AND q.status = 'pending') AS inbound_pending_pages,
       stocktech_sync.worker_running() AS worker_running
FROM stocktech_sync.connectors AS c
LEFT JOIN stocktech_sync.connector_state AS s ON s.connector = c.name;

COMMENT ON VIEW stocktech_sync.status IS
    'One row per connector: connection, last sync, coverage, mode, policy version, queue and '
    'dead letter counts, and whether the worker runs.  Never shows secrets.';

-------------------------------------------------------------------------------
-- Warn when the library is not preloaded: the workers cannot run then.
-------------------------------------------------------------------------------

DO $preload$
BEGIN
    IF NOT pg_catalog.current_setting('shared_preload_libraries') ~ '(^|[ ,])stocktech_sync([ ,]|$)' THEN
        RAISE WARNING 'stocktech_sync is not in shared_preload_libraries, so its background '
                      'workers do not run'
            USING HINT = 'Add stocktech_sync to shared_preload_libraries and restart the server; '
                         'sync_now() works without it.';
    END IF;
END
$preload$;

-------------------------------------------------------------------------------
-- Privileges
-------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
    stocktech_sync._profile_problem(jsonb),
    stocktech_sync._wake_workers(),
    stocktech_sync.create_connector(text, jsonb),
    stocktech_sync.set_secret(text, text, text),
    stocktech_sync.enable_connector(text, boolean),
    stocktech_sync.sync_now(text),
    stocktech_sync.retry_inbound(bigint),
    stocktech_sync.discard_inbound(bigint, text),
    stocktech_sync.worker_running()
    FROM PUBLIC;

GRANT SELECT ON stocktech_sync.connector_state, stocktech_sync.sync_runs, stocktech_sync.status
    TO stocktech_sync_reader, stocktech_sync_writer, stocktech_sync_admin;
GRANT EXECUTE ON FUNCTION stocktech_sync.worker_running()
    TO stocktech_sync_reader, stocktech_sync_writer, stocktech_sync_admin;
GRANT EXECUTE ON FUNCTION
    stocktech_sync._profile_problem(jsonb),
    stocktech_sync._wake_workers(),
    stocktech_sync.create_connector(text, jsonb),
    stocktech_sync.set_secret(text, text, text),
    stocktech_sync.enable_connector(text, boolean),
    stocktech_sync.sync_now(text),
    stocktech_sync.retry_inbound(bigint),
    stocktech_sync.discard_inbound(bigint, text)
    TO stocktech_sync_admin;
