-- pgTAP contract of the stocktech_sync SQL API: schema objects, column
-- types and privileges.
BEGIN;
SELECT plan(86);

SELECT has_schema('stocktech_sync');
SELECT tables_are('stocktech_sync', ARRAY[
    'settings', 'vin_master', 'policy_versions', 'policy_fields', 'audit_log',
    'connectors', 'connector_profiles', 'connector_secrets', 'inbound_queue',
    'inbound_dead_letter', 'deferred_changes', 'outbound_queue', 'outbound_dead_letter',
    'connector_state', 'sync_runs', 'import_staging']);
SELECT has_view('stocktech_sync', 'status', 'status view exists');
SELECT has_view('stocktech_sync', 'audit_decisions', 'audit_decisions view exists');
SELECT col_is_pk('stocktech_sync', 'vin_master', 'vin', 'vin is the key of vin_master');
SELECT col_is_pk('stocktech_sync', 'policy_fields', ARRAY['version', 'field'],
                 'policy_fields is keyed by version and field');

-- Column types of the governed fields.
SELECT col_type_is('stocktech_sync', 'vin_master', 'model_code', 'text', 'vin_master.model_code is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'model_year', 'smallint', 'vin_master.model_year is smallint');
SELECT col_type_is('stocktech_sync', 'vin_master', 'version_code', 'text', 'vin_master.version_code is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'color_code', 'text', 'vin_master.color_code is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'engine_number', 'text', 'vin_master.engine_number is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'dealer_code', 'text', 'vin_master.dealer_code is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'commercial_status',
                   'stocktech_sync', 'commercial_status', 'commercial_status is an enum');
SELECT col_type_is('stocktech_sync', 'vin_master', 'financial_status',
                   'stocktech_sync', 'financial_status', 'financial_status is an enum');
SELECT col_type_is('stocktech_sync', 'vin_master', 'list_price', 'numeric(15,2)', 'vin_master.list_price is numeric(15,2)');
SELECT col_type_is('stocktech_sync', 'vin_master', 'sales_order', 'text', 'vin_master.sales_order is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'customer_ref', 'text', 'vin_master.customer_ref is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'warehouse_location', 'text', 'vin_master.warehouse_location is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'maint_status',
                   'stocktech_sync', 'maint_status', 'maint_status is an enum');
SELECT col_type_is('stocktech_sync', 'vin_master', 'pdi_status',
                   'stocktech_sync', 'pdi_status', 'pdi_status is an enum');
SELECT col_type_is('stocktech_sync', 'vin_master', 'vitw_in_transit', 'boolean', 'vin_master.vitw_in_transit is boolean');
SELECT col_not_null('stocktech_sync', 'vin_master', 'vitw_in_transit',
                    'vitw_in_transit is never null');
SELECT col_type_is('stocktech_sync', 'vin_master', 'customs_evidence', 'text', 'vin_master.customs_evidence is text');
SELECT col_type_is('stocktech_sync', 'vin_master', 'arrival_date', 'date', 'vin_master.arrival_date is date');
SELECT col_type_is('stocktech_sync', 'vin_master', 'odometer_km', 'integer', 'vin_master.odometer_km is integer');
SELECT col_type_is('stocktech_sync', 'vin_master', 'row_version', 'bigint', 'vin_master.row_version is bigint');
SELECT col_type_is('stocktech_sync', 'vin_master', 'erp_baseline', 'jsonb', 'vin_master.erp_baseline is jsonb');
SELECT col_type_is('stocktech_sync', 'audit_log', 'decisions', 'jsonb', 'audit_log.decisions is jsonb');
SELECT col_type_is('stocktech_sync', 'audit_log', 'txid', 'xid8', 'audit_log.txid is xid8');
SELECT col_type_is('stocktech_sync', 'outbound_queue', 'idempotency_key', 'uuid', 'outbound_queue.idempotency_key is uuid');

-- Enumerations.
SELECT enum_has_labels('stocktech_sync', 'commercial_status',
    ARRAY['available', 'reserved', 'sold', 'invoiced', 'delivered', 'returned', 'blocked']);
SELECT enum_has_labels('stocktech_sync', 'financial_status',
    ARRAY['unpaid', 'floorplan', 'financed', 'consignment', 'paid', 'released']);
SELECT enum_has_labels('stocktech_sync', 'maint_status',
    ARRAY['none', 'scheduled', 'in_service', 'done']);
SELECT enum_has_labels('stocktech_sync', 'pdi_status',
    ARRAY['pending', 'in_progress', 'passed', 'failed']);
SELECT enum_has_labels('stocktech_sync', 'sync_mode',
    ARRAY['manual', 'read_only', 'hybrid', 'bidirectional']);
SELECT enum_has_labels('stocktech_sync', 'conflict_strategy',
    ARRAY['erp_wins', 'stocktech_wins', 'merge', 'locked_during_transit']);

-- Functions of the public API.
SELECT has_function('stocktech_sync', 'normalize_vin', ARRAY['text', 'boolean']);
SELECT has_function('stocktech_sync', 'check_vin', ARRAY['text', 'boolean']);
SELECT has_function('stocktech_sync', 'set_mode', ARRAY['text']);
SELECT has_function('stocktech_sync', 'current_mode', ARRAY[]::text[]);
SELECT has_function('stocktech_sync', 'publish_policy', ARRAY['text', 'jsonb', 'text']);
SELECT has_function('stocktech_sync', 'activate_policy', ARRAY['text']);
SELECT has_function('stocktech_sync', 'apply_erp_record', ARRAY['jsonb', 'text', 'timestamp with time zone']);
SELECT has_function('stocktech_sync', 'apply_erp_batch', ARRAY['jsonb', 'text']);
SELECT has_function('stocktech_sync', 'explain', ARRAY['text', 'text', 'text', 'text']);
SELECT has_function('stocktech_sync', 'vin_history', ARRAY['text']);
SELECT has_function('stocktech_sync', 'import_csv', ARRAY['text', 'text', 'jsonb']);
SELECT has_function('stocktech_sync', 'apply_staged', ARRAY['text']);
SELECT has_function('stocktech_sync', 'create_connector', ARRAY['text', 'jsonb']);
SELECT has_function('stocktech_sync', 'set_secret', ARRAY['text', 'text', 'text']);
SELECT has_function('stocktech_sync', 'enable_connector', ARRAY['text', 'boolean']);
SELECT has_function('stocktech_sync', 'sync_now', ARRAY['text']);
SELECT has_function('stocktech_sync', 'retry_inbound', ARRAY['bigint']);
SELECT has_trigger('stocktech_sync', 'vin_master', 'vin_master_guard', 'the policy guard trigger exists');
SELECT columns_are('stocktech_sync', 'status', ARRAY[
    'connector', 'kind', 'enabled', 'profile_version', 'mode', 'connected', 'last_contact_at',
    'last_error', 'last_error_at', 'last_sync_at', 'vin_count', 'watermark_modified',
    'watermark_key', 'next_run_at', 'policy_version', 'outbound_pending', 'outbound_dead',
    'inbound_dead', 'inbound_pending_pages', 'worker_running', 'outbound_oldest_age'],
    'status view columns');
SELECT has_function('stocktech_sync', 'drain_outbound', ARRAY['integer']);
SELECT has_function('stocktech_sync', 'retry_dead_letter', ARRAY['bigint']);
SELECT has_function('stocktech_sync', 'discard_dead_letter', ARRAY['bigint', 'text']);
SELECT function_privs_are('stocktech_sync', 'drain_outbound', ARRAY['integer'],
                          'stocktech_sync_writer', ARRAY[]::text[], 'writer cannot drain');
SELECT col_type_is('stocktech_sync', 'outbound_queue', 'lease_until', 'timestamp with time zone',
                   'outbound changes carry a lease');
SELECT is_definer('stocktech_sync', 'set_mode', ARRAY['text'], 'set_mode is SECURITY DEFINER');
SELECT is_definer('stocktech_sync', 'publish_policy', ARRAY['text', 'jsonb', 'text'],
                  'publish_policy is SECURITY DEFINER');

-- Roles and privileges.
SELECT has_role('stocktech_sync_admin');
SELECT has_role('stocktech_sync_writer');
SELECT has_role('stocktech_sync_reader');
SELECT table_privs_are('stocktech_sync', 'vin_master', 'stocktech_sync_reader',
                       ARRAY['SELECT'], 'reader may only read vin_master');
SELECT table_privs_are('stocktech_sync', 'vin_master', 'stocktech_sync_writer',
                       ARRAY['SELECT', 'INSERT', 'UPDATE'], 'writer reads, inserts and updates');
SELECT table_privs_are('stocktech_sync', 'vin_master', 'stocktech_sync_admin',
                       ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'admin may also delete');
SELECT table_privs_are('stocktech_sync', 'vin_master', 'public', ARRAY[]::text[],
                       'PUBLIC has no privilege on vin_master');
SELECT table_privs_are('stocktech_sync', 'connector_secrets', 'stocktech_sync_reader',
                       ARRAY[]::text[], 'reader cannot read secrets');
SELECT table_privs_are('stocktech_sync', 'connector_secrets', 'stocktech_sync_writer',
                       ARRAY[]::text[], 'writer cannot read secrets');
SELECT table_privs_are('stocktech_sync', 'connector_secrets', 'stocktech_sync_admin',
                       ARRAY['SELECT'], 'admin reads secrets');
SELECT table_privs_are('stocktech_sync', 'audit_log', 'stocktech_sync_writer',
                       ARRAY['SELECT'], 'writer cannot forge audit rows');
SELECT table_privs_are('stocktech_sync', 'policy_fields', 'stocktech_sync_admin',
                       ARRAY['SELECT'], 'admin changes policies through functions only');
SELECT function_privs_are('stocktech_sync', 'set_mode', ARRAY['text'], 'stocktech_sync_admin',
                          ARRAY['EXECUTE']);
SELECT function_privs_are('stocktech_sync', 'set_mode', ARRAY['text'], 'stocktech_sync_writer',
                          ARRAY[]::text[]);
SELECT function_privs_are('stocktech_sync', 'set_mode', ARRAY['text'], 'public',
                          ARRAY[]::text[]);
SELECT function_privs_are('stocktech_sync', 'check_vin', ARRAY['text', 'boolean'],
                          'stocktech_sync_reader', ARRAY['EXECUTE']);
SELECT schema_privs_are('stocktech_sync', 'public', ARRAY[]::text[],
                        'PUBLIC cannot use the schema');
SELECT function_privs_are('stocktech_sync', 'sync_now', ARRAY['text'], 'stocktech_sync_writer',
                          ARRAY[]::text[], 'writer cannot poll the ERP');
SELECT function_privs_are('stocktech_sync', 'import_csv', ARRAY['text', 'text', 'jsonb'],
                          'stocktech_sync_admin', ARRAY['EXECUTE'], 'admin may import files');
SELECT table_privs_are('stocktech_sync', 'status', 'stocktech_sync_reader', ARRAY['SELECT'],
                       'reader reads the status');
SELECT table_privs_are('stocktech_sync', 'deferred_changes', 'stocktech_sync_writer',
                       ARRAY['SELECT'], 'writer cannot touch deferred changes directly');

-- Behaviour that the contract promises.
SELECT is((SELECT count(*)::int FROM stocktech_sync.policy_fields
           WHERE version = (SELECT version FROM stocktech_sync.policy_versions WHERE is_active)),
          18, 'the active policy governs 18 fields');
SELECT throws_ok($$UPDATE stocktech_sync.policy_fields SET outbound = NOT outbound$$,
                 '55000', NULL, 'published rules are immutable');
SELECT results_eq($$SELECT valid, check_digit_verified
                    FROM stocktech_sync.check_vin('WVWZZZ3CZPE512349')$$,
                  $$VALUES (true, false)$$, 'European VIN is valid but unverified');

SELECT * FROM finish();
ROLLBACK;
