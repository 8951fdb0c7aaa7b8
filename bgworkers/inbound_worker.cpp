/*
 * inbound_worker.cpp
 *    The inbound background worker of one database: polls each enabled
 *    HTTP connector when its next_run_at in connector_state is due.
 *
 * The worker waits on its latch, so a configuration change (a connector
 * enabled or changed, see _wake_workers()) wakes it before the next poll is
 * due.  SIGTERM stops it promptly, also in the middle of a transfer; SIGHUP
 * reloads the configuration.  A run that fails is recorded in sync_runs and
 * connector_state and the worker goes on; only an unexpected error ends
 * the worker with a non-zero exit, and the launcher starts it again.
 */
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"
}

#include <string>
#include <vector>

#include "bgworkers/workers.hpp"
#include "pg/boundary.hpp"
#include "pg/gucs.hpp"
#include "pg/sync.hpp"

namespace {

/* Longest sleep between checks for due connectors, in milliseconds. */
constexpr long kMaxSleepMs = 10000;

/* Connectors due now and the delay until the next one is due. */
struct DuePlan
{
    std::vector<std::string> due;
    long sleep_ms = kMaxSleepMs;
    bool extension_installed = false;
};

DuePlan
plan_round()
{
    DuePlan plan;
    char **names = nullptr;
    uint64 count = 0;
    long sleep_ms = kMaxSleepMs;
    bool installed = false;

    stocktech::pg::pg_call([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        installed = OidIsValid(get_extension_oid("stocktech_sync", true));
        if (installed)
        {
            SPI_connect();
            int rc = SPI_execute(
                "SELECT c.name, "
                "  (coalesce(s.next_run_at, '-infinity') <= pg_catalog.clock_timestamp())::text, "
                "  (extract(epoch FROM (s.next_run_at - pg_catalog.clock_timestamp())) * 1000)"
                "::bigint::text "
                "FROM stocktech_sync.connectors c "
                "LEFT JOIN stocktech_sync.connector_state s ON s.connector = c.name "
                "WHERE c.enabled AND c.kind <> 'csv' ORDER BY s.next_run_at NULLS FIRST, c.name",
                true, 0);
            if (rc != SPI_OK_SELECT)
                elog(ERROR, "could not list connectors: %s", SPI_result_code_string(rc));
            count = SPI_processed;
            names = (char **) MemoryContextAllocZero(TopMemoryContext,
                                                     sizeof(char *) * (count + 1));
            for (uint64 i = 0; i < count; i++)
            {
                HeapTuple row = SPI_tuptable->vals[i];
                TupleDesc desc = SPI_tuptable->tupdesc;
                char *due = SPI_getvalue(row, desc, 2);
                char *wait = SPI_getvalue(row, desc, 3);
                if (due != nullptr && strcmp(due, "true") == 0)
                    names[i] = MemoryContextStrdup(TopMemoryContext, SPI_getvalue(row, desc, 1));
                else if (wait != nullptr)
                    sleep_ms = Min(sleep_ms, Max(100L, atol(wait)));
            }
            SPI_finish();
        }
        PopActiveSnapshot();
        CommitTransactionCommand();
    });

    plan.extension_installed = installed;
    plan.sleep_ms = sleep_ms;
    for (uint64 i = 0; i < count; i++)
    {
        if (names[i] != nullptr)
        {
            plan.due.emplace_back(names[i]);
            pfree(names[i]);
        }
    }
    if (names != nullptr)
        pfree(names);
    return plan;
}

/* Mark the worker runs left "running" by a stopped worker as failed. */
void
close_stale_runs()
{
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    int rc = SPI_execute(
        "UPDATE stocktech_sync.sync_runs SET status = 'failed', "
        "finished_at = pg_catalog.clock_timestamp(), "
        "error = 'the inbound worker stopped during the run' "
        "WHERE status = 'running' AND trigger = 'worker'",
        false, 0);
    if (rc == SPI_OK_UPDATE && SPI_processed > 0)
        ereport(LOG, (errmsg("stocktech_sync: marked %lu interrupted sync runs as failed",
                             (unsigned long) SPI_processed)));
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
}

/* One poll of one connector; errors are logged and the worker goes on. */
void
poll_connector(const std::string &connector)
{
    bool interrupted = false;
    MemoryContext round_context = CurrentMemoryContext;

    PG_TRY();
    {
        stocktech::pg::run_at_boundary([&] {
            try
            {
                stocktech::pg::pg_call([&] {
                    pgstat_report_activity(STATE_RUNNING,
                                           psprintf("stocktech_sync: syncing connector %s",
                                                    connector.c_str()));
                });
                (void) stocktech::pg::run_sync(connector, stocktech::pg::RunMode::Worker);
            }
            catch (const stocktech::pg::SyncInterrupted &)
            {
                interrupted = true;
            }
        });

        /* A cancel ends this run with an error caught below; a terminate
         * ends the worker. */
        if (interrupted)
            CHECK_FOR_INTERRUPTS();
    }
    PG_CATCH();
    {
        /* A database error outside the run's own handling: log it, clean up
         * the transaction and go on with the next connector. */
        MemoryContextSwitchTo(round_context);
        EmitErrorReport();
        FlushErrorState();
        AbortCurrentTransaction();
    }
    PG_END_TRY();

    pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace

extern "C" void
stocktech_inbound_main(Datum main_arg)
{
    Oid database = DatumGetObjectId(main_arg);

    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);

    StartTransactionCommand();
    char *database_name = MemoryContextStrdup(TopMemoryContext, get_database_name(database));
    CommitTransactionCommand();
    ereport(LOG, (errmsg("stocktech_sync inbound worker started for database \"%s\"",
                         database_name)));
    before_shmem_exit(
        [](int, Datum) {
            ereport(LOG, (errmsg("stocktech_sync inbound worker stopped")));
        },
        (Datum) 0);

    MemoryContext round_context =
        AllocSetContextCreate(TopMemoryContext, "stocktech_sync inbound round",
                              ALLOCSET_DEFAULT_SIZES);
    bool reported_missing = false;
    bool stale_runs_closed = false;

    for (;;)
    {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending)
        {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }

        MemoryContextSwitchTo(round_context);
        DuePlan plan;
        stocktech::pg::run_at_boundary([&] { plan = plan_round(); });
        if (!plan.extension_installed && !reported_missing)
            ereport(LOG, (errmsg("stocktech_sync inbound worker is idle: the extension is "
                                 "not installed in this database")));
        reported_missing = !plan.extension_installed;

        /* Runs of a previous worker of this database that stopped midway
         * (terminated, crashed) are closed once, so none stays "running". */
        if (plan.extension_installed && !stale_runs_closed)
        {
            close_stale_runs();
            stale_runs_closed = true;
        }

        for (const std::string &connector : plan.due)
        {
            CHECK_FOR_INTERRUPTS();
            poll_connector(connector);
        }
        /* After a poll, plan again at once: the run moved next_run_at. */
        long sleep_ms = plan.due.empty() ? plan.sleep_ms : 0;
        plan = DuePlan{};
        MemoryContextSwitchTo(TopMemoryContext);
        MemoryContextReset(round_context);

        if (sleep_ms > 0)
        {
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms,
                             PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        }
    }
}
