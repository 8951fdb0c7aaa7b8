-- stocktech_sync 0.3.0 to 0.4.0: bidirectional mode (M4).
--
-- Accepted local changes to outbound fields are queued in the transaction
-- of the change and sent to the ERP by the outbound worker or by
-- drain_outbound(); failures that cannot succeed go to the outbound dead
-- letter, where operators retry or discard them.

\echo Use "ALTER EXTENSION stocktech_sync UPDATE TO '0.4.0'" to load this file. \quit

-- A dead-lettered change leaves the queue, so the queue only contains changes
-- that are waiting, being sent, or acknowledged.
ALTER TABLE stocktech_sync.outbound_queue
    ADD COLUMN lease_owner integer,
    ADD COLUMN acknowledged_etag text,
    ADD COLUMN outcome text;
COMMENT ON COLUMN stocktech_sync.outbound_queue.lease_owner IS
    'Process id of the backend or worker holding the lease.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.acknowledged_etag IS
    'ETag the ERP returned when it accepted the change.';
COMMENT ON COLUMN stocktech_sync.outbound_queue.outcome IS
    'How the change ended: sent, or dropped with the reason after a concurrent ERP change.';

CREATE INDEX outbound_queue_vin_all ON stocktech_sync.outbound_queue (vin, id);
-- The claim looks only at open changes, oldest first: finished ones, which
-- stay in the queue, must not be walked past.
CREATE INDEX outbound_queue_open_id ON stocktech_sync.outbound_queue (id)
    WHERE status <> 'done';

CREATE FUNCTION stocktech_sync.drain_outbound(max integer DEFAULT 100)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'stocktech_drain_outbound';
COMMENT ON FUNCTION stocktech_sync.drain_outbound(integer) IS
    'Sends up to max due outbound changes to the ERP, synchronously, through the same code as '
    'the outbound worker, and returns the counts by outcome.';

CREATE FUNCTION stocktech_sync.retry_dead_letter(id bigint)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    letter record;
    queued bigint;
BEGIN
    SELECT * INTO letter FROM stocktech_sync.outbound_dead_letter AS d
    WHERE d.id = retry_dead_letter.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbound dead letter % does not exist', id
            USING ERRCODE = 'undefined_object';
    END IF;
    IF letter.status <> 'open' THEN
        RAISE EXCEPTION 'outbound dead letter % is %', id, letter.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Only open dead letters can be retried.';
    END IF;
    -- The same change keeps its idempotency key; it is sent with the ETag
    -- the vehicle has now.
    INSERT INTO stocktech_sync.outbound_queue
        (vin, connector, fields, etag, idempotency_key, policy_version, audit_id)
    SELECT letter.vin, letter.connector, letter.fields, m.erp_etag, letter.idempotency_key,
           letter.policy_version, NULL
    FROM stocktech_sync.vin_master AS m WHERE m.vin = letter.vin
    RETURNING outbound_queue.id INTO queued;
    IF queued IS NULL THEN
        RAISE EXCEPTION 'vehicle "%" of outbound dead letter % no longer exists', letter.vin, id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Discard the dead letter with stocktech_sync.discard_dead_letter().';
    END IF;
    UPDATE stocktech_sync.outbound_dead_letter AS d
       SET status = 'retried', resolved_at = now(), resolved_by = session_user,
           resolution = 'queued again as outbound change ' || queued
     WHERE d.id = retry_dead_letter.id;
    INSERT INTO stocktech_sync.audit_log (vin, event, source, connector, policy_version, detail)
    VALUES (letter.vin, 'operator_action', 'config', letter.connector, letter.policy_version,
            jsonb_build_object('action', 'retry_dead_letter', 'dead_letter_id', id,
                               'outbound_id', queued));
    PERFORM stocktech_sync._wake_workers();
    RETURN queued;
END
$$;
COMMENT ON FUNCTION stocktech_sync.retry_dead_letter(bigint) IS
    'Queues an open outbound dead letter again with its idempotency key, audited; returns the '
    'id of the new outbound change.';

CREATE FUNCTION stocktech_sync.discard_dead_letter(id bigint, reason text)
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
    SELECT * INTO letter FROM stocktech_sync.outbound_dead_letter AS d
    WHERE d.id = discard_dead_letter.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbound dead letter % does not exist', id
            USING ERRCODE = 'undefined_object';
    END IF;
    IF letter.status <> 'open' THEN
        RAISE EXCEPTION 'outbound dead letter % is %', id, letter.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Only open dead letters can be discarded.';
    END IF;
    UPDATE stocktech_sync.outbound_dead_letter AS d
       SET status = 'discarded', resolved_at = now(), resolved_by = session_user,
           resolution = discard_dead_letter.reason
     WHERE d.id = discard_dead_letter.id;
    INSERT INTO stocktech_sync.audit_log (vin, event, source, connector, policy_version, detail)
    VALUES (letter.vin, 'operator_action', 'config', letter.connector, letter.policy_version,
            jsonb_build_object('action', 'discard_dead_letter', 'dead_letter_id', id,
                               'reason', discard_dead_letter.reason));
END
$$;
COMMENT ON FUNCTION stocktech_sync.discard_dead_letter(bigint, text) IS
    'Closes an open outbound dead letter without sending it, with a reason, audited.';

-- The status view gains the age of the oldest waiting change.
CREATE OR REPLACE VIEW stocktech_sync.status AS
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
       stocktech_sync.worker_running() AS worker_running,
       (SELECT now() - min(q.created_at) FROM stocktech_sync.outbound_queue AS q
        WHERE q.connector = c.name AND q.status <> 'done') AS outbound_oldest_age
FROM stocktech_sync.connectors AS c
LEFT JOIN stocktech_sync.connector_state AS s ON s.connector = c.name;

REVOKE ALL ON FUNCTION
    stocktech_sync.drain_outbound(integer),
    stocktech_sync.retry_dead_letter(bigint),
    stocktech_sync.discard_dead_letter(bigint, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    stocktech_sync.drain_outbound(integer),
    stocktech_sync.retry_dead_letter(bigint),
    stocktech_sync.discard_dead_letter(bigint, text)
    TO stocktech_sync_admin;

-------------------------------------------------------------------------------
-- Audit of local inserts after the row is really inserted
-------------------------------------------------------------------------------

-- INSERT ... ON CONFLICT runs BEFORE INSERT triggers also for rows it then
-- skips or turns into an update, so the guard only records its decisions
-- and this trigger audits them once the row exists.
CREATE FUNCTION stocktech_sync._vin_master_after_insert()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'stocktech_vin_master_after_insert';
COMMENT ON FUNCTION stocktech_sync._vin_master_after_insert() IS
    'Trigger function: audits (and in bidirectional mode queues) a local insert that the guard '
    'trigger accepted, once the row is inserted.';

CREATE TRIGGER vin_master_after_insert
    AFTER INSERT ON stocktech_sync.vin_master
    FOR EACH ROW EXECUTE FUNCTION stocktech_sync._vin_master_after_insert();

REVOKE ALL ON FUNCTION stocktech_sync._vin_master_after_insert() FROM PUBLIC;

-------------------------------------------------------------------------------
-- Values PostgreSQL accepts but no ERP or floor process means
-------------------------------------------------------------------------------

ALTER TABLE stocktech_sync.vin_master
    ADD CONSTRAINT vin_master_list_price_is_number CHECK (list_price <> 'NaN'),
    ADD CONSTRAINT vin_master_arrival_date_finite
        CHECK (arrival_date BETWEEN '1900-01-01' AND '2200-12-31');

-------------------------------------------------------------------------------
-- pg_dump: the data of the extension's tables belongs in a dump.  Rows the
-- install scripts create (policy 3.2, the manual connector, the settings
-- row) are left out, because CREATE EXTENSION creates them again on
-- restore.  Restore the data with triggers disabled (pg_restore
-- --disable-triggers, or session_replication_role = replica), or the
-- guard trigger rejects rows that carry ERP-owned values.
-------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.vin_master', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.policy_versions',
                                           $$WHERE version <> '3.2'$$);
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.policy_fields',
                                           $$WHERE version <> '3.2'$$);
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.connectors',
                                           $$WHERE name <> 'manual'$$);
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.connector_profiles',
                                           $$WHERE connector <> 'manual'$$);
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.connector_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.connector_state', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.sync_runs', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.inbound_queue', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.inbound_dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.deferred_changes', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.outbound_queue', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.outbound_dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.import_staging', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.sync_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.inbound_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.inbound_dead_letter_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.deferred_changes_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.outbound_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.outbound_dead_letter_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('stocktech_sync.import_staging_id_seq', '');
