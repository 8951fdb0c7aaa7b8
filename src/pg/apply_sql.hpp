/*
 * apply_sql.hpp
 *    Pieces of the inbound SQL entry points shared with the CSV import:
 *    turning JSON into records, applying a record in a subtransaction,
 *    dead-lettering and counting.
 *
 * Include postgres.h, executor/spi.h and miscadmin.h (inside extern "C")
 * first.  Every function expects SPI to be connected.
 */
#ifndef STOCKTECH_PG_APPLY_SQL_HPP
#define STOCKTECH_PG_APPLY_SQL_HPP

#include <string>

#include <nlohmann/json.hpp>

#include "pg/apply.hpp"
#include "pg/config.hpp"

namespace stocktech::pg {

/* An inbound record that could not be applied. */
struct DeadLetter
{
    std::string connector;
    Value source_ref; /* "file.csv line 12", "batch item 3", a URL */
    Value vin;        /* as received */
    Value record_json;
    Value raw_text;
    std::string reason;
    Value sqlstate;
    std::string record_kind = "columns"; /* columns, erp or csv_row: how to retry it */
};

/* The outcome of one record: applied, or failed with a data error. */
struct RecordOutcome
{
    bool ok = false;
    ApplyResult result;
    int sqlstate = 0;
    std::string reason;
    ErrorData *error = nullptr; /* the PostgreSQL error, when there was one */
};

/* Counts of a batch, returned as JSON by the batch functions. */
struct BatchCounts
{
    long read = 0, created = 0, updated = 0, unchanged = 0, dead_lettered = 0;
    long applied = 0, ignored = 0, conflicts = 0, deferred = 0, rejected = 0;
};

/* Build a record from a JSON object of vin and vin_master column names;
 * throws SqlError for anything else. */
InboundRecord record_from_json(const nlohmann::json &doc, Source source, int64_t source_ts,
                               const std::string &connector);

/* The connector's current profile version; throws when it does not exist. */
int connector_profile_version(const std::string &connector);

/* Whether an error is about the record (dead-letter it) rather than the run. */
bool is_record_error(int sqlstate);

/* Apply one record in its own subtransaction; rethrows errors that are not
 * about the record. */
RecordOutcome apply_in_subtransaction(const InboundRecord &record);

/* Insert a dead letter as the extension owner. */
void write_dead_letter(const SyncConfig &config, const DeadLetter &letter);

void count_outcome(const RecordOutcome &outcome, BatchCounts &counts);
std::string counts_json(const BatchCounts &counts);

/* A jsonb Datum from JSON text. */
Datum jsonb_datum(const std::string &text);

/* The five-character SQLSTATE of an error code. */
inline std::string
sqlstate_text(int code)
{
    return unpack_sql_state(code);
}

}  // namespace stocktech::pg

#endif
