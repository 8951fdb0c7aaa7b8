-- CSV import (mode M1).  import_csv() reads a file on the database server
-- through COPY, and apply_staged() applies rows that a client loaded into
-- import_staging with \copy.  `make installcheck` copies the fixtures of
-- test/data/csv to /tmp/stocktech_sync_csv, where the server can read them.

-- The built-in connector reads files whose headers are vin_master columns.
SELECT name, kind, current_version FROM stocktech_sync.connectors WHERE name = 'manual';
SELECT version, profile -> 'csv' AS csv, profile -> 'mapping' -> 'list_price' AS list_price
FROM stocktech_sync.connector_profiles WHERE connector = 'manual' ORDER BY version;

-- The counts of an import summary, one line per import.
CREATE FUNCTION pg_temp.counts(summary jsonb)
RETURNS TABLE (read int, created int, updated int, unchanged int, dead_lettered int,
               skipped_rows int, skipped_columns int, ignored_headers jsonb)
LANGUAGE sql AS $$
    SELECT (summary ->> 'read')::int, (summary ->> 'created')::int,
           (summary ->> 'updated')::int, (summary ->> 'unchanged')::int,
           (summary ->> 'dead_lettered')::int, (summary ->> 'skipped_empty_rows')::int,
           (summary ->> 'skipped_empty_columns')::int, summary -> 'ignored_headers';
$$;

-- A UTF-8 byte order mark before a quoted "vin" header is ignored.
SELECT jsonb_pretty(stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv'));
SELECT vin, model_code, model_year, commercial_status, list_price
FROM stocktech_sync.vin_master WHERE vin = 'WVWZZZ1JZXW000101';
-- Read as LATIN1, the byte order mark shows that the encoding is wrong.
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv', 'manual',
                                 '{"encoding": "LATIN1"}');

-- A quoted field may contain a newline.  The row after it starts on line 4,
-- and its invalid VIN is dead-lettered with that line while the others apply.
SELECT * FROM pg_temp.counts(
    stocktech_sync.import_csv('/tmp/stocktech_sync_csv/quoted_newline.csv'));
SELECT vin, model_code, customer_ref, warehouse_location
FROM stocktech_sync.vin_master WHERE vin IN ('WVWZZZ1JZXW000102', 'WVWZZZ1JZXW000103')
ORDER BY vin;
SELECT source_ref, vin, reason, sqlstate, record_kind, record
FROM stocktech_sync.inbound_dead_letter
WHERE source_ref LIKE '%/quoted_newline.csv %' ORDER BY id;

-- Empty rows and unnamed empty columns (trailing delimiters) are skipped and
-- counted.  A value under an unnamed column, or past the last column, has no
-- field to go to: that row is dead-lettered.
SELECT * FROM pg_temp.counts(
    stocktech_sync.import_csv('/tmp/stocktech_sync_csv/empty_rows_columns.csv'));
SELECT vin, model_code, list_price
FROM stocktech_sync.vin_master WHERE vin BETWEEN 'WVWZZZ1JZXW000104' AND 'WVWZZZ1JZXW000108'
ORDER BY vin;
SELECT source_ref, reason, sqlstate, record
FROM stocktech_sync.inbound_dead_letter
WHERE source_ref LIKE '%/empty_rows_columns.csv %' ORDER BY id;

-- A mapped header that appears twice rejects the whole file.
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/duplicate_header.csv');
SELECT count(*) AS applied_rows
FROM stocktech_sync.vin_master WHERE vin = 'WVWZZZ1JZXW000109';

-- Bad rows are dead-lettered with their line and reason: an invalid VIN, a
-- value outside an enumeration, and a row with two invalid values, among
-- them 89.990,50 with '.' as decimal separator.  The other rows apply.
SELECT * FROM pg_temp.counts(
    stocktech_sync.import_csv('/tmp/stocktech_sync_csv/invalid_rows.csv'));
SELECT vin, model_code, model_year, commercial_status, list_price, dealer_code
FROM stocktech_sync.vin_master WHERE vin BETWEEN 'WVWZZZ1JZXW000110' AND 'WVWZZZ1JZXW000113'
ORDER BY vin;
SELECT source_ref, vin, reason, sqlstate
FROM stocktech_sync.inbound_dead_letter
WHERE source_ref LIKE '%/invalid_rows.csv %' ORDER BY id;

-- An ERP export: LATIN1, semicolons, decimal comma, DD.MM.YYYY dates, ERP
-- status codes mapped to enumeration values, and a column no one maps.
INSERT INTO stocktech_sync.connectors (name, kind) VALUES ('erp_export', 'csv');
INSERT INTO stocktech_sync.connector_profiles (connector, version, profile)
VALUES ('erp_export', 1, $json${
  "format_version": 1,
  "kind": "csv",
  "csv": {"delimiter": ";", "encoding": "LATIN1", "decimal_separator": ",",
          "date_format": "DD.MM.YYYY"},
  "mapping": {
    "vin": {"from": "VIN", "transform": ["trim", "upper"]},
    "model_code": {"from": "Model", "transform": ["trim"]},
    "model_year": "ModelYear",
    "dealer_code": "Dealer",
    "commercial_status": {"from": "SalesStatus", "transform": ["trim", "upper"],
                          "value_map": {"A0": "available", "R1": "reserved", "S2": "sold"}},
    "financial_status": {"from": "FinStatus", "transform": ["trim", "upper"],
                         "value_map": {"UP": "unpaid", "FP": "floorplan", "FI": "financed",
                                       "PD": "paid"}},
    "list_price": "ListPrice",
    "warehouse_location": "StorageBin",
    "arrival_date": "ArrivalDate"
  }
}$json$);

-- A strict import rejects the unmapped header, and applies nothing.
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/erp_latin1.csv', 'erp_export',
                                 '{"strict": true}');
SELECT count(*) AS applied_rows FROM stocktech_sync.vin_master WHERE vin LIKE '9%';
-- Read as UTF8, the LATIN1 bytes are invalid.
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/erp_latin1.csv', 'erp_export',
                                 '{"encoding": "UTF8"}');
-- The manual connector finds no "vin" header, and the hint names "VIN".
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/erp_latin1.csv', 'manual',
                                 '{"delimiter": ";", "encoding": "LATIN1"}');

SELECT jsonb_pretty(stocktech_sync.import_csv(
    '/tmp/stocktech_sync_csv/erp_latin1.csv', 'erp_export',
    '{"source_ts": "2026-01-31 18:00:00+00"}'));
SELECT vin, model_code, model_year, dealer_code, commercial_status, financial_status,
       list_price, warehouse_location, to_char(arrival_date, 'YYYY-MM-DD') AS arrival_date
FROM stocktech_sync.vin_master WHERE vin LIKE '9%' ORDER BY vin;
SELECT vin, event, source, connector, profile_version,
       source_ts = '2026-01-31 18:00:00+00' AS source_ts_from_option, detail
FROM stocktech_sync.audit_log WHERE vin = '9BWZZZ377VT004251' ORDER BY id;

-- Options override the profile key by key: the same connector reads WIN1252.
SELECT * FROM pg_temp.counts(stocktech_sync.import_csv(
    '/tmp/stocktech_sync_csv/erp_win1252.csv', 'erp_export', '{"encoding": "WIN1252"}'));
SELECT vin, model_code, list_price, warehouse_location
FROM stocktech_sync.vin_master WHERE vin = 'TMBJJ7NE1L0000001';

-- Importing the same file again changes nothing.
SELECT * FROM pg_temp.counts(stocktech_sync.import_csv(
    '/tmp/stocktech_sync_csv/erp_latin1.csv', 'erp_export'));

-- A file without header line: the mapping reads columns by number, and a
-- column it does not read is reported by number.
INSERT INTO stocktech_sync.connectors (name, kind) VALUES ('erp_positional', 'csv');
INSERT INTO stocktech_sync.connector_profiles (connector, version, profile)
VALUES ('erp_positional', 1, '{
  "format_version": 1, "kind": "csv",
  "csv": {"delimiter": ";", "decimal_separator": ",", "header": false},
  "mapping": {"vin": {"from": 1}, "model_code": {"from": 2}, "list_price": {"from": 3}}
}');
SELECT * FROM pg_temp.counts(stocktech_sync.import_csv(
    '/tmp/stocktech_sync_csv/positional.csv', 'erp_positional'));
SELECT vin, model_code, list_price
FROM stocktech_sync.vin_master WHERE vin IN ('WVWZZZ1JZXW000119', 'WVWZZZ1JZXW000120')
ORDER BY vin;
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/positional.csv', 'erp_positional',
                                 '{"strict": true}');

-- Invalid calls.
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv', 'manual',
                                 '{"delimeter": ";"}');
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv', 'manual',
                                 '{"delimiter": "|"}');
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv', 'manual',
                                 '{"strict": "yes"}');
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv', 'manual', '[]');
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv', 'no_such_connector');
INSERT INTO stocktech_sync.connectors (name, kind) VALUES ('erp_odata', 'odata_v4');
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv', 'erp_odata');

-- The import has ended its COPY progress report.
SELECT count(*) AS copy_progress_rows
FROM pg_stat_progress_copy WHERE pid = pg_backend_pid();

-- Client-side path: \copy into import_staging, then apply_staged().  Rows
-- are applied in id order, and a NULL leaves a field unchanged.  Every row
-- read is deleted, whether it applied, was dead-lettered or was empty.
\copy stocktech_sync.import_staging (vin, model_code, model_year, commercial_status, list_price, warehouse_location) FROM '/tmp/stocktech_sync_csv/staged.csv' CSV HEADER
INSERT INTO stocktech_sync.import_staging (vin, model_code) VALUES (NULL, NULL), ('  ', '');
INSERT INTO stocktech_sync.import_staging (source_file, line_number, vin, commercial_status)
VALUES ('loader.csv', 7, 'WVWZZZ1JZXW000114', 'sold');
SELECT min(id) AS first_id FROM stocktech_sync.import_staging \gset
SELECT id - :first_id AS row_offset, source_file, line_number, vin, model_code,
       commercial_status, list_price, loaded_by = session_user AS by_session
FROM stocktech_sync.import_staging ORDER BY id;
SELECT jsonb_pretty(stocktech_sync.apply_staged());
SELECT count(*) AS staged_rows_left FROM stocktech_sync.import_staging;
SELECT vin, model_code, model_year, commercial_status, list_price, warehouse_location
FROM stocktech_sync.vin_master WHERE vin BETWEEN 'WVWZZZ1JZXW000114' AND 'WVWZZZ1JZXW000116'
ORDER BY vin;
SELECT source_ref = 'staging row ' || (:first_id + 1) AS source_ref_names_row, vin, reason,
       sqlstate, record
FROM stocktech_sync.inbound_dead_letter
WHERE source_ref LIKE 'staging row %' ORDER BY id;
SELECT replace(detail ->> 'source_ref', 'staging row ' || :first_id, 'staging row <first id>')
       AS source_ref
FROM stocktech_sync.audit_log WHERE vin = 'WVWZZZ1JZXW000114' ORDER BY id;

-- Staged rows go through the connector's value maps and decimal separator.
-- The dead letter of a staged row uses the profile's header names, as a row
-- of the file would.
INSERT INTO stocktech_sync.import_staging (vin, commercial_status, list_price)
VALUES ('9BD17164LB5000001', 'R1', '74.400,00'), ('93HGE6870AZ000123', 'ZZ', '1,5');
SELECT * FROM pg_temp.counts(stocktech_sync.apply_staged('erp_export'));
SELECT vin, commercial_status, list_price
FROM stocktech_sync.vin_master WHERE vin IN ('9BD17164LB5000001', '93HGE6870AZ000123')
ORDER BY vin;
SELECT connector, vin, reason, record_kind, record
FROM stocktech_sync.inbound_dead_letter
WHERE connector = 'erp_export' ORDER BY id;

-- Privileges: reading a server file needs superuser or pg_read_server_files,
-- even for stocktech_sync_admin, which may still stage and apply rows.  A
-- writer may stage rows but not apply them.
CREATE ROLE stocktech_regress_csv_admin IN ROLE stocktech_sync_admin;
SET ROLE stocktech_regress_csv_admin;
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv');
INSERT INTO stocktech_sync.import_staging (vin, model_code) VALUES ('WVWZZZ1JZXW000117', 'TERAMONT');
SELECT * FROM pg_temp.counts(stocktech_sync.apply_staged());
RESET ROLE;
SELECT vin, model_code FROM stocktech_sync.vin_master WHERE vin = 'WVWZZZ1JZXW000117';

SET ROLE stocktech_sync_writer;
INSERT INTO stocktech_sync.import_staging (vin, model_code) VALUES ('WVWZZZ1JZXW000118', 'POLO');
SELECT stocktech_sync.apply_staged();
SELECT stocktech_sync.import_csv('/tmp/stocktech_sync_csv/bom.csv');
RESET ROLE;
SET ROLE stocktech_sync_reader;
SELECT count(*) FROM stocktech_sync.import_staging;
RESET ROLE;

DELETE FROM stocktech_sync.import_staging;
DROP ROLE stocktech_regress_csv_admin;
