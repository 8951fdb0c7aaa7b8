-- The extension installs its schema, tables and default configuration.
SELECT extname, extversion, extrelocatable, n.nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'stocktech_sync';

SELECT c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'stocktech_sync' AND c.relkind IN ('r', 'v', 'p')
ORDER BY c.relname;

-- The C++ field catalog and the vin_master columns agree, name and type.
SELECT f.field, f.sql_type,
       format_type(a.atttypid, a.atttypmod) AS column_type,
       f.sql_type = format_type(a.atttypid, a.atttypmod) AS same_type
FROM stocktech_sync.governed_fields() AS f
LEFT JOIN pg_attribute a
       ON a.attrelid = 'stocktech_sync.vin_master'::regclass AND a.attname = f.field
ORDER BY f.field;
SELECT count(*) AS governed_fields FROM stocktech_sync.governed_fields();

-- Defaults after install.
SELECT mode, strict_vin_check FROM stocktech_sync.settings;
SELECT stocktech_sync.current_mode();
SELECT name, kind, enabled, current_version FROM stocktech_sync.connectors;
SELECT connector, version, profile ->> 'kind' AS kind FROM stocktech_sync.connector_profiles;

-- Every object of the schema carries a comment.
SELECT c.relname AS uncommented_relation
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'stocktech_sync' AND c.relkind IN ('r', 'v', 'p')
  AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT c.relname, a.attname AS uncommented_column
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'stocktech_sync' AND c.relkind = 'r'
  AND col_description(c.oid, a.attnum) IS NULL;
SELECT p.proname AS uncommented_function
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'stocktech_sync' AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT t.typname AS uncommented_type
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'stocktech_sync' AND t.typtype = 'e'
  AND obj_description(t.oid, 'pg_type') IS NULL;

-- PUBLIC holds no privilege on any table or function of the schema.
SELECT c.relname AS public_table
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'stocktech_sync'
  AND EXISTS (SELECT FROM aclexplode(c.relacl) x WHERE x.grantee = 0);
SELECT p.proname AS public_function
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'stocktech_sync'
  AND (p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) x WHERE x.grantee = 0));

-- A second install in the same database is rejected; dropping and
-- recreating works and keeps the roles.
CREATE EXTENSION stocktech_sync;
DROP EXTENSION stocktech_sync;
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname LIKE 'stocktech_sync_%';
CREATE EXTENSION stocktech_sync;
SELECT count(*) AS policy_rules FROM stocktech_sync.policy_fields;
