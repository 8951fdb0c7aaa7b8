/*
 * apply_sql.cpp
 *    SQL entry points of the inbound path: apply_erp_record(),
 *    apply_erp_batch() and explain().
 *
 * apply_erp_batch() applies each record in its own subtransaction: a record
 * that fails with a data error (an invalid VIN, a value outside an
 * enumeration, an unknown field) is rolled back alone and written to
 * inbound_dead_letter with its raw JSON, the reason and the SQLSTATE, and
 * the records after it still apply.  Errors that are not about the record
 * (a cancel, a lost connection, out of memory) abort the whole batch.
 */
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
}

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pg/apply.hpp"
#include "pg/apply_sql.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/spi_util.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_apply_erp_record)
STOCKTECH_SQL_FUNCTION(stocktech_apply_erp_batch)
STOCKTECH_SQL_FUNCTION(stocktech_explain)

namespace stocktech::pg {

namespace {

/* Text form of a JSON scalar; objects and arrays are not field values. */
Value
json_scalar_text(const std::string &field, const nlohmann::json &value)
{
    if (value.is_null())
        return std::nullopt;
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_boolean())
        return std::string(value.get<bool>() ? "true" : "false");
    if (value.is_number())
        return value.dump();
    throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                   "invalid value for field \"" + field + "\"",
                   "A field value must be a JSON string, number, boolean or null, not " +
                       std::string(value.type_name()) + ".");
}

std::string
jsonb_text(Jsonb *value)
{
    char *text = nullptr;
    pg_call([&] { text = JsonbToCString(nullptr, &value->root, VARSIZE(value)); });
    return text;
}

}  // namespace

InboundRecord
record_from_json(const nlohmann::json &doc, Source source, int64_t source_ts,
                 const std::string &connector)
{
    InboundRecord record;
    record.source = source;
    record.source_ts = source_ts;
    record.connector = connector;

    if (!doc.is_object())
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "invalid record",
                       std::string("A record must be a JSON object, not ") + doc.type_name() + ".",
                       "Pass an object whose keys are vin and vin_master column names.");
    auto vin = doc.find("vin");
    if (vin == doc.end() || !vin->is_string())
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "record has no VIN",
                       "A record needs a string member \"vin\".");
    record.vin = vin->get<std::string>();

    for (auto it = doc.begin(); it != doc.end(); ++it)
    {
        if (it.key() == "vin")
            continue;
        if (it.key() == "source_ts")
        {
            /* When the ERP made the change; decides merge conflicts. */
            if (!it.value().is_string())
                throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                               "invalid source_ts in the record for vehicle \"" + record.vin +
                                   "\"",
                               "source_ts must be a timestamp string such as "
                               "\"2026-12-04T10:15:00Z\".");
            record.source_ts = parse_timestamptz(it.value().get<std::string>());
            continue;
        }
        int index = field_index(it.key());
        if (index < 0)
            throw SqlError(ERRCODE_UNDEFINED_COLUMN,
                           "unknown field \"" + it.key() + "\" in the record for vehicle \"" +
                               record.vin + "\"",
                           {}, "The governed fields are listed by stocktech_sync.governed_fields().");
        InboundField field;
        field.index = index;
        field.value = json_scalar_text(it.key(), it.value());
        record.fields.push_back(std::move(field));
    }
    return record;
}

/* Connector's current profile version; SqlError when it does not exist. */
int
connector_profile_version(const std::string &connector)
{
    Value version;
    uint64 found = 0;
    pg_call([&] {
        Oid types[1] = {TEXTOID};
        Datum values[1] = {CStringGetTextDatum(connector.c_str())};
        int rc = SPI_execute_with_args(
            "SELECT current_version FROM stocktech_sync.connectors WHERE name = $1", 1, types,
            values, nullptr, true, 1);
        if (rc != SPI_OK_SELECT)
            elog(ERROR, "could not read connector: %s", SPI_result_code_string(rc));
        found = SPI_processed;
    });
    if (found == 0)
        throw SqlError(ERRCODE_UNDEFINED_OBJECT, "connector \"" + connector + "\" does not exist",
                       {}, "Connectors are listed in stocktech_sync.connectors.");
    char *text = nullptr;
    pg_call([&] { text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1); });
    return text ? std::stoi(text) : 0;
}

bool
is_record_error(int sqlstate)
{
    int error_class = ERRCODE_TO_CATEGORY(sqlstate);
    return error_class == ERRCODE_DATA_EXCEPTION ||
           error_class == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
           error_class == ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION ||
           sqlstate == ERRCODE_UNDEFINED_OBJECT;
}

void
write_dead_letter(const SyncConfig &config, const DeadLetter &letter)
{
    static SPIPlanPtr plan = nullptr;
    if (plan == nullptr)
    {
        pg_call([&] {
            Oid types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID,
                            TEXTOID, TEXTOID, TEXTOID, TEXTOID};
            SPIPlanPtr prepared = SPI_prepare(
                "INSERT INTO stocktech_sync.inbound_dead_letter "
                "(connector, source_ref, vin, record, raw_text, reason, sqlstate, record_kind) "
                "VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)",
                8, types);
            if (prepared == nullptr)
                elog(ERROR, "could not prepare statement: %s",
                     SPI_result_code_string(SPI_result));
            SPI_keepplan(prepared);
            plan = prepared;
        });
    }
    std::vector<Value> params = {letter.connector, letter.source_ref, letter.vin,
                                 letter.record_json, letter.raw_text, letter.reason,
                                 letter.sqlstate, letter.record_kind};
    as_extension_owner(config, [&] { execute_plan(plan, params, false, 0); });
}

RecordOutcome
apply_in_subtransaction(const InboundRecord &record)
{
    RecordOutcome outcome;
    MemoryContext caller_context = CurrentMemoryContext;
    ResourceOwner caller_owner = CurrentResourceOwner;

    pg_call([&] {
        BeginInternalSubTransaction(nullptr);
        MemoryContextSwitchTo(caller_context);
    });

    try
    {
        outcome.result = apply_inbound(record);
        outcome.ok = true;
    }
    catch (const PgError &e)
    {
        outcome.error = e.data();
        outcome.sqlstate = e.data()->sqlerrcode;
        /* The message only: PostgreSQL's details can hold the whole failing row. */
        outcome.reason = e.data()->message ? e.data()->message : "error";
    }
    catch (const SqlError &e)
    {
        outcome.sqlstate = e.sqlstate();
        outcome.reason = e.message();
        if (!e.detail().empty())
            outcome.reason += ": " + e.detail();
    }

    if (outcome.ok)
    {
        pg_call([&] {
            ReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(caller_context);
            CurrentResourceOwner = caller_owner;
        });
        return outcome;
    }

    pg_call([&] {
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(caller_context);
        CurrentResourceOwner = caller_owner;
    });
    if (!is_record_error(outcome.sqlstate))
    {
        if (outcome.error != nullptr)
            throw PgError(outcome.error);
        throw SqlError(outcome.sqlstate, outcome.reason);
    }
    return outcome;
}

void
count_outcome(const RecordOutcome &outcome, BatchCounts &counts)
{
    counts.read++;
    if (!outcome.ok)
    {
        counts.dead_lettered++;
        return;
    }
    const ApplyResult &result = outcome.result;
    if (result.created)
        counts.created++;
    else if (result.written)
        counts.updated++;
    else
        counts.unchanged++;
    for (const FieldResult &field : result.fields)
    {
        switch (field.decision)
        {
            case Decision::Applied: counts.applied++; break;
            case Decision::Ignored: counts.ignored++; break;
            case Decision::Deferred: counts.deferred++; break;
            case Decision::Rejected: counts.rejected++; break;
            case Decision::ConflictResolved: counts.conflicts++; break;
            case Decision::Unchanged: break;
        }
    }
}

std::string
counts_json(const BatchCounts &counts)
{
    nlohmann::json doc = {{"read", counts.read},           {"created", counts.created},
                          {"updated", counts.updated},     {"unchanged", counts.unchanged},
                          {"dead_lettered", counts.dead_lettered},
                          {"applied", counts.applied},     {"ignored", counts.ignored},
                          {"conflicts", counts.conflicts}, {"deferred", counts.deferred},
                          {"rejected", counts.rejected}};
    return doc.dump();
}

Datum
jsonb_datum(const std::string &text)
{
    Datum result = (Datum) 0;
    pg_call([&] { result = DirectFunctionCall1(jsonb_in, CStringGetDatum(text.c_str())); });
    return result;
}

}  // namespace stocktech::pg

using namespace stocktech;
using namespace stocktech::pg;

namespace {

std::string
text_arg(FunctionCallInfo fcinfo, int n)
{
    text *value = PG_GETARG_TEXT_PP(n);
    return std::string(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

}  // namespace

/* apply_erp_record(record jsonb, connector text, source_ts timestamptz) RETURNS jsonb */
extern "C" Datum
stocktech_apply_erp_record(PG_FUNCTION_ARGS)
{
    Jsonb *record_arg = PG_GETARG_JSONB_P(0);
    Datum result = (Datum) 0;

    run_at_boundary([&] {
        CanonicalDateStyle date_style;
        std::string connector = text_arg(fcinfo, 1);
        int64_t source_ts = PG_GETARG_TIMESTAMPTZ(2);
        nlohmann::json doc = nlohmann::json::parse(jsonb_text(record_arg), nullptr, false);

        pg_call([&] { SPI_connect(); });
        int profile_version = connector_profile_version(connector);
        InboundRecord record = record_from_json(doc, Source::Erp, source_ts, connector);
        record.profile_version = profile_version;
        ApplyResult applied = apply_inbound(record);
        std::string json = result_json(applied);
        pg_call([&] { SPI_finish(); });
        result = jsonb_datum(json);
    });
    PG_RETURN_DATUM(result);
}

/* apply_erp_batch(records jsonb, connector text) RETURNS jsonb */
extern "C" Datum
stocktech_apply_erp_batch(PG_FUNCTION_ARGS)
{
    Jsonb *records_arg = PG_GETARG_JSONB_P(0);
    Datum result = (Datum) 0;

    run_at_boundary([&] {
        CanonicalDateStyle date_style;
        std::string connector = text_arg(fcinfo, 1);
        int64_t source_ts = GetCurrentTransactionStartTimestamp();
        nlohmann::json doc = nlohmann::json::parse(jsonb_text(records_arg), nullptr, false);
        if (!doc.is_array())
            throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE, "invalid batch",
                           "The records must be a JSON array of objects.");

        pg_call([&] { SPI_connect(); });
        const SyncConfig &config = current_config();
        int profile_version = connector_profile_version(connector);
        BatchCounts counts;
        for (size_t i = 0; i < doc.size(); i++)
        {
            const nlohmann::json &item = doc[i];
            InboundRecord record;
            RecordOutcome outcome;

            /* One SPI connection per record, so memory stays bounded. */
            pg_call([] { SPI_connect(); });
            try
            {
                record = record_from_json(item, Source::Erp, source_ts, connector);
                record.profile_version = profile_version;
                record.source_ref = "batch item " + std::to_string(i + 1);
                outcome = apply_in_subtransaction(record);
            }
            catch (const SqlError &e)
            {
                if (!is_record_error(e.sqlstate()))
                    throw;
                outcome.ok = false;
                outcome.sqlstate = e.sqlstate();
                outcome.reason = e.message() + (e.detail().empty() ? "" : ": " + e.detail());
            }
            if (!outcome.ok)
            {
                DeadLetter letter;
                letter.connector = connector;
                letter.source_ref = "batch item " + std::to_string(i + 1);
                if (item.is_object() && item.contains("vin") && item["vin"].is_string())
                    letter.vin = item["vin"].get<std::string>();
                letter.record_json = item.dump();
                letter.reason = outcome.reason;
                letter.sqlstate = sqlstate_text(outcome.sqlstate);
                write_dead_letter(config, letter);
            }
            count_outcome(outcome, counts);
            pg_call([] {
                SPI_finish();
                CHECK_FOR_INTERRUPTS();
            });
        }
        pg_call([&] { SPI_finish(); });
        result = jsonb_datum(counts_json(counts));
    });
    PG_RETURN_DATUM(result);
}

/* explain(vin text, field text, value text, source text) RETURNS jsonb;
 * value may be NULL (the field would become NULL), the others may not. */
extern "C" Datum
stocktech_explain(PG_FUNCTION_ARGS)
{
    Datum result = (Datum) 0;

    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                 errmsg("vin, field and source of explain() must not be null"),
                 errhint("Pass NULL only as the value, to ask about clearing the field.")));

    run_at_boundary([&] {
        CanonicalDateStyle date_style;
        std::string vin = text_arg(fcinfo, 0);
        std::string field = text_arg(fcinfo, 1);
        Value value = PG_ARGISNULL(2) ? Value() : Value(text_arg(fcinfo, 2));
        std::string source_text = text_arg(fcinfo, 3);
        std::optional<Source> source = parse_source(source_text);
        if (!source)
            throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                           "invalid source \"" + source_text + "\"", {},
                           "Valid sources are erp, csv and stocktech.");

        pg_call([&] { SPI_connect(); });
        std::string json = explain_field(vin, field, value, *source);
        pg_call([&] { SPI_finish(); });
        result = jsonb_datum(json);
    });
    PG_RETURN_DATUM(result);
}
