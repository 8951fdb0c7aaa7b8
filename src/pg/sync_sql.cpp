/*
 * sync_sql.cpp
 *    SQL entry points of the connector layer: sync_now(), the profile check
 *    behind create_connector(), retry_inbound() and the worker wake-up.
 */
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/mapping.hpp"
#include "core/profile.hpp"
#include "pg/apply.hpp"
#include "pg/apply_sql.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/spi_util.hpp"
#include "pg/sync.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_sync_now)
STOCKTECH_SQL_FUNCTION(stocktech_profile_problem)
STOCKTECH_SQL_FUNCTION(stocktech_retry_inbound)
STOCKTECH_SQL_FUNCTION(stocktech_wake_workers)

namespace stocktech::pg {

namespace {

std::string
text_arg(FunctionCallInfo fcinfo, int n)
{
    text *value = PG_GETARG_TEXT_PP(n);
    return std::string(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

std::string
jsonb_arg_text(FunctionCallInfo fcinfo, int n)
{
    Jsonb *value = PG_GETARG_JSONB_P(n);
    char *text = nullptr;
    pg_call([&] { text = JsonbToCString(nullptr, &value->root, VARSIZE(value)); });
    return text;
}

/* Pids of the inbound workers of this database, woken at commit. */
List *pids_to_wake = NIL;
bool wake_callback_registered = false;

void
wake_at_commit(XactEvent event, void *)
{
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
    {
        ListCell *cell;
        foreach (cell, pids_to_wake)
        {
            PGPROC *proc = BackendPidGetProc(lfirst_int(cell));
            if (proc != nullptr)
                SetLatch(&proc->procLatch);
        }
    }
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
        event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
    {
        list_free(pids_to_wake);
        pids_to_wake = NIL;
    }
}

/* Re-apply one dead letter; returns the apply result. */
ApplyResult
retry_dead_letter(int64 id, std::string &connector)
{
    /* The admin may read dead letters but not lock them: lock as the owner. */
    SpiResult letter;
    as_extension_owner(current_config(), [&] {
        letter = execute_plan_text(
            "SELECT connector, record::text, record_kind, status, source_ref "
            "FROM stocktech_sync.inbound_dead_letter WHERE id = $1::bigint FOR UPDATE",
            {std::to_string(id)});
    });
    if (letter.processed == 0)
        throw SqlError(ERRCODE_UNDEFINED_OBJECT,
                       "inbound dead letter " + std::to_string(id) + " does not exist");
    connector = letter.row[0].value_or("");
    std::string status = letter.row[3].value_or("");
    if (status != "open")
        throw SqlError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                       "inbound dead letter " + std::to_string(id) + " is " + status,
                       "Only open dead letters can be retried.");
    if (!letter.row[1])
        throw SqlError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                       "inbound dead letter " + std::to_string(id) + " has no JSON record",
                       "Its raw text could not be parsed when it arrived; correct the source "
                       "and send the record again.");

    nlohmann::json record = nlohmann::json::parse(*letter.row[1], nullptr, false);
    std::string kind = letter.row[2].value_or("columns");
    int64_t now = GetCurrentTransactionStartTimestamp();
    InboundRecord inbound;
    if (kind == "columns")
        inbound = record_from_json(record, Source::Erp, now, connector);
    else
    {
        ConnectorProfile profile;
        int version = 0;
        load_current_profile(connector, profile, version);
        MappedRecord mapped = map_record(profile, record);
        if (!mapped.ok())
            throw SqlError(ERRCODE_INVALID_TEXT_REPRESENTATION,
                           "inbound dead letter " + std::to_string(id) + " still fails to map",
                           mapping_errors_text(mapped) + ".",
                           "Correct the connector profile or the source record.");
        add_mapped_columns(mapped, inbound);
        inbound.source = kind == "csv_row" ? Source::Csv : Source::Erp;
        inbound.source_ts = now;
        inbound.connector = connector;
        inbound.profile_version = version;
    }
    inbound.source_ref = "inbound dead letter " + std::to_string(id);
    inbound.connector = connector;
    if (inbound.profile_version == 0)
        inbound.profile_version = connector_profile_version(connector);

    ApplyResult result = apply_inbound(inbound);
    const SyncConfig &config = current_config();
    as_extension_owner(config, [&] {
        execute_plan_text(
            "UPDATE stocktech_sync.inbound_dead_letter SET status = 'retried', "
            "resolved_at = pg_catalog.now(), resolved_by = session_user, "
            "resolution = 'applied on retry' WHERE id = $1::bigint",
            {std::to_string(id)});
        execute_plan_text(
            "INSERT INTO stocktech_sync.audit_log (vin, event, source, policy_version, "
            "connector, decisions, detail) VALUES ($1, 'operator_action', 'config', $2, $3, "
            "'[]', jsonb_build_object('action', 'retry_inbound', 'dead_letter_id', "
            "$4::bigint, 'audit_id', $5::bigint))",
            {result.vin, config.policy_version, connector, std::to_string(id),
             result.audit_id ? Value(std::to_string(result.audit_id)) : Value()});
    });
    return result;
}

}  // namespace

}  // namespace stocktech::pg

using namespace stocktech;
using namespace stocktech::pg;

/* sync_now(connector text) RETURNS jsonb */
extern "C" Datum
stocktech_sync_now(PG_FUNCTION_ARGS)
{
    Datum result = (Datum) 0;
    bool interrupted = false;

    run_at_boundary([&] {
        std::string connector = text_arg(fcinfo, 0);
        try
        {
            pg_call([&] { SPI_connect(); });
            std::string summary = run_sync(connector, RunMode::Atomic);
            pg_call([&] { SPI_finish(); });
            result = jsonb_datum(summary);
        }
        catch (const SyncInterrupted &)
        {
            interrupted = true;
        }
    });
    if (interrupted)
    {
        CHECK_FOR_INTERRUPTS();
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("sync run interrupted")));
    }
    PG_RETURN_DATUM(result);
}

/* _profile_problem(profile jsonb) RETURNS text: NULL when the profile is valid */
extern "C" Datum
stocktech_profile_problem(PG_FUNCTION_ARGS)
{
    text *result = nullptr;

    run_at_boundary([&] {
        std::string json = jsonb_arg_text(fcinfo, 0);
        ConnectorProfile profile;
        std::vector<ProfileError> errors;
        if (!parse_profile(json, profile, errors))
        {
            std::string problem = format_profile_errors(errors);
            pg_call([&] { result = cstring_to_text(problem.c_str()); });
        }
    });
    if (result == nullptr)
        PG_RETURN_NULL();
    PG_RETURN_TEXT_P(result);
}

/* retry_inbound(id bigint) RETURNS jsonb */
extern "C" Datum
stocktech_retry_inbound(PG_FUNCTION_ARGS)
{
    int64 id = PG_GETARG_INT64(0);
    Datum result = (Datum) 0;

    run_at_boundary([&] {
        CanonicalDateStyle date_style;
        std::string connector;
        pg_call([&] { SPI_connect(); });
        ApplyResult applied = retry_dead_letter(id, connector);
        std::string json = result_json(applied);
        pg_call([&] { SPI_finish(); });
        result = jsonb_datum(json);
    });
    PG_RETURN_DATUM(result);
}

/* _wake_workers() RETURNS void: wakes this database's inbound workers at commit */
extern "C" Datum
stocktech_wake_workers(PG_FUNCTION_ARGS)
{
    if (!wake_callback_registered)
    {
        RegisterXactCallback(wake_at_commit, nullptr);
        wake_callback_registered = true;
    }
    SPI_connect();
    if (SPI_execute("SELECT pid FROM pg_catalog.pg_stat_activity "
                    "WHERE backend_type = 'stocktech_sync inbound' "
                    "AND datid = (SELECT oid FROM pg_catalog.pg_database "
                    "             WHERE datname = pg_catalog.current_database())",
                    true, 0) == SPI_OK_SELECT)
    {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        for (uint64 i = 0; i < SPI_processed; i++)
        {
            bool isnull;
            Datum pid = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
            if (!isnull)
                pids_to_wake = lappend_int(pids_to_wake, DatumGetInt32(pid));
        }
        MemoryContextSwitchTo(old);
    }
    SPI_finish();
    PG_RETURN_VOID();
}
