/*
 * apply_staged.cpp
 *    apply_staged(): applying the CSV rows that a client loaded into
 *    import_staging, for example with psql's \copy.
 *
 * Invariants:
 *  - Calls are serialized by a SHARE UPDATE EXCLUSIVE lock on
 *    import_staging.  It does not conflict with the ROW EXCLUSIVE lock of
 *    loaders, so rows can be loaded while others are applied, and no row is
 *    applied twice.
 *  - Rows are read through a cursor in id order, kFetchRows at a time, so
 *    memory stays bounded whatever the number of staged rows.
 *  - Every row read is deleted in the calling transaction, whether it
 *    applied, was dead-lettered or was empty.  An error that is not about a
 *    row rolls the whole call back, and every row stays staged.
 *  - The lock and the deletes run as the extension owner, because the roles
 *    that stage rows hold only INSERT and SELECT on the table.
 */
extern "C" {
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/timestamp.h"
}

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fields.hpp"
#include "pg/apply_sql.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/import_rows.hpp"
#include "pg/spi_util.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_apply_staged)

namespace stocktech::pg {

namespace {

using nlohmann::json;

constexpr long kFetchRows = 1000;

/* Columns read before vin and the governed fields. */
constexpr int kIdColumn = 0;
constexpr int kLoadedAtColumn = 1;
constexpr int kSourceFileColumn = 2;
constexpr int kLineNumberColumn = 3;
constexpr int kFirstValueColumn = 4;

/* One staged row.  values contains vin, then the governed fields in
 * catalog order. */
struct StagedRow
{
    int64 id = 0;
    TimestampTz loaded_at = 0;
    Value source_file;
    Value line_number;
    std::vector<Value> values;
};

/* vin and the governed fields, in the order of the staged values. */
std::vector<std::string>
value_columns()
{
    std::vector<std::string> columns = {"vin"};
    for (const FieldSpec &spec : governed_fields())
        columns.emplace_back(spec.name);
    return columns;
}

std::string
staged_rows_query()
{
    std::string sql = "SELECT id, loaded_at, source_file, line_number::text";
    for (const std::string &column : value_columns())
        sql += ", " + column;
    return sql + " FROM stocktech_sync.import_staging ORDER BY id";
}

/* Run a statement of the extension's own bookkeeping as the extension owner. */
void
execute_as_owner(const char *sql)
{
    as_extension_owner(current_config(), [&] {
        pg_call([&] {
            int rc = SPI_execute(sql, false, 0);
            if (rc < 0)
                elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
        });
    });
}

void
delete_staged_row(int64 id)
{
    static SPIPlanPtr plan = nullptr;
    if (plan == nullptr)
    {
        pg_call([&] {
            Oid types[1] = {TEXTOID};
            SPIPlanPtr prepared = SPI_prepare(
                "DELETE FROM stocktech_sync.import_staging WHERE id = $1::bigint", 1, types);
            if (prepared == nullptr)
                elog(ERROR, "could not prepare statement: %s",
                     SPI_result_code_string(SPI_result));
            SPI_keepplan(prepared);
            plan = prepared;
        });
    }
    std::vector<Value> params = {std::to_string(id)};
    as_extension_owner(current_config(), [&] { execute_plan(plan, params, false, 0); });
}

/*
 * Fetch the next rows of the cursor.  The cells are read in batch_context,
 * copied to C++ strings and freed with the tuple table before returning.
 */
std::vector<StagedRow>
fetch_staged_rows(Portal portal, MemoryContext batch_context, int width)
{
    uint64 count = 0;
    int64 *ids = nullptr;
    TimestampTz *loaded = nullptr;
    char **cells = nullptr;
    pg_call([&] {
        SPI_cursor_fetch(portal, true, kFetchRows);
        count = SPI_processed;
        MemoryContext caller_context = MemoryContextSwitchTo(batch_context);
        ids = (int64 *) palloc(sizeof(int64) * (count + 1));
        loaded = (TimestampTz *) palloc(sizeof(TimestampTz) * (count + 1));
        cells = (char **) palloc0(sizeof(char *) * (count * width + 1));
        for (uint64 r = 0; r < count; r++)
        {
            HeapTuple tuple = SPI_tuptable->vals[r];
            TupleDesc desc = SPI_tuptable->tupdesc;
            bool isnull = false;
            ids[r] = DatumGetInt64(SPI_getbinval(tuple, desc, kIdColumn + 1, &isnull));
            loaded[r] =
                DatumGetTimestampTz(SPI_getbinval(tuple, desc, kLoadedAtColumn + 1, &isnull));
            for (int c = kSourceFileColumn; c < width; c++)
                cells[r * width + c] = SPI_getvalue(tuple, desc, c + 1);
        }
        MemoryContextSwitchTo(caller_context);
        SPI_freetuptable(SPI_tuptable);
    });

    std::vector<StagedRow> rows(count);
    for (uint64 r = 0; r < count; r++)
    {
        StagedRow &row = rows[r];
        char **row_cells = cells + r * width;
        auto cell = [&](int c) { return row_cells[c] ? Value(row_cells[c]) : Value(); };
        row.id = ids[r];
        row.loaded_at = loaded[r];
        row.source_file = cell(kSourceFileColumn);
        row.line_number = cell(kLineNumberColumn);
        for (int c = kFirstValueColumn; c < width; c++)
            row.values.push_back(cell(c));
    }
    pg_call([&] { MemoryContextReset(batch_context); });
    return rows;
}

/* Where a staged row came from, for the dead letter and the audit. */
std::string
staged_source_ref(const StagedRow &row)
{
    std::string staging_row = "staging row " + std::to_string(row.id);
    if (row.source_file && row.line_number)
        return *row.source_file + " line " + *row.line_number;
    if (row.source_file)
        return *row.source_file + ", " + staging_row;
    if (row.line_number)
        return staging_row + ", line " + *row.line_number;
    return staging_row;
}

/* Apply, dead-letter or skip one staged row, then delete it. */
void
process_staged_row(const ImportProfile &import, const std::vector<std::string> &columns,
                   const StagedRow &staged, ImportCounts &counts)
{
    ImportRow row;
    row.source_ref = staged_source_ref(staged);
    bool blank = true;
    for (size_t i = 0; i < columns.size(); i++)
    {
        if (!staged.values[i])
            continue;
        row.values[columns[i]] = *staged.values[i];
        blank = blank && is_blank(*staged.values[i]);
    }

    if (blank)
    {
        counts.batch.read++;
        counts.skipped_empty_rows++;
    }
    else
        apply_import_row(import, row, staged.loaded_at, counts);
    delete_staged_row(staged.id);
}

std::string
apply_staged_rows(const std::string &connector)
{
    pg_call([] { SPI_connect(); });
    ImportProfile import = load_import_profile(connector, json::object(), ImportSource::Staging);
    execute_as_owner("LOCK TABLE stocktech_sync.import_staging IN SHARE UPDATE EXCLUSIVE MODE");

    const std::vector<std::string> columns = value_columns();
    const int width = kFirstValueColumn + static_cast<int>(columns.size());
    std::string sql = staged_rows_query();
    Portal portal = nullptr;
    MemoryContext batch_context = nullptr;
    pg_call([&] {
        portal = SPI_cursor_open_with_args(nullptr, sql.c_str(), 0, nullptr, nullptr, nullptr,
                                           false, 0);
        batch_context = AllocSetContextCreate(CurrentMemoryContext, "stocktech_sync staged rows",
                                              ALLOCSET_DEFAULT_SIZES);
    });

    ImportCounts counts;
    for (;;)
    {
        std::vector<StagedRow> rows = fetch_staged_rows(portal, batch_context, width);
        if (rows.empty())
            break;
        for (const StagedRow &row : rows)
        {
            process_staged_row(import, columns, row, counts);
            notice_import_progress("stocktech_sync.import_staging", counts);
            pg_call([] { CHECK_FOR_INTERRUPTS(); });
        }
    }

    pg_call([&] {
        SPI_cursor_close(portal);
        MemoryContextDelete(batch_context);
    });
    log_import_summary("stocktech_sync.import_staging", import, counts);
    pg_call([] { SPI_finish(); });
    return import_summary_json(import, std::nullopt, counts);
}

}  // namespace

}  // namespace stocktech::pg

using namespace stocktech::pg;

/* apply_staged(connector text) RETURNS jsonb */
extern "C" Datum
stocktech_apply_staged(PG_FUNCTION_ARGS)
{
    text *connector_arg = PG_GETARG_TEXT_PP(0);
    Datum result = (Datum) 0;

    run_at_boundary([&] {
        std::string connector(VARDATA_ANY(connector_arg), VARSIZE_ANY_EXHDR(connector_arg));
        std::string summary = apply_staged_rows(connector);
        result = jsonb_datum(summary);
    });
    PG_RETURN_DATUM(result);
}
