/*
 * import_rows.cpp
 *    Reading the CSV profile of an import and applying one row of it.
 *
 * Invariants:
 *  - The profile is read once per import and never changes during it: the
 *    options of the call are merged into a copy of the stored document.
 *  - Each row gets its own SPI connection, opened and finished by
 *    apply_import_row(), so the SPI tuple tables and the memory the engine
 *    allocates for the row are freed before the next row.  Prepared plans
 *    survive, because they are kept with SPI_keepplan().
 *  - A relcache invalidation, which can arrive at any lock acquisition,
 *    drops the cached SyncConfig.  So no reference to it is held across SPI
 *    calls here, and current_config() is called where it is used.
 */
extern "C" {
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
}

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fields.hpp"
#include "core/mapping.hpp"
#include "core/profile.hpp"
#include "core/transform.hpp"
#include "pg/apply.hpp"
#include "pg/apply_sql.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/import_rows.hpp"

namespace stocktech::pg {

namespace {

using nlohmann::json;

/* Options that override the "csv" section of the profile. */
const std::vector<std::string> kCsvOptionKeys = {"delimiter", "encoding",   "decimal_separator",
                                                 "date_format", "quote",    "header",
                                                 "strict"};

/* The stored profile of a connector, as read from the catalog tables. */
struct StoredProfile
{
    int version = 0;
    json document;
};

/* Read the connector's current profile.  Throws SqlError when there is none
 * or the connector does not read CSV files. */
StoredProfile
read_stored_profile(const std::string &connector)
{
    uint64 found = 0;
    char *kind = nullptr;
    char *version = nullptr;
    char *profile = nullptr;
    pg_call([&] {
        Oid types[1] = {TEXTOID};
        Datum values[1] = {CStringGetTextDatum(connector.c_str())};
        int rc = SPI_execute_with_args(
            "SELECT c.kind, c.current_version, p.profile::text "
            "FROM stocktech_sync.connectors AS c "
            "LEFT JOIN stocktech_sync.connector_profiles AS p "
            "ON p.connector = c.name AND p.version = c.current_version WHERE c.name = $1",
            1, types, values, nullptr, true, 1);
        if (rc != SPI_OK_SELECT)
            elog(ERROR, "could not read connector: %s", SPI_result_code_string(rc));
        found = SPI_processed;
        if (found > 0)
        {
            kind = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
            version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
            profile = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
        }
    });

    if (found == 0)
        throw SqlError(ERRCODE_UNDEFINED_OBJECT, "connector \"" + connector + "\" does not exist",
                       {}, "Connectors are listed in stocktech_sync.connectors.");
    if (std::string(kind) != "csv")
        throw SqlError(ERRCODE_WRONG_OBJECT_TYPE,
                       "connector \"" + connector + "\" does not read CSV files",
                       "Its kind is " + std::string(kind) + ".",
                       "Use a connector of kind csv, such as \"manual\".");
    if (profile == nullptr)
        throw SqlError(ERRCODE_UNDEFINED_OBJECT,
                       "connector \"" + connector + "\" has no profile version " + version,
                       "Its current_version names a row that is missing from "
                       "stocktech_sync.connector_profiles.");

    StoredProfile stored;
    stored.version = std::stoi(version);
    stored.document = json::parse(profile, nullptr, false);
    return stored;
}

std::string
list_option_keys()
{
    std::string list;
    for (const std::string &key : kCsvOptionKeys)
        list += key + ", ";
    return list + "mapping and source_ts";
}

/* Merge the options of the call into the profile document, key by key. */
void
merge_options(json &document, const json &options)
{
    for (auto it = options.begin(); it != options.end(); ++it)
    {
        const std::string &key = it.key();
        if (std::find(kCsvOptionKeys.begin(), kCsvOptionKeys.end(), key) != kCsvOptionKeys.end())
        {
            if (!document.contains("csv") || !document["csv"].is_object())
                document["csv"] = json::object();
            document["csv"][key] = it.value();
            continue;
        }
        if (key != "mapping")
            throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                           "unrecognized import option \"" + key + "\"", {},
                           "Valid options are " + list_option_keys() + ".");
        if (!it.value().is_object())
            throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "invalid import option \"mapping\"",
                           "The option must be an object of vin_master column names to mapping "
                           "entries, not " + std::string(it.value().type_name()) + ".");
        if (!document.contains("mapping") || !document["mapping"].is_object())
            document["mapping"] = json::object();
        for (auto entry = it.value().begin(); entry != it.value().end(); ++entry)
        {
            if (entry.value().is_null())
                document["mapping"].erase(entry.key());
            else
                document["mapping"][entry.key()] = entry.value();
        }
    }
}

/*
 * Take csv.strict out of the document and return it.
 *
 * TODO: csv.strict belongs in CsvConfig, the profile validator
 * (core/profile.cpp) and connectors/profile.schema.json.  Until it is
 * there, the key is read and removed here, so that validate_profile accepts
 * the rest of the section.
 */
bool
take_strict(json &document)
{
    if (!document.contains("csv") || !document["csv"].is_object() ||
        !document["csv"].contains("strict"))
        return false;
    json strict = document["csv"]["strict"];
    document["csv"].erase("strict");
    if (!strict.is_boolean())
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "invalid CSV setting \"strict\"",
                       "The setting strict must be true or false, not " + strict.dump() + ".");
    return strict.get<bool>();
}

/* The entry used for a staging column that the profile does not map. */
json
default_staging_entry(const std::string &column)
{
    json transforms = json::array({"trim"});
    if (column == "vin")
        transforms.push_back("upper");
    const FieldSpec *spec = find_field(column);
    if (spec != nullptr && spec->type == FieldType::Enum)
        transforms.push_back("lower");
    return json{{"from", column}, {"transform", transforms}};
}

/*
 * Point every mapping entry at the staging column of the same name, and
 * add an entry for each column that the profile leaves out.  A staged value
 * is already in the column of its field, so only the value rules of the
 * profile (transforms, value maps, separators, date formats) still apply.
 * Fills stored_sources with the source names the entries had before.
 */
void
use_staging_columns(json &document, std::map<std::string, std::string> &stored_sources)
{
    if (!document.contains("csv") || !document["csv"].is_object())
        document["csv"] = json::object();
    document["csv"]["header"] = true;
    if (!document.contains("mapping") || !document["mapping"].is_object())
        document["mapping"] = json::object();
    json &mapping = document["mapping"];

    std::vector<std::string> columns = {"vin"};
    for (const FieldSpec &spec : governed_fields())
        columns.emplace_back(spec.name);
    for (const std::string &column : columns)
    {
        if (mapping.contains(column))
        {
            const json &entry = mapping[column];
            const json *from = entry.is_object() && entry.contains("from") ? &entry["from"]
                                                                           : &entry;
            if (from->is_string())
                stored_sources[column] = from->get<std::string>();
        }
        if (!mapping.contains(column))
            mapping[column] = default_staging_entry(column);
        else if (mapping[column].is_object())
            mapping[column]["from"] = column;
        else
            mapping[column] = json{{"from", column}};
    }
}

/* Profile errors as sentences for an error detail. */
std::string
profile_errors_detail(const std::vector<ProfileError> &errors)
{
    std::string detail;
    for (const ProfileError &error : errors)
    {
        if (!detail.empty())
            detail += "\n";
        detail += error.message + ".";
    }
    return detail;
}

/* Mapping errors of one row, for the dead letter's reason. */
std::string
mapping_errors_text(const std::vector<MappingError> &errors)
{
    std::string text;
    for (const MappingError &error : errors)
    {
        if (!text.empty())
            text += "; ";
        text += error.column.empty() ? std::string("record") : error.column;
        if (!error.source.empty() && error.source != error.column)
            text += " (from " + quote_value(error.source) + ")";
        text += ": " + error.message;
    }
    return text;
}

std::string
join_texts(const std::vector<std::string> &texts)
{
    std::string joined;
    for (const std::string &text : texts)
        joined += (joined.empty() ? "" : "; ") + text;
    return joined;
}

InboundRecord
make_record(const ImportProfile &import, const MappedRecord &mapped, const ImportRow &row,
            int64_t source_ts)
{
    InboundRecord record;
    add_mapped_columns(mapped, record);
    record.source = Source::Csv;
    record.source_ts = source_ts;
    record.connector = import.connector;
    record.profile_version = import.profile_version;
    record.source_ref = row.source_ref;
    return record;
}

/* The row as the stored profile reads it: staged rows get the source names
 * of the profile back, file rows are unchanged. */
json
stored_profile_record(const ImportProfile &import, const ImportRow &row)
{
    if (import.stored_sources.empty())
        return row.values;
    json record = json::object();
    for (auto it = row.values.begin(); it != row.values.end(); ++it)
    {
        auto source = import.stored_sources.find(it.key());
        record[source != import.stored_sources.end() ? source->second : it.key()] = it.value();
    }
    return record;
}

void
dead_letter_row(const ImportProfile &import, const ImportRow &row, const RecordOutcome &outcome)
{
    DeadLetter letter;
    letter.connector = import.connector;
    letter.source_ref = row.source_ref;
    auto vin = row.values.find(import.vin_source);
    if (vin != row.values.end() && vin->is_string() && !is_blank(vin->get<std::string>()))
        letter.vin = vin->get<std::string>();
    letter.record_json = stored_profile_record(import, row).dump();
    letter.record_kind = "csv_row";
    letter.reason = outcome.reason;
    letter.sqlstate = sqlstate_text(outcome.sqlstate);
    write_dead_letter(current_config(), letter);
}

}  // namespace

ImportProfile
load_import_profile(const std::string &connector, const json &options, ImportSource source)
{
    StoredProfile stored = read_stored_profile(connector);
    if (!stored.document.is_object())
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                       "invalid CSV profile for connector \"" + connector + "\"",
                       "Profile version " + std::to_string(stored.version) +
                           " is not a JSON object.");

    json document = stored.document;
    merge_options(document, options);
    ImportProfile import;
    import.connector = connector;
    import.profile_version = stored.version;
    import.strict = take_strict(document);
    if (source == ImportSource::Staging)
        use_staging_columns(document, import.stored_sources);

    std::vector<ProfileError> errors;
    if (!validate_profile(document, import.profile, errors))
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                       "invalid CSV profile for connector \"" + connector + "\"",
                       profile_errors_detail(errors),
                       options.empty() ? "Fix profile version " + std::to_string(stored.version) +
                                             " in stocktech_sync.connector_profiles."
                                       : "The profile checked is version " +
                                             std::to_string(stored.version) +
                                             " with the options of this call merged into it.");
    if (import.strict && !import.profile.csv.header)
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                       "invalid CSV profile for connector \"" + connector + "\"",
                       "The setting strict checks the header line, so it needs header true.");

    const FieldMapping *vin = import.profile.find_mapping("vin");
    import.vin_source = vin != nullptr ? vin->source : "vin";
    return import;
}

bool
is_blank(const std::string &text)
{
    return trim(text).empty();
}

bool
apply_import_row(const ImportProfile &import, const ImportRow &row, int64_t source_ts,
                 ImportCounts &counts)
{
    RecordOutcome outcome;
    pg_call([&] { SPI_connect(); });

    if (!row.layout_errors.empty())
    {
        outcome.sqlstate = ERRCODE_BAD_COPY_FILE_FORMAT;
        outcome.reason = join_texts(row.layout_errors);
    }
    else
    {
        MappedRecord mapped = map_record(import.profile, row.values);
        if (!mapped.ok())
        {
            outcome.sqlstate = ERRCODE_INVALID_TEXT_REPRESENTATION;
            outcome.reason = mapping_errors_text(mapped.errors);
        }
        else
            outcome = apply_in_subtransaction(make_record(import, mapped, row, source_ts));
    }

    if (!outcome.ok)
        dead_letter_row(import, row, outcome);
    count_outcome(outcome, counts.batch);

    /* SPI_finish frees outcome.error with the rest of the row's memory. */
    outcome.error = nullptr;
    pg_call([&] { SPI_finish(); });
    return outcome.ok;
}

std::string
import_summary_json(const ImportProfile &import, const std::optional<std::string> &file,
                    const ImportCounts &counts)
{
    json summary = json::parse(counts_json(counts.batch));
    summary["file"] = file ? json(*file) : json(nullptr);
    summary["connector"] = import.connector;
    summary["profile_version"] = import.profile_version;
    summary["skipped_empty_rows"] = counts.skipped_empty_rows;
    summary["skipped_empty_columns"] = counts.skipped_empty_columns;
    summary["ignored_headers"] = counts.ignored_headers;
    return summary.dump();
}

void
notice_import_progress(const char *origin, const ImportCounts &counts)
{
    const BatchCounts &batch = counts.batch;
    if (batch.read == 0 || batch.read % kImportNoticeRows != 0)
        return;
    pg_call([&] {
        ereport(NOTICE, (errmsg("read %ld rows of %s so far, %ld of them dead-lettered",
                                batch.read, origin, batch.dead_lettered)));
    });
}

void
log_import_summary(const char *origin, const ImportProfile &import, const ImportCounts &counts)
{
    const BatchCounts &batch = counts.batch;
    const char *connector = import.connector.c_str();
    pg_call([&] {
        ereport(LOG, (errmsg("stocktech_sync imported %s with connector \"%s\" profile version "
                             "%d: %ld rows read, %ld created, %ld updated, %ld unchanged, "
                             "%ld dead-lettered, %ld empty rows skipped",
                             origin, connector, import.profile_version, batch.read, batch.created,
                             batch.updated, batch.unchanged, batch.dead_lettered,
                             counts.skipped_empty_rows)));
    });
}

}  // namespace stocktech::pg
