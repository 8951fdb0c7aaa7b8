/*
 * launcher.cpp
 *    The launcher background worker: keeps one inbound and one outbound
 *    worker running for each existing database named in
 *    stocktech_sync.database.
 *
 * The launcher connects to no database; it reads pg_database (a shared
 * catalog) to skip names that do not exist, registers a dynamic worker per
 * database, and checks every stocktech_sync.launcher_naptime seconds that
 * each worker is still running, starting it again when it stopped (for
 * example after pg_terminate_backend).  A reload (SIGHUP) that removes a
 * database from the list stops its worker.  The launcher only starts once
 * recovery has finished, so no worker ever runs on a standby.
 */
extern "C" {
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
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
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"
}

#include "bgworkers/workers.hpp"
#include "pg/gucs.hpp"

namespace {

constexpr int kMaxDatabases = 64;

/* The kinds of worker the launcher keeps running per database. */
constexpr int kWorkerKinds = 2;
const char *const kWorkerFunctions[kWorkerKinds] = {"stocktech_inbound_main",
                                                    "stocktech_outbound_main"};
const char *const kWorkerTypes[kWorkerKinds] = {stocktech::bgworkers::kInboundWorkerType,
                                                stocktech::bgworkers::kOutboundWorkerType};

struct WorkerSlot
{
    Oid database = InvalidOid;
    char name[NAMEDATALEN] = {0};
    BackgroundWorkerHandle *handle[kWorkerKinds] = {nullptr, nullptr};
    TimestampTz started_at[kWorkerKinds] = {0, 0};
    bool reported_missing = false;
};

WorkerSlot slots[kMaxDatabases];

/* Start the worker of one kind for one database. */
void
start_worker(WorkerSlot &slot, int kind)
{
    BackgroundWorker worker;

    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    strlcpy(worker.bgw_library_name, "stocktech_sync", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, kWorkerFunctions[kind], BGW_MAXLEN);
    snprintf(worker.bgw_name, BGW_MAXLEN, "%s worker for %s", kWorkerTypes[kind], slot.name);
    strlcpy(worker.bgw_type, kWorkerTypes[kind], BGW_MAXLEN);
    worker.bgw_main_arg = ObjectIdGetDatum(slot.database);
    worker.bgw_notify_pid = MyProcPid;

    if (!RegisterDynamicBackgroundWorker(&worker, &slot.handle[kind]))
    {
        slot.handle[kind] = nullptr;
        ereport(WARNING,
                (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                 errmsg("could not start the %s worker for database \"%s\"", kWorkerTypes[kind],
                        slot.name),
                 errhint("Raise max_worker_processes.")));
    }
}

/* Whether the worker of one kind of a slot is running or about to. */
bool
worker_alive(const WorkerSlot &slot, int kind)
{
    pid_t pid;
    if (slot.handle[kind] == nullptr)
        return false;
    return GetBackgroundWorkerPid(slot.handle[kind], &pid) != BGWH_STOPPED;
}

/*
 * The OID of a database by name, or InvalidOid.  The launcher is connected
 * to no database, so it scans the shared catalog pg_database sequentially,
 * as the autovacuum launcher does; an index scan would need pg_class.
 */
Oid
find_database(const char *name)
{
    Oid found = InvalidOid;
    Relation relation = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(relation, 0, nullptr);
    HeapTuple tuple;

    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr)
    {
        Form_pg_database database = (Form_pg_database) GETSTRUCT(tuple);
        if (strcmp(NameStr(database->datname), name) == 0)
        {
            found = database->oid;
            break;
        }
    }
    table_endscan(scan);
    table_close(relation, AccessShareLock);
    return found;
}

/* Read the database list, resolve names, and start missing workers. */
void
reconcile_workers()
{
    char *list = pstrdup(stocktech::pg::setting_databases ? stocktech::pg::setting_databases
                                                          : "");
    List *names = NIL;
    Oid wanted[kMaxDatabases];
    int nwanted = 0;

    if (!SplitIdentifierString(list, ',', &names))
    {
        ereport(LOG, (errmsg("stocktech_sync.database is not a valid list of names: \"%s\"",
                             stocktech::pg::setting_databases)));
        names = NIL;
    }

    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    (void) GetTransactionSnapshot();
    ListCell *cell;
    foreach (cell, names)
    {
        const char *name = (const char *) lfirst(cell);
        Oid database = find_database(name);
        if (nwanted >= kMaxDatabases)
            break;
        WorkerSlot *slot = nullptr;
        for (WorkerSlot &candidate : slots)
        {
            if (strcmp(candidate.name, name) == 0)
                slot = &candidate;
        }
        if (slot == nullptr)
        {
            for (WorkerSlot &candidate : slots)
            {
                if (candidate.name[0] == '\0')
                {
                    slot = &candidate;
                    strlcpy(slot->name, name, NAMEDATALEN);
                    break;
                }
            }
        }
        if (slot == nullptr)
            break;
        if (!OidIsValid(database))
        {
            if (!slot->reported_missing)
                ereport(LOG, (errmsg("stocktech_sync: database \"%s\" in "
                                     "stocktech_sync.database does not exist",
                                     name)));
            slot->reported_missing = true;
            continue;
        }
        slot->reported_missing = false;
        slot->database = database;
        wanted[nwanted++] = database;
    }
    CommitTransactionCommand();

    for (WorkerSlot &slot : slots)
    {
        if (slot.name[0] == '\0')
            continue;
        bool is_wanted = false;
        for (int i = 0; i < nwanted; i++)
            is_wanted = is_wanted || wanted[i] == slot.database;
        if (!is_wanted)
        {
            for (int kind = 0; kind < kWorkerKinds; kind++)
            {
                if (slot.handle[kind] == nullptr)
                    continue;
                TerminateBackgroundWorker(slot.handle[kind]);
                ereport(LOG, (errmsg("stocktech_sync: stopping the %s worker for database "
                                     "\"%s\", which left stocktech_sync.database",
                                     kWorkerTypes[kind], slot.name)));
            }
            slot = WorkerSlot{};
            continue;
        }
        /* A worker that stopped soon after its start waits for the naptime,
         * so a failing worker is not restarted in a tight loop. */
        for (int kind = 0; kind < kWorkerKinds; kind++)
        {
            if (!worker_alive(slot, kind) &&
                TimestampDifferenceExceeds(slot.started_at[kind], GetCurrentTimestamp(),
                                           stocktech::pg::setting_launcher_naptime * 1000))
            {
                slot.started_at[kind] = GetCurrentTimestamp();
                start_worker(slot, kind);
            }
        }
    }
}

}  // namespace

extern "C" void
stocktech_launcher_main(Datum)
{
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);

    ereport(LOG, (errmsg("stocktech_sync launcher started")));
    pgstat_report_activity(STATE_IDLE, nullptr);

    for (;;)
    {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending)
        {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }

        reconcile_workers();

        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                         stocktech::pg::setting_launcher_naptime * 1000L, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}

namespace stocktech::bgworkers {

void
register_launcher()
{
    BackgroundWorker worker;

    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 10;
    strlcpy(worker.bgw_library_name, "stocktech_sync", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, "stocktech_launcher_main", BGW_MAXLEN);
    strlcpy(worker.bgw_name, "stocktech_sync launcher", BGW_MAXLEN);
    strlcpy(worker.bgw_type, "stocktech_sync launcher", BGW_MAXLEN);
    RegisterBackgroundWorker(&worker);
}

}  // namespace stocktech::bgworkers
