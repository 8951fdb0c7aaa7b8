-- plpgsql_engine.sql
--    The baseline that a team would write instead of the extension: the
--    inbound rules of the conflict policy in PL/pgSQL, against copies of the
--    extension's tables in schema bench.
--
-- bench.plpgsql_apply_batch(records, connector) takes the same input as
-- stocktech_sync.apply_erp_batch() and makes the same decisions.  Each
-- record runs in its own subtransaction (a BEGIN ... EXCEPTION block).  It
-- validates the VIN, locks the row with SELECT ... FOR UPDATE and decides
-- every field of the record with the rules of the active policy version,
-- read from stocktech_sync.policy_fields.  erp_wins applies the ERP value,
-- stocktech_wins ignores it, merge decides three-way against the
-- erp_baseline jsonb and the local_changed_at timestamps, and fields frozen
-- in transit are deferred into a table.  Then it updates the row and
-- inserts one audit row that contains every decision as jsonb, with the same
-- reason texts as the extension.  Records that fail with a data error go
-- to a dead-letter table.
--
-- bench/run.sh checks after each run that the rows, audit rows and
-- deferred changes this produces equal the extension's.
--
-- The policy and the mode are read once per batch, as a careful
-- implementation would cache them.  Only the inbound (ERP) path is
-- implemented, because the benchmark that uses this file covers neither
-- local writes nor the end of transit.
--
-- Requires bench/data.sql (bench.vin_check_digit) and the extension.

CREATE TABLE bench.vin_plpgsql (
    LIKE stocktech_sync.vin_master INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (vin)
);
CREATE TABLE bench.audit_plpgsql (LIKE stocktech_sync.audit_log INCLUDING ALL);
CREATE TABLE bench.deferred_plpgsql (
    LIKE stocktech_sync.deferred_changes INCLUDING ALL,
    FOREIGN KEY (vin) REFERENCES bench.vin_plpgsql (vin) ON DELETE CASCADE
);
CREATE TABLE bench.dead_letter_plpgsql (LIKE stocktech_sync.inbound_dead_letter INCLUDING ALL);

-- Canonical text of a field of a row given as jsonb (to_jsonb of a row):
-- the text the column type's output function writes, so booleans are t and
-- f, as in the extension's baselines and audit values.
CREATE FUNCTION bench.canonical_text(row_json jsonb, field text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE jsonb_typeof(row_json -> field)
           WHEN 'boolean' THEN CASE WHEN (row_json -> field)::boolean THEN 't' ELSE 'f' END
           ELSE row_json ->> field
       END;

-- Normalise and validate a VIN like stocktech_sync.normalize_vin(): trim,
-- upper-case, 17 characters from 0-9 and A-Z without I, O and Q, and the
-- check digit mandatory for North American VINs (first character 1-5) or
-- when strict_check is true.
CREATE FUNCTION bench.plpgsql_check_vin(raw_vin text, strict_check boolean,
                                        OUT vin text, OUT check_digit_verified boolean)
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    expected text;
BEGIN
    vin := upper(btrim(raw_vin, E' \t\n\r\f\v'));
    IF vin = '' THEN
        RAISE EXCEPTION 'invalid VIN "%"', vin
            USING ERRCODE = 'invalid_text_representation', DETAIL = 'The VIN is empty.';
    END IF;
    IF vin !~ '^[A-HJ-NPR-Z0-9]+$' THEN
        RAISE EXCEPTION 'invalid VIN "%"', vin
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = 'Only 0-9 and A-Z without I, O and Q are allowed.';
    END IF;
    IF length(vin) <> 17 THEN
        RAISE EXCEPTION 'invalid VIN "%"', vin
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = format('The VIN has %s characters, but 17 were expected.', length(vin));
    END IF;

    expected := bench.vin_check_digit(vin);
    check_digit_verified := substr(vin, 9, 1) = expected;
    IF NOT check_digit_verified AND (strict_check OR left(vin, 1) BETWEEN '1' AND '5') THEN
        RAISE EXCEPTION 'invalid VIN "%"', vin
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = format('The check digit at position 9 is %s, but %s was expected.',
                                  substr(vin, 9, 1), expected);
    END IF;
END
$$;

-- Apply one ERP record; see the file header.  Raises an error for a record
-- that cannot be applied, and the caller dead-letters it.
CREATE FUNCTION bench.plpgsql_apply_record(
    erp_record jsonb, connector text, profile_version integer, source_ts timestamptz,
    source_ref text, mode text, strict_vin_check boolean, policy_version text, policy jsonb,
    OUT created boolean, OUT written boolean, OUT applied integer, OUT ignored integer,
    OUT conflicts integer, OUT deferred integer, OUT rejected integer)
LANGUAGE plpgsql
AS $$
DECLARE
    normalized_vin text;
    vin_verified boolean;
    fields text[];
    field_name text;
    incoming_row jsonb;
    stored bench.vin_plpgsql;
    stored_row jsonb;
    updated bench.vin_plpgsql;
    baseline jsonb;
    baseline_changed boolean;
    local_changed jsonb;
    in_transit boolean;
    changes jsonb;
    deferred_fields text[];
    decisions jsonb[];
    all_unchanged boolean;
    audit_id bigint;
    rule jsonb;
    strategy text;
    erp_access text;
    current_value text;
    incoming_value text;
    baseline_value text;
    has_baseline boolean;
    repeats_baseline boolean;
    new_value text;
    decision text;
    reason text;
    set_baseline boolean;
    is_conflict boolean;
    erp_is_later boolean;
    local_changed_at timestamptz;
    cause text;
BEGIN
    -- The record's shape: an object with a string vin and governed fields,
    -- decided in byte order of the field names, as the extension does.
    IF jsonb_typeof(erp_record) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'invalid record'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('A record must be a JSON object, not %s.', jsonb_typeof(erp_record));
    END IF;
    IF jsonb_typeof(erp_record -> 'vin') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'record has no VIN'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A record needs a string member "vin".';
    END IF;
    SELECT array_agg(k ORDER BY k COLLATE "C") INTO fields
    FROM jsonb_object_keys(erp_record) AS k
    WHERE k NOT IN ('vin', 'source_ts');
    -- The record may carry the time the ERP made the change.
    IF erp_record ? 'source_ts' THEN
        IF jsonb_typeof(erp_record -> 'source_ts') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'invalid source_ts in the record for vehicle "%"', erp_record ->> 'vin'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        source_ts := (erp_record ->> 'source_ts')::timestamptz;
    END IF;
    FOREACH field_name IN ARRAY coalesce(fields, '{}') LOOP
        IF NOT policy ? field_name THEN
            RAISE EXCEPTION 'unknown field "%" in the record for vehicle "%"', field_name, erp_record ->> 'vin'
                USING ERRCODE = 'undefined_column';
        END IF;
        IF jsonb_typeof(erp_record -> field_name) IN ('object', 'array') THEN
            RAISE EXCEPTION 'invalid value for field "%"', field_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;

    SELECT c.vin, c.check_digit_verified INTO normalized_vin, vin_verified
    FROM bench.plpgsql_check_vin(erp_record ->> 'vin', strict_vin_check) AS c;

    -- Typed, then canonical, incoming values; an invalid value raises here.
    incoming_row := to_jsonb(jsonb_populate_record(NULL::bench.vin_plpgsql, erp_record));

    FOR attempt IN 1 .. 4 LOOP
        SELECT * INTO stored FROM bench.vin_plpgsql AS m
        WHERE m.vin = normalized_vin
        FOR UPDATE;
        created := NOT FOUND;
        IF created THEN
            stored_row := '{"vitw_in_transit": false}';
            baseline := '{}';
            local_changed := '{}';
        ELSE
            stored_row := to_jsonb(stored);
            baseline := stored.erp_baseline;
            local_changed := stored.local_changed_at;
        END IF;
        in_transit := (stored_row ->> 'vitw_in_transit')::boolean;

        changes := '{}';
        baseline_changed := false;
        deferred_fields := '{}';
        decisions := '{}';
        all_unchanged := true;
        applied := 0;
        ignored := 0;
        conflicts := 0;
        deferred := 0;
        rejected := 0;

        FOREACH field_name IN ARRAY coalesce(fields, '{}') LOOP
            rule := policy -> field_name;
            strategy := rule ->> 'strategy';
            erp_access := rule ->> 'erp_access';
            current_value := bench.canonical_text(stored_row, field_name);
            incoming_value := bench.canonical_text(incoming_row, field_name);
            has_baseline := baseline ? field_name;
            baseline_value := baseline ->> field_name;
            set_baseline := false;
            is_conflict := false;

            repeats_baseline := has_baseline AND incoming_value IS NOT DISTINCT FROM baseline_value;

            IF incoming_value IS NOT DISTINCT FROM current_value THEN
                decision := 'unchanged';
                new_value := current_value;
                set_baseline := true;
                reason := 'ERP value equals the stored value, so the field is unchanged under '
                          'strategy ' || strategy;
            ELSIF repeats_baseline
                  AND (erp_access IN ('locked', 'none')
                       OR NOT (mode = 'read_only' AND erp_access IN ('master', 'read_write'))) THEN
                -- A value the ERP already sent and that was decided then:
                -- the local value stays and nothing is rejected again.
                decision := 'unchanged';
                new_value := current_value;
                reason := 'ERP value equals the ERP value already decided, so the local value '
                          'stays under strategy ' || strategy;
            ELSIF erp_access IN ('locked', 'none') THEN
                decision := 'rejected';
                new_value := current_value;
                set_baseline := true;
                reason := 'ERP value rejected under strategy ' || strategy || ' because erp_access '
                          || erp_access || ' does not let the ERP change the field';
            ELSIF in_transit AND (rule ->> 'locked_in_transit')::boolean THEN
                decision := 'deferred';
                new_value := current_value;
                deferred_fields := deferred_fields || field_name;
                reason := 'ERP value deferred under strategy ' || strategy || ' because the field '
                          'is frozen while the vehicle is in transit, and is decided again when '
                          'transit ends';
            ELSIF mode = 'read_only' AND erp_access IN ('master', 'read_write') THEN
                decision := 'applied';
                new_value := incoming_value;
                set_baseline := true;
                reason := 'ERP value applied because read_only mode makes the ERP master of every '
                          'field it supplies, overriding strategy ' || strategy;
            ELSIF strategy = 'erp_wins' THEN
                decision := 'applied';
                new_value := incoming_value;
                set_baseline := true;
                reason := 'ERP value applied under strategy erp_wins';
            ELSIF strategy = 'stocktech_wins' THEN
                decision := 'ignored';
                new_value := current_value;
                set_baseline := true;
                reason := 'ERP value ignored and local value kept because strategy stocktech_wins '
                          'ignores ERP values';
            ELSIF strategy = 'merge' THEN
                set_baseline := true;
                IF NOT has_baseline AND current_value IS NULL THEN
                    decision := 'applied';
                    new_value := incoming_value;
                    reason := 'ERP value applied under strategy merge because the field has no '
                              'baseline and no local value';
                ELSIF (NOT has_baseline OR current_value IS DISTINCT FROM baseline_value)
                      AND (NOT has_baseline OR incoming_value IS DISTINCT FROM baseline_value) THEN
                    -- Both sides changed: the later change wins, ties go to the ERP.
                    decision := 'conflict_resolved';
                    is_conflict := true;
                    local_changed_at := (local_changed ->> field_name)::timestamptz;
                    erp_is_later := true;
                    IF local_changed_at IS NULL THEN
                        cause := 'the local change has no timestamp';
                    ELSIF source_ts > local_changed_at THEN
                        cause := 'the ERP change is later';
                    ELSIF source_ts = local_changed_at THEN
                        cause := 'both changes have the same timestamp and a tie goes to the ERP';
                    ELSE
                        cause := 'the local change is later';
                        erp_is_later := false;
                    END IF;
                    new_value := CASE WHEN erp_is_later THEN incoming_value ELSE current_value END;
                    reason := CASE WHEN has_baseline THEN 'both sides changed since the baseline'
                                   ELSE 'the field has no baseline but has a local value' END
                              || ' and ' || cause || ', so strategy merge '
                              || CASE WHEN erp_is_later THEN 'applies the ERP value'
                                      ELSE 'keeps the local value' END;
                ELSIF incoming_value IS NOT DISTINCT FROM baseline_value THEN
                    decision := 'ignored';
                    new_value := current_value;
                    reason := 'ERP value ignored and local value kept under strategy merge because '
                              'only StockTech changed since the baseline';
                ELSE
                    decision := 'applied';
                    new_value := incoming_value;
                    reason := 'ERP value applied under strategy merge because only the ERP side '
                              'changed since the baseline';
                END IF;
            ELSE
                decision := 'rejected';
                new_value := current_value;
                set_baseline := true;
                reason := 'ERP value rejected because strategy locked_during_transit lets only '
                          'StockTech change the transit flag';
            END IF;

            -- In transit, an unchanged value still queues behind earlier
            -- deferred values, so the last ERP value wins when transit ends.
            IF decision = 'unchanged' AND in_transit AND (rule ->> 'locked_in_transit')::boolean
               AND EXISTS (SELECT FROM bench.deferred_plpgsql AS d
                           WHERE d.vin = normalized_vin AND d.field = field_name) THEN
                decision := 'deferred';
                set_baseline := false;
                deferred_fields := deferred_fields || field_name;
                reason := 'value deferred behind earlier deferred values of the field, because '
                          'the vehicle is in transit';
            END IF;

            IF new_value IS DISTINCT FROM current_value THEN
                changes := changes || jsonb_build_object(field_name, new_value);
            END IF;
            IF set_baseline AND (NOT has_baseline OR baseline_value IS DISTINCT FROM incoming_value) THEN
                baseline := baseline || jsonb_build_object(field_name, incoming_value);
                baseline_changed := true;
            END IF;
            CASE decision
                WHEN 'applied' THEN applied := applied + 1;
                WHEN 'ignored' THEN ignored := ignored + 1;
                WHEN 'conflict_resolved' THEN conflicts := conflicts + 1;
                WHEN 'deferred' THEN deferred := deferred + 1;
                WHEN 'rejected' THEN rejected := rejected + 1;
                ELSE NULL;
            END CASE;
            all_unchanged := all_unchanged AND decision = 'unchanged';
            decisions := decisions || (jsonb_build_object(
                'field', field_name, 'old', current_value, 'new', new_value,
                'incoming', incoming_value, 'decision', decision, 'strategy', strategy,
                'reason', reason)
                || CASE WHEN is_conflict THEN '{"conflict": true}'::jsonb ELSE '{}'::jsonb END);
        END LOOP;

        -- The row: a new vehicle, or the changed values and bookkeeping.
        written := true;
        IF created THEN
            INSERT INTO bench.vin_plpgsql AS m
                (vin, model_code, model_year, version_code, color_code, engine_number,
                 dealer_code, commercial_status, financial_status, list_price, sales_order,
                 customer_ref, warehouse_location, maint_status, pdi_status, vitw_in_transit,
                 customs_evidence, arrival_date, odometer_km, check_digit_verified, last_source,
                 erp_baseline, erp_etag, erp_connector)
            SELECT normalized_vin, r.model_code, r.model_year, r.version_code,
                   r.color_code, r.engine_number, r.dealer_code, r.commercial_status,
                   r.financial_status, r.list_price, r.sales_order, r.customer_ref,
                   r.warehouse_location, r.maint_status, r.pdi_status, r.vitw_in_transit,
                   r.customs_evidence, r.arrival_date, r.odometer_km,
                   vin_verified, 'erp', baseline, NULL,
                   plpgsql_apply_record.connector
            FROM jsonb_populate_record(NULL::bench.vin_plpgsql,
                                       '{"vitw_in_transit": "f"}'::jsonb || changes) AS r
            ON CONFLICT (vin) DO NOTHING;
            IF NOT FOUND THEN
                -- A concurrent transaction created the vehicle first: decide again.
                IF attempt < 4 THEN
                    CONTINUE;
                END IF;
                RAISE EXCEPTION 'could not create vehicle "%"', normalized_vin
                    USING ERRCODE = 'serialization_failure',
                          DETAIL = 'Concurrent transactions kept creating it first.';
            END IF;
        ELSIF changes <> '{}' OR baseline_changed THEN
            updated := jsonb_populate_record(stored, changes);
            UPDATE bench.vin_plpgsql AS m
               SET model_code = updated.model_code, model_year = updated.model_year,
                   version_code = updated.version_code, color_code = updated.color_code,
                   engine_number = updated.engine_number, dealer_code = updated.dealer_code,
                   commercial_status = updated.commercial_status,
                   financial_status = updated.financial_status, list_price = updated.list_price,
                   sales_order = updated.sales_order, customer_ref = updated.customer_ref,
                   warehouse_location = updated.warehouse_location,
                   maint_status = updated.maint_status, pdi_status = updated.pdi_status,
                   vitw_in_transit = updated.vitw_in_transit,
                   customs_evidence = updated.customs_evidence,
                   arrival_date = updated.arrival_date, odometer_km = updated.odometer_km,
                   updated_at = now(), updated_by = session_user,
                   row_version = m.row_version + 1, last_source = 'erp',
                   erp_baseline = baseline, erp_connector = plpgsql_apply_record.connector
             WHERE m.vin = normalized_vin;
        ELSE
            written := false;
        END IF;
        EXIT;
    END LOOP;

    -- One audit row with every decision, unless nothing was decided at all.
    IF all_unchanged AND NOT created THEN
        RETURN;
    END IF;
    INSERT INTO bench.audit_plpgsql AS a
        (vin, event, source, policy_version, connector, profile_version, source_ts, decisions,
         detail)
    VALUES (normalized_vin, 'erp_record', 'erp', policy_version, connector, NULLIF(profile_version, 0),
            source_ts, to_jsonb(decisions),
            jsonb_build_object('source_ref', source_ref)
            || CASE WHEN created THEN '{"created": true}'::jsonb ELSE '{}'::jsonb END)
    RETURNING a.id INTO audit_id;

    IF deferred_fields <> '{}' THEN
        INSERT INTO bench.deferred_plpgsql (vin, field, value, source, source_ts, connector, audit_id)
        SELECT normalized_vin, f.field, bench.canonical_text(incoming_row, f.field), 'erp', source_ts,
               connector, audit_id
        FROM unnest(deferred_fields) WITH ORDINALITY AS f (field, position)
        ORDER BY f.position;
    END IF;
END
$$;

-- Apply an array of ERP records, each in its own subtransaction; records
-- that fail with a data error go to bench.dead_letter_plpgsql with the
-- error message.  Returns the same counts as stocktech_sync.apply_erp_batch().
CREATE FUNCTION bench.plpgsql_apply_batch(records jsonb, connector text DEFAULT 'manual')
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    mode text;
    strict_vin_check boolean;
    policy_version text;
    policy jsonb;
    profile_version integer;
    source_ts timestamptz := transaction_timestamp();
    item jsonb;
    item_number bigint;
    outcome record;
    message text;
    state text;
    counts_read integer := 0;
    counts_created integer := 0;
    counts_updated integer := 0;
    counts_unchanged integer := 0;
    counts_dead integer := 0;
    counts_applied integer := 0;
    counts_ignored integer := 0;
    counts_conflicts integer := 0;
    counts_deferred integer := 0;
    counts_rejected integer := 0;
BEGIN
    IF jsonb_typeof(records) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'invalid batch'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The records must be a JSON array of objects.';
    END IF;

    -- The configuration, once per batch.
    SELECT s.mode::text, s.strict_vin_check, v.version
      INTO mode, strict_vin_check, policy_version
    FROM stocktech_sync.settings AS s
    LEFT JOIN stocktech_sync.policy_versions AS v ON v.is_active;
    SELECT jsonb_object_agg(p.field, jsonb_build_object(
               'erp_access', p.erp_access, 'strategy', p.strategy,
               'locked_in_transit', p.locked_in_transit))
      INTO policy
    FROM stocktech_sync.policy_fields AS p
    WHERE p.version = policy_version;
    IF policy IS NULL THEN
        RAISE EXCEPTION 'no policy version is active'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT c.current_version INTO profile_version
    FROM stocktech_sync.connectors AS c
    WHERE c.name = connector;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'connector "%" does not exist', connector
            USING ERRCODE = 'undefined_object';
    END IF;

    FOR item, item_number IN
        SELECT e.value, e.ordinality FROM jsonb_array_elements(records) WITH ORDINALITY AS e
    LOOP
        counts_read := counts_read + 1;
        BEGIN
            SELECT * INTO outcome
            FROM bench.plpgsql_apply_record(item, connector, profile_version, source_ts,
                                            'batch item ' || item_number, mode, strict_vin_check,
                                            policy_version, policy);
            IF outcome.created THEN
                counts_created := counts_created + 1;
            ELSIF outcome.written THEN
                counts_updated := counts_updated + 1;
            ELSE
                counts_unchanged := counts_unchanged + 1;
            END IF;
            counts_applied := counts_applied + outcome.applied;
            counts_ignored := counts_ignored + outcome.ignored;
            counts_conflicts := counts_conflicts + outcome.conflicts;
            counts_deferred := counts_deferred + outcome.deferred;
            counts_rejected := counts_rejected + outcome.rejected;
        EXCEPTION
            WHEN data_exception OR integrity_constraint_violation
                 OR syntax_error_or_access_rule_violation OR undefined_object THEN
                -- NOTE: the reason is the error message only; the extension
                -- appends the detail of its own errors.
                GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                INSERT INTO bench.dead_letter_plpgsql
                    (connector, source_ref, vin, record, reason, sqlstate)
                VALUES (connector, 'batch item ' || item_number,
                        CASE WHEN jsonb_typeof(item -> 'vin') = 'string' THEN item ->> 'vin' END,
                        item, message, state);
                counts_dead := counts_dead + 1;
        END;
    END LOOP;

    RETURN jsonb_build_object(
        'read', counts_read, 'created', counts_created, 'updated', counts_updated,
        'unchanged', counts_unchanged, 'dead_lettered', counts_dead,
        'applied', counts_applied, 'ignored', counts_ignored, 'conflicts', counts_conflicts,
        'deferred', counts_deferred, 'rejected', counts_rejected);
END
$$;
