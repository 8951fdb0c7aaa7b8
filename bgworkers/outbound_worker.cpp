/*
 * outbound_worker.cpp
 *    The outbound background worker of one database: drains the outbound
 *    queue whenever a transaction that queued a change commits (its latch
 *    is set then) and when a rescheduled change falls due.
 *
 * SIGTERM stops it, also in the middle of a request; changes it had claimed
 * keep their lease and are sent again, with the same idempotency key, once
 * the lease expires.  Errors of a round are logged and the worker goes on.
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
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"
}

#include <string>

#include "bgworkers/workers.hpp"
#include "pg/boundary.hpp"
#include "pg/outbound.hpp"

namespace {

constexpr long kMaxSleepMs = 10000;
constexpr int kRoundSize = 1000;

/* Milliseconds until the next change falls due, or kMaxSleepMs; -1 when
 * the extension is not installed. */
long
next_due_ms()
{
    long sleep_ms = kMaxSleepMs;
    bool installed = false;

    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    installed = OidIsValid(get_extension_oid("stocktech_sync", true));
    if (installed)
    {
        SPI_connect();
        int rc = SPI_execute(
            "SELECT (extract(epoch FROM (min(CASE WHEN status = 'pending' THEN next_attempt_at "
            "  ELSE lease_until END) - pg_catalog.clock_timestamp())) * 1000)::bigint::text "
            "FROM stocktech_sync.outbound_queue WHERE status <> 'done'",
            true, 1);
        if (rc == SPI_OK_SELECT && SPI_processed == 1)
        {
            char *wait = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
            if (wait != nullptr)
                sleep_ms = Min(kMaxSleepMs, Max(0L, atol(wait)));
        }
        SPI_finish();
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
    return installed ? sleep_ms : -1;
}

/* One drain round; returns whether it claimed any change.  A database
 * error is logged and the worker goes on. */
bool
drain_round()
{
    bool interrupted = false;
    bool claimed = false;
    MemoryContext round_context = CurrentMemoryContext;

    PG_TRY();
    {
        stocktech::pg::run_at_boundary([&] {
            try
            {
                std::string counts =
                    stocktech::pg::drain_outbound(kRoundSize, stocktech::pg::RunMode::Worker);
                claimed = counts.find("\"claimed\":0,") == std::string::npos;
            }
            catch (const stocktech::pg::SyncInterrupted &)
            {
                interrupted = true;
            }
        });
        if (interrupted)
            CHECK_FOR_INTERRUPTS();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(round_context);
        EmitErrorReport();
        FlushErrorState();
        AbortCurrentTransaction();
    }
    PG_END_TRY();
    return claimed;
}

}  // namespace

extern "C" void
stocktech_outbound_main(Datum main_arg)
{
    Oid database = DatumGetObjectId(main_arg);

    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);

    StartTransactionCommand();
    char *database_name = MemoryContextStrdup(TopMemoryContext, get_database_name(database));
    CommitTransactionCommand();
    ereport(LOG, (errmsg("stocktech_sync outbound worker started for database \"%s\"",
                         database_name)));
    before_shmem_exit(
        [](int, Datum) { ereport(LOG, (errmsg("stocktech_sync outbound worker stopped"))); },
        (Datum) 0);

    MemoryContext round_context = AllocSetContextCreate(
        TopMemoryContext, "stocktech_sync outbound round", ALLOCSET_DEFAULT_SIZES);

    for (;;)
    {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending)
        {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }

        MemoryContextSwitchTo(round_context);
        long sleep_ms = next_due_ms();
        if (sleep_ms == 0)
        {
            pgstat_report_activity(STATE_RUNNING, "stocktech_sync: draining the outbound queue");
            bool claimed = drain_round();
            pgstat_report_activity(STATE_IDLE, nullptr);
            sleep_ms = next_due_ms();
            /* Due changes that another drain holds: look again in a second. */
            if (!claimed && sleep_ms == 0)
                sleep_ms = 1000;
        }
        MemoryContextSwitchTo(TopMemoryContext);
        MemoryContextReset(round_context);

        if (sleep_ms != 0)
        {
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                             sleep_ms < 0 ? kMaxSleepMs : sleep_ms, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        }
    }
}
