/*
 * csv_import.cpp
 *    import_csv(): importing a CSV file that lies on the database server.
 *
 * The file is read with PostgreSQL's own COPY parser, BeginCopyFrom() and
 * NextCopyFromRawFields() as file_fdw uses them, so quoting, newlines inside
 * quoted fields, encodings and line numbers behave as in COPY ... (FORMAT
 * csv).  The parser returns raw fields of any width; the header line is read
 * like any other line and matched against the profile's mapping here.
 *
 * Invariants:
 *  - The caller is a superuser or has the privileges of
 *    pg_read_server_files.  As in COPY FROM a file, this is checked before
 *    the file is opened.
 *  - The header line is checked before the first row is applied.  A mapped
 *    header that appears twice, a missing VIN column or, when the import is
 *    strict, an unmapped header raises an error, so nothing is applied.
 *  - Rows are read one at a time into a memory context that is reset after
 *    each row, so memory stays bounded whatever the size of the file.
 *  - COPY needs a relation as the template of its tuple descriptor.
 *    import_staging serves, opened with AccessShareLock; nothing is written
 *    to it here.
 *  - A subtransaction abort ends the backend's progress report, so the
 *    report is started again after a row that failed.
 */
extern "C" {
#include "postgres.h"

#include <sys/stat.h>

#include "access/table.h"
#include "catalog/pg_authid.h"
#include "commands/copy.h"
#include "commands/copyfrom_internal.h"
#include "commands/progress.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/backend_progress.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/profile.hpp"
#include "core/transform.hpp"
#include "pg/apply_sql.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/import_rows.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_import_csv)

namespace stocktech::pg {

namespace {

using nlohmann::json;

constexpr const char kUtf8Bom[] = "\xEF\xBB\xBF";
/* The three bytes of a UTF-8 byte order mark read as LATIN1 or WIN1252
 * ("ï»¿") and converted to UTF-8. */
constexpr const char kUtf8BomAsLatin1[] = "\xC3\xAF\xC2\xBB\xC2\xBF";

/* The open file and what the progress report needs of it. */
struct CsvFile
{
    std::string path;
    TextEncoding encoding = TextEncoding::Utf8;
    CopyFromState cstate = nullptr;
    Relation template_relation = nullptr;
    int64 size = 0;
    TimestampTz modified = 0;
    Oid progress_relid = InvalidOid; /* vin_master, shown in pg_stat_progress_copy */
    uint64 last_line = 0;            /* last physical line of the previous record */
};

/* One record of the file: its fields (std::nullopt for an unquoted empty
 * field) and the line it starts on. */
struct CsvRecord
{
    std::vector<std::optional<std::string>> fields;
    uint64 line = 0;
};

/* The header line matched against the mapping. */
struct HeaderLayout
{
    bool positional = false;       /* the file has no header line */
    std::vector<std::string> keys; /* per column: key in the row object, "" for none */
    std::vector<bool> unnamed;     /* per column: the header is empty */
    std::set<std::string> mapped;  /* sources the mapping reads */
};

struct ReadContext
{
    const char *path;
    CopyFromState cstate;
};

/* Error context of the COPY parser: names the file and line. */
void
csv_read_error_context(void *arg)
{
    const ReadContext *context = static_cast<const ReadContext *>(arg);
    errcontext("CSV file \"%s\", line %llu", context->path,
               (unsigned long long) context->cstate->cur_lineno);
}

void
check_read_privilege()
{
    bool allowed = false;
    pg_call([&] { allowed = has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES); });
    if (!allowed)
        throw SqlError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                       "must be superuser or have privileges of the pg_read_server_files role "
                       "to import a file on the database server",
                       {},
                       "Load the file from the client with psql's \\copy into "
                       "stocktech_sync.import_staging, then call stocktech_sync.apply_staged().");
}

/* Take the source_ts option out of options.  Returns std::nullopt when the
 * option is absent. */
std::optional<int64_t>
take_source_ts(json &options)
{
    if (!options.contains("source_ts"))
        return std::nullopt;
    json value = options["source_ts"];
    options.erase("source_ts");
    if (!value.is_string())
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "invalid import option \"source_ts\"",
                       "The option must be a timestamp string such as "
                       "\"2026-01-31 18:00:00+00\", not " + value.dump() + ".");
    return parse_timestamptz(value.get<std::string>());
}

/* Open the file through COPY with the profile's delimiter, quote and
 * encoding. */
void
open_csv_file(CsvFile &file, const CsvConfig &csv)
{
    const char *path = file.path.c_str();
    const char delimiter[2] = {csv.delimiter, '\0'};
    const char quote[2] = {csv.quote, '\0'};
    const char *encoding = to_string(csv.encoding);

    pg_call([&] {
        RangeVar *staging = makeRangeVar(pstrdup("stocktech_sync"), pstrdup("import_staging"), -1);
        Relation relation = table_openrv(staging, AccessShareLock);
        List *options = list_make4(
            makeDefElem(pstrdup("format"), (Node *) makeString(pstrdup("csv")), -1),
            makeDefElem(pstrdup("delimiter"), (Node *) makeString(pstrdup(delimiter)), -1),
            makeDefElem(pstrdup("quote"), (Node *) makeString(pstrdup(quote)), -1),
            makeDefElem(pstrdup("encoding"), (Node *) makeString(pstrdup(encoding)), -1));
        CopyFromState cstate =
            BeginCopyFrom(nullptr, relation, nullptr, path, false, nullptr, NIL, options);

        struct stat st;
        if (fstat(fileno(cstate->copy_file), &st) != 0)
            ereport(ERROR, (errcode_for_file_access(),
                            errmsg("could not stat file \"%s\": %m", path)));
        file.cstate = cstate;
        file.template_relation = relation;
        file.size = st.st_size;
        file.modified = time_t_to_timestamptz(st.st_mtime);
    });
    file.encoding = csv.encoding;
}

void
close_csv_file(CsvFile &file)
{
    pg_call([&] {
        EndCopyFrom(file.cstate);
        table_close(file.template_relation, NoLock);
    });
    file.cstate = nullptr;
    file.template_relation = nullptr;
}

/*
 * Publish the progress in pg_stat_progress_copy.  BeginCopyFrom() starts
 * the report, and the parser updates bytes_processed.  tuples_processed
 * counts the rows applied, tuples_excluded the rows skipped or
 * dead-lettered.
 */
void
report_copy_progress(const CsvFile &file, const ImportCounts &counts, bool restart)
{
    if (restart || (MyBEEntry != nullptr && MyBEEntry->st_progress_command != PROGRESS_COMMAND_COPY))
    {
        const int columns[] = {PROGRESS_COPY_COMMAND, PROGRESS_COPY_TYPE, PROGRESS_COPY_BYTES_TOTAL,
                               PROGRESS_COPY_BYTES_PROCESSED};
        const int64 values[] = {PROGRESS_COPY_COMMAND_FROM, PROGRESS_COPY_TYPE_FILE, file.size,
                                static_cast<int64>(file.cstate->bytes_processed)};
        pgstat_progress_start_command(PROGRESS_COMMAND_COPY, file.progress_relid);
        pgstat_progress_update_multi_param(4, columns, values);
    }
    const BatchCounts &batch = counts.batch;
    const int columns[] = {PROGRESS_COPY_TUPLES_PROCESSED, PROGRESS_COPY_TUPLES_EXCLUDED};
    const int64 values[] = {batch.created + batch.updated + batch.unchanged,
                            counts.skipped_empty_rows + batch.dead_lettered};
    pgstat_progress_update_multi_param(2, columns, values);
}

/* Give an encoding error a hint that names the encoding option. */
void
add_encoding_hint(ErrorData *error, TextEncoding encoding)
{
    if (error->hint != nullptr || (error->sqlerrcode != ERRCODE_CHARACTER_NOT_IN_REPERTOIRE &&
                                   error->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER))
        return;
    std::string hint = std::string("The file is read as ") + to_string(encoding) +
                       "; set the encoding option to the encoding the file was written in: "
                       "UTF8, LATIN1 or WIN1252.";
    pg_call([&] { error->hint = pstrdup(hint.c_str()); });
}

/* Read the next record; false at the end of the file. */
bool
read_record(CsvFile &file, CsvRecord &record)
{
    char **fields = nullptr;
    int count = 0;
    bool found = false;
    ReadContext context = {file.path.c_str(), file.cstate};

    try
    {
        pg_call([&] {
            ErrorContextCallback callback;
            callback.callback = csv_read_error_context;
            callback.arg = &context;
            callback.previous = error_context_stack;
            error_context_stack = &callback;
            found = NextCopyFromRawFields(file.cstate, &fields, &count);
            error_context_stack = callback.previous;
        });
    }
    catch (const PgError &e)
    {
        add_encoding_hint(e.data(), file.encoding);
        throw;
    }
    if (!found)
        return false;

    /* cur_lineno counts the newlines inside quoted fields, so the record
     * starts on the line after the end of the previous one. */
    record.line = file.last_line + 1;
    file.last_line = file.cstate->cur_lineno;
    record.fields.clear();
    record.fields.reserve(count);
    for (int i = 0; i < count; i++)
        record.fields.push_back(fields[i] ? std::optional<std::string>(fields[i]) : std::nullopt);
    return true;
}

/* Drop a UTF-8 byte order mark from the first field of the file. */
void
strip_byte_order_mark(const CsvFile &file, CsvRecord &record)
{
    if (record.fields.empty() || !record.fields[0])
        return;
    std::string &first = *record.fields[0];
    if (first.compare(0, 3, kUtf8Bom) == 0)
    {
        first.erase(0, 3);
        return;
    }
    if (file.encoding != TextEncoding::Utf8 && GetDatabaseEncoding() == PG_UTF8 &&
        first.compare(0, 6, kUtf8BomAsLatin1) == 0)
        throw SqlError(ERRCODE_BAD_COPY_FILE_FORMAT,
                       "file \"" + file.path + "\" starts with a UTF-8 byte order mark, but is "
                       "read as " + to_string(file.encoding),
                       {}, "Set the encoding option to UTF8.");
}

bool
is_blank_record(const CsvRecord &record)
{
    for (const std::optional<std::string> &field : record.fields)
    {
        if (field && !is_blank(*field))
            return false;
    }
    return true;
}

std::string
profile_name(const ImportProfile &import)
{
    return "connector \"" + import.connector + "\" profile version " +
           std::to_string(import.profile_version);
}

/* A header name that equals name but for letter case, or "". */
std::string
find_case_variant(const std::vector<std::string> &names, const std::string &name)
{
    for (const std::string &candidate : names)
    {
        if (candidate != name && lower(candidate) == lower(name))
            return candidate;
    }
    return {};
}

void
throw_missing_vin_column(const ImportProfile &import, const std::string &path,
                         const std::vector<std::string> &names)
{
    std::string variant = find_case_variant(names, import.vin_source);
    std::string hint =
        variant.empty()
            ? "Add the column to the file, or map the VIN to a column of the file with the "
              "mapping option."
            : "The header line has " + quote_value(variant) + "; header names are "
              "case-sensitive, so rename the column or map the VIN to it with the mapping "
              "option.";
    throw SqlError(ERRCODE_BAD_COPY_FILE_FORMAT,
                   "file \"" + path + "\" has no column " + quote_value(import.vin_source),
                   "The " + profile_name(import) + " reads the VIN from the header " +
                       quote_value(import.vin_source) + ", which is not in the header line.",
                   hint);
}

void
throw_unmapped_headers(const ImportProfile &import, const std::string &path,
                       const std::vector<std::pair<std::string, size_t>> &unmapped)
{
    std::string list;
    for (const auto &[name, position] : unmapped)
        list += (list.empty() ? "" : ", ") + quote_value(name) + " (column " +
                std::to_string(position) + ")";
    throw SqlError(ERRCODE_BAD_COPY_FILE_FORMAT,
                   "unmapped column " + quote_value(unmapped[0].first) +
                       " in the header line of file \"" + path + "\"",
                   "The import is strict, and " + profile_name(import) +
                       " maps no column to these headers: " + list + ".",
                   "Map the columns in the profile or with the mapping option, remove them from "
                   "the file, or import with {\"strict\": false} to ignore them.");
}

/*
 * Match the header line against the mapping and note the ignored headers
 * and the unnamed columns in counts.  Throws SqlError when the file cannot
 * be imported as a whole.
 */
HeaderLayout
analyze_header(const ImportProfile &import, const std::string &path, const CsvRecord &header,
               ImportCounts &counts)
{
    HeaderLayout layout;
    for (const FieldMapping &entry : import.profile.mapping)
        layout.mapped.insert(entry.source);

    std::vector<std::string> names;
    std::map<std::string, size_t> first_position;
    std::vector<std::pair<std::string, size_t>> unmapped;
    for (size_t i = 0; i < header.fields.size(); i++)
    {
        std::string name = header.fields[i] ? trim(*header.fields[i]) : std::string();
        names.push_back(name);
        layout.unnamed.push_back(name.empty());
        layout.keys.emplace_back();
        if (name.empty())
        {
            counts.skipped_empty_columns++;
            continue;
        }

        auto [seen, inserted] = first_position.emplace(name, i + 1);
        bool mapped = layout.mapped.count(name) > 0;
        if (!inserted && mapped)
            throw SqlError(ERRCODE_BAD_COPY_FILE_FORMAT,
                           "duplicate column " + quote_value(name) +
                               " in the header line of file \"" + path + "\"",
                           "Columns " + std::to_string(seen->second) + " and " +
                               std::to_string(i + 1) + " are both named " + quote_value(name) +
                               ", which " + profile_name(import) +
                               " maps, so each row would have two values for one field.",
                           "Remove or rename one of the two columns, then import the file "
                           "again.");
        if (!inserted)
            continue; /* a second unmapped column of the same name: ignored like the first */

        layout.keys.back() = name;
        if (!mapped)
        {
            unmapped.emplace_back(name, i + 1);
            counts.ignored_headers.push_back(name);
        }
    }

    if (first_position.count(import.vin_source) == 0)
        throw_missing_vin_column(import, path, names);
    if (import.strict && !unmapped.empty())
        throw_unmapped_headers(import, path, unmapped);
    return layout;
}

/* The row object of a record read with a header line. */
ImportRow
build_row(const HeaderLayout &layout, const CsvFile &file, const CsvRecord &record)
{
    ImportRow row;
    row.source_ref = file.path + " line " + std::to_string(record.line);
    const size_t width = layout.keys.size();
    const size_t count = record.fields.size();

    for (size_t i = 0; i < count; i++)
    {
        std::string value = record.fields[i] ? *record.fields[i] : std::string();
        if (i < width && !layout.keys[i].empty())
            row.values[layout.keys[i]] = value;
        else if ((i >= width || layout.unnamed[i]) && !is_blank(value))
        {
            /* Kept in the dead letter, so that the row can be repaired. */
            row.values["column " + std::to_string(i + 1)] = value;
            if (i < width)
                row.layout_errors.push_back("value " + quote_value(value) + " in column " +
                                            std::to_string(i + 1) + ", which has no header");
        }
    }

    bool extra_values = false;
    for (size_t i = width; i < count; i++)
        extra_values = extra_values || (record.fields[i] && !is_blank(*record.fields[i]));
    bool missing_values = false;
    for (size_t i = count; i < width; i++)
        missing_values = missing_values || !layout.unnamed[i];
    if (extra_values || missing_values)
        row.layout_errors.push_back("the row has " + std::to_string(count) +
                                    " values, but the header line has " + std::to_string(width) +
                                    " columns");
    return row;
}

/* The row object of a record of a file without header line: keys are
 * column numbers.  Notes the unmapped columns that hold a value. */
ImportRow
build_positional_row(const HeaderLayout &layout, const CsvFile &file, const CsvRecord &record,
                     std::set<size_t> &ignored_columns)
{
    ImportRow row;
    row.source_ref = file.path + " line " + std::to_string(record.line);
    for (size_t i = 0; i < record.fields.size(); i++)
    {
        std::string key = std::to_string(i + 1);
        std::string value = record.fields[i] ? *record.fields[i] : std::string();
        row.values[key] = value;
        if (layout.mapped.count(key) == 0 && !is_blank(value))
            ignored_columns.insert(i + 1);
    }
    return row;
}

/* The state of one import while its rows are read. */
struct FileImport
{
    ImportProfile import;
    CsvFile file;
    int64_t source_ts = 0;
    ImportCounts counts;
    std::optional<HeaderLayout> layout; /* set once the header line was read */
    std::set<size_t> ignored_columns;   /* files without header line */
    bool first_record = true;
};

/* Handle one record: the header line, an empty row, or a row to apply. */
void
process_record(FileImport &state, CsvRecord &record)
{
    if (state.first_record)
    {
        strip_byte_order_mark(state.file, record);
        state.first_record = false;
    }

    if (!state.layout)
    {
        /* Empty lines before the header line are skipped like empty rows. */
        if (is_blank_record(record))
        {
            state.counts.batch.read++;
            state.counts.skipped_empty_rows++;
            return;
        }
        state.layout = analyze_header(state.import, state.file.path, record, state.counts);
        return;
    }

    if (is_blank_record(record))
    {
        state.counts.batch.read++;
        state.counts.skipped_empty_rows++;
        return;
    }
    ImportRow row = state.layout->positional
                        ? build_positional_row(*state.layout, state.file, record,
                                               state.ignored_columns)
                        : build_row(*state.layout, state.file, record);
    apply_import_row(state.import, row, state.source_ts, state.counts);
}

/* Read and apply every record of the open file. */
void
read_all_records(FileImport &state)
{
    MemoryContext row_context = nullptr;
    pg_call([&] {
        row_context =
            AllocSetContextCreate(CurrentMemoryContext, "stocktech_sync CSV row",
                                  ALLOCSET_DEFAULT_SIZES);
    });
    std::string origin = "file \"" + state.file.path + "\"";

    for (;;)
    {
        MemoryContext loop_context = MemoryContextSwitchTo(row_context);
        CsvRecord record;
        bool found = read_record(state.file, record);
        if (found)
            process_record(state, record);
        MemoryContextSwitchTo(loop_context);
        MemoryContextReset(row_context);
        if (!found)
            break;

        report_copy_progress(state.file, state.counts, false);
        notice_import_progress(origin.c_str(), state.counts);
        pg_call([] { CHECK_FOR_INTERRUPTS(); });
    }
    pg_call([&] { MemoryContextDelete(row_context); });
}

std::string
import_file(const std::string &path, const std::string &connector, json options)
{
    std::optional<int64_t> source_ts = take_source_ts(options);
    pg_call([] { SPI_connect(); });

    FileImport state;
    state.import = load_import_profile(connector, options, ImportSource::File);
    state.file.path = path;
    state.file.progress_relid = current_config().vin_master_relid;
    if (!state.import.profile.csv.header)
        state.layout = HeaderLayout{true, {}, {}, {}};
    if (state.layout)
    {
        for (const FieldMapping &entry : state.import.profile.mapping)
            state.layout->mapped.insert(entry.source);
    }

    open_csv_file(state.file, state.import.profile.csv);
    state.source_ts = source_ts.value_or(state.file.modified);
    report_copy_progress(state.file, state.counts, true);
    read_all_records(state);
    if (!state.layout)
        throw SqlError(ERRCODE_BAD_COPY_FILE_FORMAT,
                       "file \"" + path + "\" has no header line",
                       "The file is empty or contains only empty lines.",
                       "Export the file with a header line, or set header to false and map the "
                       "columns by number.");
    close_csv_file(state.file);

    for (size_t column : state.ignored_columns)
        state.counts.ignored_headers.push_back("column " + std::to_string(column));
    std::string origin = "file \"" + path + "\"";
    log_import_summary(origin.c_str(), state.import, state.counts);
    pg_call([] { SPI_finish(); });
    return import_summary_json(state.import, path, state.counts);
}

std::string
text_datum_string(text *value)
{
    return std::string(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

std::string
jsonb_to_text(Jsonb *value)
{
    char *text = nullptr;
    pg_call([&] { text = JsonbToCString(nullptr, &value->root, VARSIZE(value)); });
    return text;
}

}  // namespace

}  // namespace stocktech::pg

using namespace stocktech::pg;

/* import_csv(path text, connector text, options jsonb) RETURNS jsonb */
extern "C" Datum
stocktech_import_csv(PG_FUNCTION_ARGS)
{
    text *path_arg = PG_GETARG_TEXT_PP(0);
    text *connector_arg = PG_GETARG_TEXT_PP(1);
    Jsonb *options_arg = PG_GETARG_JSONB_P(2);
    Datum result = (Datum) 0;

    run_at_boundary([&] {
        check_read_privilege();
        std::string path = text_datum_string(path_arg);
        std::string connector = text_datum_string(connector_arg);
        nlohmann::json options = nlohmann::json::parse(jsonb_to_text(options_arg), nullptr, false);
        if (!options.is_object())
            throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "invalid import options",
                           "The options must be a JSON object such as {\"delimiter\": \";\"}, "
                           "not " + std::string(options.type_name()) + ".");

        std::string summary = import_file(path, connector, std::move(options));
        result = jsonb_datum(summary);
    });
    PG_RETURN_DATUM(result);
}
