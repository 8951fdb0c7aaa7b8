/*
 * apply.cpp
 *    Applying inbound records to vin_master through the policy engine.
 *
 * Invariants:
 *  - The caller has connected SPI and runs each record in its own
 *    (sub)transaction; every write of one record (the row, its deferred
 *    changes, its audit row) happens in that transaction.
 *  - The row is locked with SELECT ... FOR UPDATE before it is decided, so
 *    a concurrent local write or apply waits and then sees the result.
 *  - engine_writing is true only while the engine's own INSERT or UPDATE of
 *    vin_master runs, and is reset by PG_FINALLY on error, so the guard
 *    trigger never lets an application write through.
 *  - PostgreSQL calls that may raise errors run inside pg_call().
 */
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fields.hpp"
#include "core/mapping.hpp"
#include "core/vin.hpp"
#include "pg/apply.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/spi_util.hpp"
#include "pg/vin_sql.hpp"

namespace stocktech::pg {

namespace {

bool engine_writing = false;

enum PlanId { kSelectRow, kInsertRow, kUpdateRow, kInsertAudit, kInsertDeferred, kPlanCount };
SPIPlanPtr plans[kPlanCount];

/* Bookkeeping columns read after the governed fields. */
constexpr int kBaselineColumn = 0;
constexpr int kLocalChangedColumn = 1;
constexpr int kEtagColumn = 2;

std::string
governed_column_list(bool with_casts, int first_param)
{
    std::string out;
    const std::vector<FieldSpec> &fields = governed_fields();
    for (size_t i = 0; i < fields.size(); i++)
    {
        if (i > 0)
            out += ", ";
        if (with_casts)
            out += "$" + std::to_string(first_param + i) + "::" + std::string(fields[i].sql_type);
        else
            out += std::string(fields[i].name);
    }
    return out;
}

/* The SQL of each prepared statement; parameters are all text. */
std::string
plan_sql(PlanId id)
{
    const size_t n = governed_fields().size();
    switch (id)
    {
        case kSelectRow:
            return "SELECT " + governed_column_list(false, 0) +
                   ", erp_baseline::text, local_changed_at::text, erp_etag "
                   "FROM stocktech_sync.vin_master WHERE vin = $1 FOR UPDATE";
        case kInsertRow:
        {
            size_t p = n + 2;
            return "INSERT INTO stocktech_sync.vin_master (vin, " +
                   governed_column_list(false, 0) +
                   ", check_digit_verified, last_source, erp_baseline, erp_etag, "
                   "erp_connector) VALUES ($1, " +
                   governed_column_list(true, 2) + ", $" + std::to_string(p) + "::boolean, $" +
                   std::to_string(p + 1) + ", $" + std::to_string(p + 2) + "::jsonb, $" +
                   std::to_string(p + 3) + ", $" + std::to_string(p + 4) +
                   ") ON CONFLICT (vin) DO NOTHING RETURNING vin";
        }
        case kUpdateRow:
        {
            std::string sql = "UPDATE stocktech_sync.vin_master SET ";
            const std::vector<FieldSpec> &fields = governed_fields();
            for (size_t i = 0; i < n; i++)
                sql += std::string(fields[i].name) + " = $" + std::to_string(i + 2) +
                       "::" + std::string(fields[i].sql_type) + ", ";
            size_t p = n + 2;
            sql += "updated_at = pg_catalog.now(), updated_by = session_user, "
                   "row_version = row_version + 1, last_source = $" +
                   std::to_string(p) + ", erp_baseline = $" + std::to_string(p + 1) +
                   "::jsonb, erp_etag = $" + std::to_string(p + 2) + ", erp_connector = $" +
                   std::to_string(p + 3) + " WHERE vin = $1";
            return sql;
        }
        case kInsertAudit:
            return "INSERT INTO stocktech_sync.audit_log (vin, event, source, policy_version, "
                   "connector, profile_version, source_ts, decisions, detail) VALUES "
                   "($1, $2, $3, $4, $5, $6::integer, $7::timestamptz, $8::jsonb, $9::jsonb) "
                   "RETURNING id";
        case kInsertDeferred:
            return "INSERT INTO stocktech_sync.deferred_changes (vin, field, value, source, "
                   "source_ts, connector, audit_id) VALUES "
                   "($1, $2, $3, $4, $5::timestamptz, $6, $7::bigint)";
        case kPlanCount:
            break;
    }
    return {};
}

int
plan_param_count(PlanId id)
{
    const int n = static_cast<int>(governed_fields().size());
    switch (id)
    {
        case kSelectRow: return 1;
        case kInsertRow: return n + 6;
        case kUpdateRow: return n + 5;
        case kInsertAudit: return 9;
        case kInsertDeferred: return 7;
        case kPlanCount: break;
    }
    return 0;
}

SPIPlanPtr
get_plan(PlanId id)
{
    if (plans[id] == nullptr)
    {
        std::string sql = plan_sql(id);
        int nargs = plan_param_count(id);
        pg_call([&] {
            Oid *types = (Oid *) palloc(sizeof(Oid) * nargs);
            for (int i = 0; i < nargs; i++)
                types[i] = TEXTOID;
            SPIPlanPtr plan = SPI_prepare(sql.c_str(), nargs, types);
            if (plan == nullptr)
                elog(ERROR, "could not prepare statement: %s", SPI_result_code_string(SPI_result));
            SPI_keepplan(plan);
            plans[id] = plan;
        });
    }
    return plans[id];
}

/* Run an engine write of vin_master with the guard trigger stood down. */
SpiResult
run_engine_write(PlanId id, const std::vector<Value> &params, const std::string &vin)
{
    SPIPlanPtr plan = get_plan(id);
    SpiResult result;
    pg_call([&] {
        PG_TRY();
        {
            engine_writing = true;
            result = execute_plan_raw(plan, params, false);
        }
        PG_FINALLY();
        {
            engine_writing = false;
        }
        PG_END_TRY();
    });
    return result;
}

nlohmann::json
parse_object(const Value &text)
{
    if (!text)
        return nlohmann::json::object();
    nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return nlohmann::json::object();
    return doc;
}

nlohmann::json
value_json(const Value &value)
{
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

/* The state of one vehicle as stored, or all NULL for a new one. */
struct StoredRow
{
    bool exists = false;
    std::vector<Value> values; /* indexed like governed_fields() */
    nlohmann::json baseline = nlohmann::json::object();
    nlohmann::json local_changed = nlohmann::json::object();
    Value etag;
};

StoredRow
read_row(const std::string &vin)
{
    StoredRow row;
    const size_t n = governed_fields().size();
    SpiResult result = execute_plan(get_plan(kSelectRow), {vin}, false, n + 3);
    row.values.assign(n, std::nullopt);
    if (result.processed == 0)
    {
        row.values[field_index(kTransitField)] = std::string(kFalseText);
        return row;
    }
    row.exists = true;
    for (size_t i = 0; i < n; i++)
        row.values[i] = result.row[i];
    row.baseline = parse_object(result.row[n + kBaselineColumn]);
    row.local_changed = parse_object(result.row[n + kLocalChangedColumn]);
    row.etag = result.row[n + kEtagColumn];
    return row;
}

std::string
field_name(int index)
{
    return std::string(governed_fields()[index].name);
}

/* Whether deferred values of a field wait for the end of transit. */
bool
has_deferred(const std::string &vin, const std::string &field)
{
    SpiResult found = execute_plan_text(
        "SELECT 1 FROM stocktech_sync.deferred_changes WHERE vin = $1 AND field = $2 LIMIT 1",
        {vin, field});
    return found.processed > 0;
}

/* Decide every field the record brings against the stored row. */
void
decide_record(const SyncConfig &config, const InboundRecord &record,
              const std::vector<Value> &incoming, StoredRow &row, ApplyResult &result,
              std::vector<std::pair<int, Value>> &deferred, bool &baseline_changed)
{
    RowContext context;
    context.mode = config.mode;
    context.source = record.source;
    context.source_ts = record.source_ts;
    context.row_exists = row.exists;
    context.in_transit_before = row.values[field_index(kTransitField)] == std::string(kTrueText);
    context.in_transit_after = context.in_transit_before;

    for (size_t i = 0; i < record.fields.size(); i++)
    {
        int index = record.fields[i].index;
        const FieldRule &rule = config.rules[index];
        std::string name = field_name(index);
        FieldInput input;

        input.current = row.values[index];
        input.has_baseline = row.baseline.contains(name);
        if (input.has_baseline && row.baseline[name].is_string())
            input.baseline = row.baseline[name].get<std::string>();
        if (row.local_changed.contains(name) && row.local_changed[name].is_string())
            input.local_changed_at =
                parse_timestamptz(row.local_changed[name].get<std::string>());
        input.incoming = incoming[i];

        FieldOutcome outcome = decide_field(rule, context, input);

        /* In transit, a value equal to the stored one still queues behind
         * earlier deferred values of the field, so the last ERP value wins
         * at arrival instead of a stale deferred one. */
        if (outcome.decision == Decision::Unchanged && context.in_transit_before &&
            rule.locked_in_transit && has_deferred(result.vin, name))
        {
            outcome.decision = Decision::Deferred;
            outcome.set_baseline = false;
            outcome.reason = "value deferred behind earlier deferred values of the field, "
                             "because the vehicle is in transit";
        }
        FieldResult field;
        field.index = index;
        field.decision = outcome.decision;
        field.old_value = input.current;
        field.new_value = outcome.new_value;
        field.incoming = input.incoming;
        field.reason = outcome.reason;
        field.conflict = outcome.conflict;
        result.fields.push_back(field);

        row.values[index] = outcome.new_value;
        if (outcome.set_baseline &&
            (!input.has_baseline || input.baseline != input.incoming))
        {
            row.baseline[name] = value_json(input.incoming);
            baseline_changed = true;
        }
        if (outcome.decision == Decision::Deferred)
            deferred.emplace_back(index, input.incoming);
    }
}

/* Parameters of the INSERT or UPDATE of the row. */
std::vector<Value>
row_params(const std::string &vin, const StoredRow &row)
{
    std::vector<Value> params;
    params.push_back(vin);
    for (const Value &value : row.values)
        params.push_back(value);
    return params;
}

nlohmann::json
decisions_json(const SyncConfig &config, const ApplyResult &result)
{
    nlohmann::json decisions = nlohmann::json::array();
    for (const FieldResult &field : result.fields)
    {
        nlohmann::json item = {{"field", field_name(field.index)},
                               {"old", value_json(field.old_value)},
                               {"new", value_json(field.new_value)},
                               {"incoming", value_json(field.incoming)},
                               {"decision", to_string(field.decision)},
                               {"strategy", to_string(config.rules[field.index].strategy)},
                               {"reason", field.reason}};
        if (field.conflict)
            item["conflict"] = true;
        decisions.push_back(std::move(item));
    }
    return decisions;
}

}  // namespace

void
add_mapped_columns(const MappedRecord &mapped, InboundRecord &record)
{
    record.vin = mapped.vin;
    record.etag = mapped.etag;
    for (const MappedColumn &column : mapped.columns)
    {
        InboundField field;
        field.index = field_index(column.column);
        field.value = column.value;
        if (field.index >= 0)
            record.fields.push_back(std::move(field));
    }
}

std::string
mapping_errors_text(const MappedRecord &mapped)
{
    std::string text;
    for (const MappingError &error : mapped.errors)
    {
        if (!text.empty())
            text += "; ";
        text += (error.column.empty() ? error.source : error.column) + ": " + error.message;
    }
    return text;
}

void
acknowledge_outbound(const std::string &vin, const nlohmann::json &fields, const Value &etag)
{
    static SPIPlanPtr plan = nullptr;
    if (plan == nullptr)
    {
        pg_call([&] {
            Oid types[3] = {TEXTOID, TEXTOID, TEXTOID};
            SPIPlanPtr prepared = SPI_prepare(
                "UPDATE stocktech_sync.vin_master SET erp_etag = coalesce($3, erp_etag), "
                "erp_baseline = erp_baseline || $2::jsonb WHERE vin = $1",
                3, types);
            if (prepared == nullptr)
                elog(ERROR, "could not prepare statement: %s",
                     SPI_result_code_string(SPI_result));
            SPI_keepplan(prepared);
            plan = prepared;
        });
    }
    std::vector<Value> params = {vin, fields.dump(), etag};
    SpiResult result;
    pg_call([&] {
        PG_TRY();
        {
            engine_writing = true;
            result = execute_plan_raw(plan, params, false);
        }
        PG_FINALLY();
        {
            engine_writing = false;
        }
        PG_END_TRY();
    });
}

bool
engine_is_writing()
{
    return engine_writing;
}

ApplyResult
apply_inbound(const InboundRecord &record)
{
    const SyncConfig &config = current_config();
    ApplyResult result;

    /* The VIN first: a record without a valid key cannot go anywhere. */
    VinCheck vin = check_vin(record.vin, config.strict_vin_check);
    if (!vin.valid)
        throw_invalid_vin(vin);
    result.vin = vin.normalized;

    /* Canonical text of every incoming value; an invalid one fails the record. */
    std::vector<Value> incoming;
    std::vector<bool> seen(governed_fields().size(), false);
    for (const InboundField &field : record.fields)
    {
        if (seen[field.index])
            throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                           "field \"" + field_name(field.index) + "\" appears twice in the record "
                           "for vehicle \"" + result.vin + "\"");
        seen[field.index] = true;
        if (!field.value)
        {
            incoming.emplace_back();
            continue;
        }
        try
        {
            incoming.emplace_back(canonical_text(config.columns[field.index], *field.value));
        }
        catch (const PgError &e)
        {
            /* Name the field and the vehicle; the type's message gives the reason. */
            int sqlstate = e.data()->sqlerrcode;
            std::string reason = e.data()->message ? e.data()->message : "invalid value";
            if (!reason.empty() && reason[0] >= 'a' && reason[0] <= 'z')
                reason[0] = static_cast<char>(reason[0] - 'a' + 'A');
            throw SqlError(sqlstate,
                           "invalid value for field \"" + field_name(field.index) +
                               "\" of vehicle \"" + result.vin + "\"",
                           reason + ".");
        }
    }

    std::string source_ts = format_timestamptz(record.source_ts);
    const char *source = to_string(record.source);

    for (int attempt = 0;; attempt++)
    {
        StoredRow row = read_row(result.vin);
        std::vector<std::pair<int, Value>> deferred;
        bool baseline_changed = false;
        std::vector<Value> old_values = row.values;

        result.fields.clear();
        decide_record(config, record, incoming, row, result, deferred, baseline_changed);

        bool values_changed = row.values != old_values;
        bool etag_changed = record.etag && record.etag != row.etag;
        Value etag = record.etag ? record.etag : row.etag;
        std::string baseline = row.baseline.dump();

        if (!row.exists)
        {
            std::vector<Value> params = row_params(result.vin, row);
            params.push_back(std::string(vin.check_digit_verified ? "true" : "false"));
            params.push_back(std::string(source));
            params.push_back(baseline);
            params.push_back(etag);
            params.push_back(record.connector);
            SpiResult inserted = run_engine_write(kInsertRow, params, result.vin);
            if (inserted.processed == 0)
            {
                /* A concurrent transaction created the vehicle first: decide
                 * again against its row. */
                if (attempt < 3)
                    continue;
                throw SqlError(ERRCODE_T_R_SERIALIZATION_FAILURE,
                               "could not create vehicle \"" + result.vin + "\"",
                               "Concurrent transactions kept creating it first.");
            }
            result.created = true;
            result.written = true;
        }
        else if (values_changed || baseline_changed || etag_changed)
        {
            std::vector<Value> params = row_params(result.vin, row);
            params.push_back(std::string(source));
            params.push_back(baseline);
            params.push_back(etag);
            params.push_back(record.connector);
            run_engine_write(kUpdateRow, params, result.vin);
            result.written = true;
        }

        bool only_unchanged = true;
        for (const FieldResult &field : result.fields)
            only_unchanged = only_unchanged && field.decision == Decision::Unchanged;
        if (only_unchanged && !result.created)
            return result;

        nlohmann::json detail = nlohmann::json::object();
        if (!record.source_ref.empty())
            detail["source_ref"] = record.source_ref;
        if (result.created)
            detail["created"] = true;
        if (record.etag)
            detail["etag"] = *record.etag;

        bool csv = record.source == Source::Csv;
        std::vector<Value> audit = {result.vin,
                                    std::string(csv ? "csv_row" : "erp_record"),
                                    std::string(source),
                                    config.policy_version,
                                    record.connector,
                                    record.profile_version > 0
                                        ? Value(std::to_string(record.profile_version))
                                        : Value(),
                                    source_ts,
                                    decisions_json(config, result).dump(),
                                    detail.empty() ? Value() : Value(detail.dump())};
        SpiResult audited;
        as_extension_owner(config, [&] {
            audited = execute_plan(get_plan(kInsertAudit), audit, false, 1);
        });
        result.audit_id = audited.row[0] ? std::stol(*audited.row[0]) : 0;

        for (const auto &change : deferred)
        {
            std::vector<Value> params = {result.vin, field_name(change.first), change.second,
                                         std::string(source), source_ts, record.connector,
                                         std::to_string(result.audit_id)};
            as_extension_owner(config, [&] {
                execute_plan(get_plan(kInsertDeferred), params, false, 0);
            });
        }
        return result;
    }
}

std::string
explain_field(const std::string &vin_text, const std::string &field, const Value &value,
              Source source)
{
    const SyncConfig &config = current_config();
    VinCheck vin = check_vin(vin_text, config.strict_vin_check);
    if (!vin.valid)
        throw_invalid_vin(vin);
    int index = field_index(field);
    if (index < 0)
        throw SqlError(ERRCODE_UNDEFINED_COLUMN, "\"" + field + "\" is not a governed field",
                       {}, "The governed fields are listed by stocktech_sync.governed_fields().");

    Value incoming = value ? Value(canonical_text(config.columns[index], *value)) : Value();

    /* The row as stored, read without a lock. */
    StoredRow row;
    const size_t n = governed_fields().size();
    std::string sql = plan_sql(kSelectRow);
    sql.resize(sql.size() - std::string(" FOR UPDATE").size());
    SpiResult stored;
    {
        std::vector<Value> params = {vin.normalized};
        char **texts = nullptr;
        uint64 processed = 0;
        pg_call([&] {
            Oid types[1] = {TEXTOID};
            Datum values[1] = {CStringGetTextDatum(params[0]->c_str())};
            int rc = SPI_execute_with_args(sql.c_str(), 1, types, values, nullptr, true, 1);
            if (rc != SPI_OK_SELECT)
                elog(ERROR, "could not read vehicle: %s", SPI_result_code_string(rc));
            processed = SPI_processed;
            if (processed > 0)
            {
                texts = (char **) palloc0(sizeof(char *) * (n + 3));
                for (size_t i = 0; i < n + 3; i++)
                    texts[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
            }
        });
        row.values.assign(n, std::nullopt);
        row.values[field_index(kTransitField)] = std::string(kFalseText);
        if (processed > 0)
        {
            row.exists = true;
            for (size_t i = 0; i < n; i++)
                row.values[i] = texts[i] ? Value(texts[i]) : Value();
            row.baseline = parse_object(texts[n + kBaselineColumn]
                                            ? Value(texts[n + kBaselineColumn]) : Value());
            row.local_changed = parse_object(texts[n + kLocalChangedColumn]
                                                 ? Value(texts[n + kLocalChangedColumn])
                                                 : Value());
        }
    }

    const FieldRule &rule = config.rules[index];
    RowContext context;
    context.mode = config.mode;
    context.source = source;
    context.source_ts = GetCurrentTransactionStartTimestamp();
    context.row_exists = row.exists;
    context.in_transit_before = row.values[field_index(kTransitField)] == std::string(kTrueText);
    context.in_transit_after = context.in_transit_before;
    if (source == Source::Stocktech && field == kTransitField)
        context.in_transit_after = incoming == std::string(kTrueText);

    FieldInput input;
    input.current = row.values[index];
    input.has_baseline = row.baseline.contains(field);
    if (input.has_baseline && row.baseline[field].is_string())
        input.baseline = row.baseline[field].get<std::string>();
    if (row.local_changed.contains(field) && row.local_changed[field].is_string())
        input.local_changed_at = parse_timestamptz(row.local_changed[field].get<std::string>());
    input.incoming = incoming;

    FieldOutcome outcome = decide_field(rule, context, input);
    nlohmann::json doc = {
        {"vin", vin.normalized},
        {"field", field},
        {"source", to_string(source)},
        {"mode", to_string(config.mode)},
        {"policy_version", config.policy_version},
        {"strategy", to_string(rule.strategy)},
        {"erp_access", to_string(rule.erp_access)},
        {"stocktech_access", to_string(rule.stocktech_access)},
        {"vehicle_exists", row.exists},
        {"in_transit", context.in_transit_before},
        {"current", value_json(input.current)},
        {"baseline", input.has_baseline ? value_json(input.baseline) : nlohmann::json(nullptr)},
        {"incoming", value_json(incoming)},
        {"decision", to_string(outcome.decision)},
        {"result", value_json(outcome.new_value)},
        {"reason", outcome.reason},
        {"conflict", outcome.conflict},
        {"outbound", outcome.enqueue_outbound}};
    return doc.dump();
}

std::string
result_json(const ApplyResult &result)
{
    nlohmann::json decisions = nlohmann::json::array();
    for (const FieldResult &field : result.fields)
    {
        nlohmann::json item = {{"field", field_name(field.index)},
                               {"decision", to_string(field.decision)},
                               {"old", value_json(field.old_value)},
                               {"new", value_json(field.new_value)},
                               {"reason", field.reason}};
        if (field.decision != Decision::Applied && field.incoming != field.new_value)
            item["incoming"] = value_json(field.incoming);
        decisions.push_back(std::move(item));
    }
    nlohmann::json doc = {{"vin", result.vin},
                          {"created", result.created},
                          {"audit_id", result.audit_id == 0 ? nlohmann::json(nullptr)
                                                            : nlohmann::json(result.audit_id)},
                          {"decisions", decisions}};
    return doc.dump();
}

}  // namespace stocktech::pg
