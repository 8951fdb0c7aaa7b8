-- Default policy 3.2 and the immutability of published versions.

SELECT version, published, is_active, published_by IS NOT NULL AS has_publisher, comment
FROM stocktech_sync.policy_versions;

SELECT field, erp_access, stocktech_access, strategy, locked_in_transit, outbound
FROM stocktech_sync.policy_fields WHERE version = '3.2'
ORDER BY array_position(ARRAY(SELECT field FROM stocktech_sync.governed_fields()), field);

SELECT count(*) AS fields, count(DISTINCT strategy) AS strategies
FROM stocktech_sync.policy_fields WHERE version = '3.2';
SELECT strategy, count(*) FROM stocktech_sync.policy_fields WHERE version = '3.2'
GROUP BY strategy ORDER BY strategy;

-- Published rules cannot be changed, deleted, added to or truncated.
UPDATE stocktech_sync.policy_fields SET strategy = 'stocktech_wins'
WHERE version = '3.2' AND field = 'model_code';
DELETE FROM stocktech_sync.policy_fields WHERE version = '3.2' AND field = 'odometer_km';
INSERT INTO stocktech_sync.policy_fields (version, field, erp_access, stocktech_access, strategy)
VALUES ('3.2', 'extra', 'master', 'read', 'erp_wins');
TRUNCATE stocktech_sync.policy_fields;
UPDATE stocktech_sync.policy_versions SET comment = 'changed' WHERE version = '3.2';
DELETE FROM stocktech_sync.policy_versions WHERE version = '3.2';

-- Publishing a new version: copy 3.2 with pdi_status no longer outbound.
SELECT stocktech_sync.publish_policy('3.3',
    (SELECT jsonb_agg(jsonb_build_object(
        'field', field, 'erp_access', erp_access, 'stocktech_access', stocktech_access,
        'strategy', strategy, 'locked_in_transit', locked_in_transit,
        'outbound', CASE WHEN field = 'pdi_status' THEN false ELSE outbound END))
     FROM stocktech_sync.policy_fields WHERE version = '3.2'),
    'PDI results stay local');
SELECT version, published, is_active FROM stocktech_sync.policy_versions ORDER BY version;
SELECT stocktech_sync.activate_policy('3.3');
SELECT version, is_active FROM stocktech_sync.policy_versions ORDER BY version;
SELECT stocktech_sync.activate_policy('3.3');
SELECT stocktech_sync.activate_policy('3.2');

-- Invalid definitions are rejected with the first problem found.
SELECT stocktech_sync.publish_policy('3.2', '[]', 'again');
SELECT stocktech_sync.publish_policy('4', '[]', 'bad version');
SELECT stocktech_sync.publish_policy('4.0', '{}', 'not an array');
SELECT stocktech_sync.publish_policy('4.0', '[]', 'empty');
SELECT stocktech_sync.publish_policy('4.0',
    '[{"field": "model_code", "erp_access": "owner", "stocktech_access": "read", "strategy": "erp_wins"}]',
    'bad access');
SELECT stocktech_sync.publish_policy('4.0',
    '[{"field": "model_code", "erp_access": "master", "stocktech_access": "read", "strategy": "erp_wins", "colour": 1}]',
    'unknown key');
SELECT stocktech_sync.publish_policy('4.0',
    (SELECT jsonb_agg(jsonb_build_object(
        'field', field, 'erp_access', erp_access, 'stocktech_access', stocktech_access,
        'strategy', CASE WHEN field = 'odometer_km' THEN 'locked_during_transit'
                         ELSE strategy::text END,
        'locked_in_transit', locked_in_transit, 'outbound', outbound))
     FROM stocktech_sync.policy_fields WHERE version = '3.2'),
    'two transit strategies');
SELECT stocktech_sync.activate_policy('9.9');
SELECT version FROM stocktech_sync.policy_versions ORDER BY version;

-- Configuration changes of this file, in order.
SELECT event, source, decisions -> 0 ->> 'field' AS setting,
       decisions -> 0 ->> 'old' AS old, decisions -> 0 ->> 'new' AS new, policy_version
FROM stocktech_sync.audit_log
WHERE decisions -> 0 ->> 'field' IN ('policy_published', 'active_policy') ORDER BY id;
