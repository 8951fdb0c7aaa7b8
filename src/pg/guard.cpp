/*
 * guard.cpp
 *    The BEFORE INSERT OR UPDATE trigger of vin_master that enforces the
 *    conflict policy on plain SQL writes.
 *
 * For a write that does not come from the engine itself (see
 * engine_is_writing()), the trigger:
 *  - normalises and validates the VIN of a new row and rejects VIN changes;
 *  - rejects changes to the bookkeeping columns the engine maintains;
 *  - decides every changed governed field with decide_field() as a local
 *    write, and raises an error naming the VIN, the field, its owner, the
 *    mode and the policy version for the first rejected one;
 *  - when the write ends transit (vitw_in_transit true to false), decides
 *    the deferred inbound values of the vehicle in arrival order and puts
 *    the results into the same row;
 *  - records the local change time of each accepted field, bumps the row
 *    version, and writes the audit rows, in the same transaction.
 */
extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fields.hpp"
#include "core/vin.hpp"
#include "pg/apply.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/outbound.hpp"
#include "pg/spi_util.hpp"
#include "pg/vin_sql.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_vin_master_guard)
STOCKTECH_SQL_FUNCTION(stocktech_vin_master_after_insert)

namespace stocktech::pg {

namespace {

/* Bookkeeping columns that only the engine may change. */
const char *const kEngineColumns[] = {"erp_baseline", "local_changed_at", "erp_etag",
                                      "erp_connector", "row_version", "created_at",
                                      "created_by", "check_digit_verified"};

/* Text of every column of a tuple, read with the columns' output functions. */
struct TupleText
{
    std::vector<Value> governed;
    Value vin;
    Value baseline;
    Value local_changed;
    long row_version = 0;
    Value erp_etag;
    Value erp_connector;
};

/* One deferred inbound value waiting for the end of transit. */
struct DeferredChange
{
    std::string id;
    int index = -1;
    Value value;
    Source source = Source::Erp;
    int64_t source_ts = 0;
    std::string connector;
};

struct Columns
{
    AttrNumber vin, baseline, local_changed, row_version, updated_at, updated_by, last_source,
        check_digit_verified;
};

Columns
find_columns(TupleDesc desc)
{
    Columns c;
    c.vin = SPI_fnumber(desc, "vin");
    c.baseline = SPI_fnumber(desc, "erp_baseline");
    c.local_changed = SPI_fnumber(desc, "local_changed_at");
    c.row_version = SPI_fnumber(desc, "row_version");
    c.updated_at = SPI_fnumber(desc, "updated_at");
    c.updated_by = SPI_fnumber(desc, "updated_by");
    c.last_source = SPI_fnumber(desc, "last_source");
    c.check_digit_verified = SPI_fnumber(desc, "check_digit_verified");
    return c;
}

/* Text of one attribute, or nullptr for NULL; inside pg_call. */
char *
attribute_text(HeapTuple tuple, TupleDesc desc, AttrNumber attnum)
{
    return SPI_getvalue(tuple, desc, attnum);
}

/* Whether an attribute has the same binary value in two tuples; inside
 * pg_call.  Equal content stored differently (a toasted value) reads as
 * different, which only costs a text comparison later. */
bool
binary_equal(HeapTuple old_tuple, HeapTuple new_tuple, TupleDesc desc, AttrNumber attnum)
{
    bool old_null;
    bool new_null;
    Datum old_value = heap_getattr(old_tuple, attnum, desc, &old_null);
    Datum new_value = heap_getattr(new_tuple, attnum, desc, &new_null);
    if (old_null || new_null)
        return old_null && new_null;
    Form_pg_attribute attribute = TupleDescAttr(desc, attnum - 1);
    return datumIsEqual(old_value, new_value, attribute->attbyval, attribute->attlen);
}

/*
 * Text of the columns of tuple; governed fields only where wanted[i], the
 * others stay NULL.  Reading text calls the type's output function, the
 * main cost of the trigger, so unchanged fields are skipped.
 */
TupleText
read_tuple(const SyncConfig &config, HeapTuple tuple, TupleDesc desc, const Columns &columns,
           const std::vector<bool> &wanted, bool with_bookkeeping, bool with_baseline)
{
    const size_t n = config.columns.size();
    char **texts = nullptr;
    pg_call([&] {
        texts = (char **) palloc0(sizeof(char *) * (n + 6));
        for (size_t i = 0; i < n; i++)
        {
            if (wanted[i])
                texts[i] = attribute_text(tuple, desc, config.columns[i].attnum);
        }
        texts[n] = attribute_text(tuple, desc, columns.vin);
        if (with_baseline)
            texts[n + 1] = attribute_text(tuple, desc, columns.baseline);
        if (with_bookkeeping)
        {
            texts[n + 2] = attribute_text(tuple, desc, columns.local_changed);
            texts[n + 3] = attribute_text(tuple, desc, columns.row_version);
            texts[n + 4] = attribute_text(tuple, desc, SPI_fnumber(desc, "erp_etag"));
            texts[n + 5] = attribute_text(tuple, desc, SPI_fnumber(desc, "erp_connector"));
        }
    });
    TupleText out;
    for (size_t i = 0; i < n; i++)
        out.governed.push_back(texts[i] ? Value(texts[i]) : Value());
    out.vin = texts[n] ? Value(texts[n]) : Value();
    out.baseline = texts[n + 1] ? Value(texts[n + 1]) : Value();
    out.local_changed = texts[n + 2] ? Value(texts[n + 2]) : Value();
    out.row_version = texts[n + 3] ? std::stol(texts[n + 3]) : 0;
    out.erp_etag = texts[n + 4] ? Value(texts[n + 4]) : Value();
    out.erp_connector = texts[n + 5] ? Value(texts[n + 5]) : Value();
    return out;
}

/* Whether an application changed a column the engine maintains. */
std::string
changed_engine_column(HeapTuple old_tuple, HeapTuple new_tuple, TupleDesc desc)
{
    const char *changed = nullptr;
    pg_call([&] {
        for (const char *name : kEngineColumns)
        {
            AttrNumber attnum = SPI_fnumber(desc, name);
            if (binary_equal(old_tuple, new_tuple, desc, attnum))
                continue;
            char *old_text = SPI_getvalue(old_tuple, desc, attnum);
            char *new_text = SPI_getvalue(new_tuple, desc, attnum);
            bool same = (old_text == nullptr && new_text == nullptr) ||
                        (old_text != nullptr && new_text != nullptr &&
                         strcmp(old_text, new_text) == 0);
            if (!same)
            {
                changed = name;
                break;
            }
        }
    });
    return changed ? std::string(changed) : std::string();
}

nlohmann::json
parse_object(const Value &text)
{
    if (!text)
        return nlohmann::json::object();
    nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
    return doc.is_object() ? doc : nlohmann::json::object();
}

std::string
display(const Value &value)
{
    return value ? "\"" + *value + "\"" : std::string("NULL");
}

/* Raise the error for a rejected local write of one field. */
[[noreturn]] void
throw_rejection(const SyncConfig &config, const FieldRule &rule, const std::string &vin,
                const RowContext &context, const Value &old_value, const Value &new_value)
{
    std::string field = rule.field;
    std::string where = "policy version " + config.policy_version + ", mode " +
                        to_string(config.mode);
    std::string change = "The write changed it from " + display(old_value) + " to " +
                         display(new_value) + ".";

    if (rule.stocktech_access == StocktechAccess::Read)
        throw SqlError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                       "cannot change field \"" + field + "\" of vehicle \"" + vin + "\"",
                       std::string("The ERP owns this field (erp_access ") + to_string(rule.erp_access) +
                           ", stocktech_access read) under " + where + ". " + change,
                       "Change the value in the ERP; the next sync brings it here.");
    if (config.mode == Mode::ReadOnly && erp_supplies(rule))
        throw SqlError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                       "cannot change field \"" + field + "\" of vehicle \"" + vin +
                           "\" in read_only mode",
                       "In read_only mode the ERP is master of every field it supplies (" +
                           where + "). " + change,
                       "Change the value in the ERP, or switch to hybrid mode with "
                       "stocktech_sync.set_mode('hybrid').");
    if (rule.locked_in_transit && context.in_transit_before && context.in_transit_after)
        throw SqlError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                       "cannot change field \"" + field + "\" of vehicle \"" + vin +
                           "\" while it is in transit",
                       "The field is frozen while vitw_in_transit is true (" + where + "). " +
                           change,
                       "Set vitw_in_transit to false when the vehicle arrives, in the same "
                       "statement or before.");
    throw SqlError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                   "cannot change field \"" + field + "\" of vehicle \"" + vin + "\"",
                   "The policy rejected the write (" + where + ").");
}

std::vector<DeferredChange>
load_deferred(const SyncConfig &config, const std::string &vin)
{
    static SPIPlanPtr plan = nullptr;
    if (plan == nullptr)
    {
        pg_call([&] {
            Oid types[1] = {TEXTOID};
            SPIPlanPtr prepared = SPI_prepare(
                "DELETE FROM stocktech_sync.deferred_changes WHERE vin = $1 "
                "RETURNING id::text, field, value, source, source_ts::text, connector",
                1, types);
            if (prepared == nullptr)
                elog(ERROR, "could not prepare statement: %s",
                     SPI_result_code_string(SPI_result));
            SPI_keepplan(prepared);
            plan = prepared;
        });
    }

    uint64 rows = 0;
    char ***texts = nullptr;
    /* The writer may not touch deferred_changes itself: delete as the owner. */
    as_extension_owner(config, [&] { pg_call([&] {
        Datum values[1] = {CStringGetTextDatum(vin.c_str())};
        int rc = SPI_execute_plan(plan, values, nullptr, false, 0);
        if (rc != SPI_OK_DELETE_RETURNING)
            elog(ERROR, "could not read deferred changes: %s", SPI_result_code_string(rc));
        rows = SPI_processed;
        texts = (char ***) palloc0(sizeof(char **) * (rows + 1));
        for (uint64 r = 0; r < rows; r++)
        {
            texts[r] = (char **) palloc0(sizeof(char *) * 6);
            for (int c = 0; c < 6; c++)
                texts[r][c] = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1);
        }
    }); });

    std::vector<DeferredChange> changes;
    for (uint64 r = 0; r < rows; r++)
    {
        DeferredChange change;
        change.id = texts[r][0];
        change.index = field_index(texts[r][1]);
        change.value = texts[r][2] ? Value(texts[r][2]) : Value();
        change.source = parse_source(texts[r][3]).value_or(Source::Erp);
        change.source_ts = parse_timestamptz(texts[r][4]);
        change.connector = texts[r][5] ? texts[r][5] : "";
        if (change.index >= 0)
            changes.push_back(std::move(change));
    }
    /* DELETE ... RETURNING has no order: restore the arrival order. */
    std::sort(changes.begin(), changes.end(), [](const DeferredChange &a, const DeferredChange &b) {
        return std::stol(a.id) < std::stol(b.id);
    });
    return changes;
}

nlohmann::json
decision_json(const FieldRule &rule, const Value &old_value, const Value &incoming,
              const FieldOutcome &outcome)
{
    auto json_value = [](const Value &v) {
        return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    nlohmann::json item = {{"field", rule.field},
                           {"old", json_value(old_value)},
                           {"new", json_value(outcome.new_value)},
                           {"incoming", json_value(incoming)},
                           {"decision", to_string(outcome.decision)},
                           {"strategy", to_string(rule.strategy)},
                           {"reason", outcome.reason}};
    if (outcome.conflict)
        item["conflict"] = true;
    return item;
}

long
insert_audit(const SyncConfig &config, const std::string &vin, const char *event,
             const char *source, const std::string &connector, const std::string &source_ts,
             const nlohmann::json &decisions, const nlohmann::json &detail)
{
    static SPIPlanPtr plan = nullptr;
    if (plan == nullptr)
    {
        pg_call([&] {
            Oid types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID,
                            TEXTOID, TEXTOID, TEXTOID, TEXTOID};
            SPIPlanPtr prepared = SPI_prepare(
                "INSERT INTO stocktech_sync.audit_log (vin, event, source, policy_version, "
                "connector, source_ts, decisions, detail) "
                "VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::jsonb, NULLIF($8, '{}')::jsonb) "
                "RETURNING id",
                8, types);
            if (prepared == nullptr)
                elog(ERROR, "could not prepare statement: %s",
                     SPI_result_code_string(SPI_result));
            SPI_keepplan(prepared);
            plan = prepared;
        });
    }
    std::vector<Value> params = {vin,
                                 std::string(event),
                                 std::string(source),
                                 config.policy_version,
                                 connector.empty() ? Value() : Value(connector),
                                 source_ts,
                                 decisions.dump(),
                                 detail.dump()};
    SpiResult inserted;
    as_extension_owner(config, [&] { inserted = execute_plan(plan, params, false, 1); });
    return inserted.row[0] ? std::stol(*inserted.row[0]) : 0;
}

/* Datum of text for column, for heap_modify_tuple; inside pg_call. */
Datum
input_datum(const ColumnIo &column, const char *text)
{
    return InputFunctionCall(const_cast<FmgrInfo *>(&column.input), const_cast<char *>(text),
                             column.input_param, column.typmod);
}

/* Decisions of an inserted row, audited once the row is really inserted. */
struct PendingInsert
{
    nlohmann::json decisions;
    nlohmann::json outbound;
    std::string source_ts;
};

std::map<std::string, PendingInsert> pending_inserts;
bool pending_callback_registered = false;

void
clear_pending_inserts(XactEvent event, void *)
{
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
        event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
        pending_inserts.clear();
}

/* Write the audit row of a local change and, in bidirectional mode, queue
 * it for the ERP.  The audit row records why when nothing was queued. */
void
audit_local_change(const SyncConfig &config, const std::string &vin,
                   const nlohmann::json &decisions, const nlohmann::json &outbound,
                   const std::string &source_ts, bool created, const Value &erp_connector,
                   const Value &erp_etag)
{
    nlohmann::json detail = created ? nlohmann::json{{"created", true}} : nlohmann::json::object();
    if (!outbound.empty())
        detail["outbound"] = "queued";
    long audit_id = insert_audit(config, vin, "local_change", "stocktech", "", source_ts,
                                 decisions, detail);
    if (outbound.empty())
        return;
    std::string note = enqueue_outbound(config, vin, erp_connector, erp_etag, outbound, audit_id);
    if (!note.empty())
        as_extension_owner(config, [&] {
            query_rows("UPDATE stocktech_sync.audit_log SET detail = "
                       "coalesce(detail, '{}') || jsonb_build_object('outbound', $2) "
                       "WHERE id = $1::bigint",
                       {std::to_string(audit_id), "not queued: " + note}, false);
        });
}

/* The guard itself; returns the tuple to store. */
HeapTuple
guard_row(TriggerData *trigger)
{
    const SyncConfig &config = current_config();
    Relation relation = trigger->tg_relation;
    TupleDesc desc = RelationGetDescr(relation);
    bool is_insert = TRIGGER_FIRED_BY_INSERT(trigger->tg_event);
    HeapTuple new_tuple = is_insert ? trigger->tg_trigtuple : trigger->tg_newtuple;
    HeapTuple old_tuple = is_insert ? nullptr : trigger->tg_trigtuple;
    Columns columns = find_columns(desc);

    /* Only fields whose binary value changed need their text; the transit
     * flag is always read, and everything when transit ends, because the
     * deferred values are decided against the whole row. */
    const size_t n = config.columns.size();
    const int transit_index = field_index(kTransitField);
    std::vector<bool> wanted(n, true);
    if (!is_insert)
    {
        pg_call([&] {
            for (size_t i = 0; i < n; i++)
                wanted[i] = !binary_equal(old_tuple, new_tuple, desc, config.columns[i].attnum);
        });
        wanted[transit_index] = true;
    }
    TupleText now_text =
        read_tuple(config, new_tuple, desc, columns, wanted, is_insert, is_insert);
    TupleText before;
    if (!is_insert)
    {
        /* Unchanged fields are equal on both sides and stay NULL in both. */
        bool ends_transit = now_text.governed[transit_index] == std::string(kFalseText);
        before = read_tuple(config, old_tuple, desc, columns, wanted, true, false);
        if (ends_transit && before.governed[transit_index] == std::string(kTrueText))
        {
            std::vector<bool> all(n, true);
            now_text = read_tuple(config, new_tuple, desc, columns, all, false, false);
            before = read_tuple(config, old_tuple, desc, columns, all, true, true);
        }
    }
    else
    {
        before.governed.assign(config.columns.size(), std::nullopt);
        before.governed[field_index(kTransitField)] = std::string(kFalseText);
    }

    /* The key. */
    std::string vin;
    bool check_digit_verified = false;
    if (is_insert)
    {
        VinCheck check = check_vin(now_text.vin.value_or(""), config.strict_vin_check);
        if (!check.valid)
            throw_invalid_vin(check);
        vin = check.normalized;
        check_digit_verified = check.check_digit_verified;

        /* A new row starts without ERP bookkeeping: only the engine sets it. */
        const char *forged = nullptr;
        if (now_text.baseline && *now_text.baseline != "{}")
            forged = "erp_baseline";
        else if (now_text.local_changed && *now_text.local_changed != "{}")
            forged = "local_changed_at";
        else if (now_text.erp_etag)
            forged = "erp_etag";
        else if (now_text.erp_connector)
            forged = "erp_connector";
        else if (now_text.row_version != 1)
            forged = "row_version";
        if (forged != nullptr)
            throw SqlError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                           std::string("cannot set column \"") + forged + "\" of new vehicle \"" +
                               vin + "\"",
                           "The sync engine maintains this column.",
                           "Insert only the VIN, the governed fields and vitw_in_transit.");
    }
    else
    {
        vin = before.vin.value_or("");
        if (now_text.vin != before.vin)
            throw SqlError(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION,
                           "cannot change the VIN of vehicle \"" + vin + "\"",
                           "The new value was " + display(now_text.vin) + ".",
                           "The VIN is the key of a vehicle; insert a new row instead.");
        std::string column = changed_engine_column(old_tuple, new_tuple, desc);
        if (!column.empty())
            throw SqlError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                           "cannot change column \"" + column + "\" of vehicle \"" + vin + "\"",
                           "The sync engine maintains this column.",
                           "Change only the governed fields and vitw_in_transit.");
    }

    /* Local decisions for every changed governed field. */
    TimestampTz now = GetCurrentStatementStartTimestamp();
    std::string now_ts = format_timestamptz(now);
    int transit = field_index(kTransitField);
    RowContext context;
    context.mode = config.mode;
    context.source = Source::Stocktech;
    context.source_ts = now;
    context.row_exists = !is_insert;
    context.in_transit_before = before.governed[transit] == std::string(kTrueText);
    context.in_transit_after = now_text.governed[transit] == std::string(kTrueText);

    nlohmann::json local_changed = parse_object(before.local_changed);
    nlohmann::json decisions = nlohmann::json::array();
    nlohmann::json outbound = nlohmann::json::object();
    std::vector<Value> values = now_text.governed;
    for (size_t i = 0; i < values.size(); i++)
    {
        if (values[i] == before.governed[i])
            continue;
        const FieldRule &rule = config.rules[i];
        FieldInput input;
        input.current = before.governed[i];
        input.incoming = values[i];
        FieldOutcome outcome = decide_field(rule, context, input);
        if (outcome.decision == Decision::Rejected)
            throw_rejection(config, rule, vin, context, before.governed[i], values[i]);
        if (outcome.set_local_changed)
            local_changed[rule.field] = now_ts;
        if (outcome.enqueue_outbound)
            outbound[rule.field] = values[i] ? nlohmann::json(*values[i]) : nlohmann::json();
        decisions.push_back(decision_json(rule, before.governed[i], values[i], outcome));
    }

    /* End of transit: decide the deferred inbound values, in arrival order. */
    nlohmann::json baseline = parse_object(before.baseline);
    bool baseline_changed = false;
    std::vector<bool> replaced(values.size(), false);
    nlohmann::json deferred_decisions = nlohmann::json::array();
    std::string deferred_connector;
    if (!is_insert && context.in_transit_before && !context.in_transit_after)
    {
        for (const DeferredChange &change : load_deferred(config, vin))
        {
            const FieldRule &rule = config.rules[change.index];
            RowContext inbound;
            inbound.mode = config.mode;
            inbound.source = change.source;
            inbound.source_ts = change.source_ts;
            inbound.row_exists = true;
            FieldInput input;
            input.current = values[change.index];
            input.has_baseline = baseline.contains(rule.field);
            if (input.has_baseline && baseline[rule.field].is_string())
                input.baseline = baseline[rule.field].get<std::string>();
            if (local_changed.contains(rule.field) && local_changed[rule.field].is_string())
                input.local_changed_at =
                    parse_timestamptz(local_changed[rule.field].get<std::string>());
            input.incoming = change.value;
            FieldOutcome outcome = decide_field(rule, inbound, input);
            if (outcome.set_baseline)
            {
                baseline[rule.field] = change.value ? nlohmann::json(*change.value)
                                                    : nlohmann::json(nullptr);
                baseline_changed = true;
            }
            if (outcome.new_value != values[change.index])
            {
                values[change.index] = outcome.new_value;
                replaced[change.index] = true;
            }
            nlohmann::json item = decision_json(rule, input.current, change.value, outcome);
            item["deferred_id"] = std::stol(change.id);
            deferred_decisions.push_back(std::move(item));
            deferred_connector = change.connector;
        }
    }

    /* The row to store. */
    std::string local_changed_text = local_changed.dump();
    std::string baseline_text = baseline.dump();
    long row_version = is_insert ? 1 : before.row_version + 1;
    HeapTuple result = nullptr;
    pg_call([&] {
        int natts = desc->natts;
        Datum *datums = (Datum *) palloc0(sizeof(Datum) * natts);
        bool *nulls = (bool *) palloc0(sizeof(bool) * natts);
        bool *replace = (bool *) palloc0(sizeof(bool) * natts);

        for (size_t i = 0; i < values.size(); i++)
        {
            if (!replaced[i])
                continue;
            AttrNumber attnum = config.columns[i].attnum;
            replace[attnum - 1] = true;
            nulls[attnum - 1] = !values[i].has_value();
            if (values[i])
                datums[attnum - 1] = input_datum(config.columns[i], values[i]->c_str());
        }
        replace[columns.vin - 1] = true;
        datums[columns.vin - 1] = CStringGetTextDatum(vin.c_str());
        if (is_insert)
        {
            replace[columns.check_digit_verified - 1] = true;
            datums[columns.check_digit_verified - 1] = BoolGetDatum(check_digit_verified);
            AttrNumber created_at = SPI_fnumber(desc, "created_at");
            AttrNumber created_by = SPI_fnumber(desc, "created_by");
            replace[created_at - 1] = true;
            datums[created_at - 1] = TimestampTzGetDatum(now);
            replace[created_by - 1] = true;
            datums[created_by - 1] =
                CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
        }
        replace[columns.local_changed - 1] = true;
        datums[columns.local_changed - 1] =
            DirectFunctionCall1(jsonb_in, CStringGetDatum(local_changed_text.c_str()));
        if (baseline_changed)
        {
            replace[columns.baseline - 1] = true;
            datums[columns.baseline - 1] =
                DirectFunctionCall1(jsonb_in, CStringGetDatum(baseline_text.c_str()));
        }
        replace[columns.row_version - 1] = true;
        datums[columns.row_version - 1] = Int64GetDatum(row_version);
        replace[columns.updated_at - 1] = true;
        datums[columns.updated_at - 1] = TimestampTzGetDatum(now);
        replace[columns.updated_by - 1] = true;
        datums[columns.updated_by - 1] =
            CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
        replace[columns.last_source - 1] = true;
        datums[columns.last_source - 1] = CStringGetTextDatum("stocktech");
        result = heap_modify_tuple(new_tuple, desc, datums, nulls, replace);
    });

    /* An INSERT is audited by the AFTER INSERT trigger, because INSERT ... ON
     * CONFLICT runs this trigger also for rows it then does not insert. */
    if (is_insert && !decisions.empty())
    {
        PendingInsert &pending = pending_inserts[vin];
        pending.decisions = decisions;
        pending.outbound = outbound;
        pending.source_ts = now_ts;
        return result;
    }

    /* The audit rows: the local change, then the deferred values it released. */
    if (!decisions.empty())
    {
        audit_local_change(config, vin, decisions, outbound, now_ts, false,
                           before.erp_connector, before.erp_etag);
    }
    if (!deferred_decisions.empty())
        insert_audit(config, vin, "deferred_apply", "erp", deferred_connector, now_ts,
                     deferred_decisions, nlohmann::json{{"reason", "transit ended"}});
    return result;
}

}  // namespace

}  // namespace stocktech::pg

/* _vin_master_guard() RETURNS trigger */
extern "C" Datum
stocktech_vin_master_guard(PG_FUNCTION_ARGS)
{
    TriggerData *trigger = (TriggerData *) fcinfo->context;
    HeapTuple result = nullptr;

    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigger->tg_event) ||
        !TRIGGER_FIRED_FOR_ROW(trigger->tg_event) ||
        TRIGGER_FIRED_BY_DELETE(trigger->tg_event))
        elog(ERROR, "_vin_master_guard must be a BEFORE INSERT OR UPDATE row trigger");

    if (stocktech::pg::engine_is_writing())
        return PointerGetDatum(TRIGGER_FIRED_BY_INSERT(trigger->tg_event)
                                   ? trigger->tg_trigtuple
                                   : trigger->tg_newtuple);

    if (!stocktech::pg::pending_callback_registered)
    {
        RegisterXactCallback(stocktech::pg::clear_pending_inserts, nullptr);
        stocktech::pg::pending_callback_registered = true;
    }

    stocktech::pg::run_at_boundary([&] {
        stocktech::pg::CanonicalDateStyle date_style;
        stocktech::pg::pg_call([&] {
            if (SPI_connect() != SPI_OK_CONNECT)
                elog(ERROR, "SPI_connect failed");
        });
        result = stocktech::pg::guard_row(trigger);
        stocktech::pg::pg_call([&] {
            /* The new tuple must outlive SPI_finish. */
            result = SPI_copytuple(result);
            SPI_finish();
        });
    });
    return PointerGetDatum(result);
}

/* _vin_master_after_insert() RETURNS trigger: audits a row the guard let in */
extern "C" Datum
stocktech_vin_master_after_insert(PG_FUNCTION_ARGS)
{
    TriggerData *trigger = (TriggerData *) fcinfo->context;

    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigger->tg_event) ||
        !TRIGGER_FIRED_BY_INSERT(trigger->tg_event))
        elog(ERROR, "_vin_master_after_insert must be an AFTER INSERT row trigger");
    if (stocktech::pg::engine_is_writing() || stocktech::pg::pending_inserts.empty())
        return PointerGetDatum(nullptr);

    stocktech::pg::run_at_boundary([&] {
        stocktech::pg::CanonicalDateStyle date_style;
        char *vin_text = nullptr;
        stocktech::pg::pg_call([&] {
            vin_text = SPI_getvalue(trigger->tg_trigtuple, RelationGetDescr(trigger->tg_relation),
                                    SPI_fnumber(RelationGetDescr(trigger->tg_relation), "vin"));
        });
        auto pending = stocktech::pg::pending_inserts.find(vin_text ? vin_text : "");
        if (pending == stocktech::pg::pending_inserts.end())
            return;
        stocktech::pg::PendingInsert insert = std::move(pending->second);
        stocktech::pg::pending_inserts.erase(pending);

        stocktech::pg::pg_call([&] {
            if (SPI_connect() != SPI_OK_CONNECT)
                elog(ERROR, "SPI_connect failed");
        });
        const stocktech::pg::SyncConfig &config = stocktech::pg::current_config();
        stocktech::pg::audit_local_change(config, vin_text, insert.decisions, insert.outbound,
                                          insert.source_ts, true, std::nullopt, std::nullopt);
        stocktech::pg::pg_call([] { SPI_finish(); });
    });
    return PointerGetDatum(nullptr);
}
