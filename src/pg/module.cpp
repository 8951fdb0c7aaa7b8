/*
 * module.cpp
 *    Module entry point of stocktech_sync: the module magic and _PG_init.
 *
 * _PG_init runs in every backend that loads the library, either at server
 * start through shared_preload_libraries or on the first call of one of its
 * functions.  It defines the settings under the stocktech_sync. prefix and,
 * only when loaded through shared_preload_libraries, registers the launcher
 * background worker.
 */
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

#include "bgworkers/workers.hpp"
#include "pg/gucs.hpp"

namespace stocktech::pg {

char *setting_databases = nullptr;
int setting_http_connect_timeout = 10000;
int setting_http_timeout = 60000;
int setting_http_max_response_kb = 65536;
char *setting_http_ca_file = nullptr;
int setting_http_max_attempts = 5;
int setting_http_retry_base_delay = 500;
int setting_http_retry_max_delay = 30000;
int setting_launcher_naptime = 10;
int setting_outbound_lease = 300;

void
define_settings()
{
    DefineCustomStringVariable(
        "stocktech_sync.database",
        "Databases in which the sync workers run, separated by commas.",
        "The launcher starts one inbound worker per listed database; a worker "
        "stays idle until the extension is created there.",
        &setting_databases, "postgres", PGC_SIGHUP, GUC_LIST_INPUT, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "stocktech_sync.http_connect_timeout",
        "Time allowed to connect to the ERP, in milliseconds.", nullptr,
        &setting_http_connect_timeout, 10000, 100, 600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "stocktech_sync.http_timeout",
        "Time allowed for one whole HTTP request to the ERP, in milliseconds.", nullptr,
        &setting_http_timeout, 60000, 100, 3600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "stocktech_sync.http_max_response_size",
        "Largest ERP response body accepted, in kilobytes.",
        "A larger response fails the request instead of filling memory.",
        &setting_http_max_response_kb, 65536, 64, 1048576, PGC_SIGHUP, GUC_UNIT_KB, nullptr,
        nullptr, nullptr);
    DefineCustomStringVariable(
        "stocktech_sync.http_ca_file",
        "File of CA certificates used to verify the ERP's TLS certificate.",
        "Empty means the system's default CA bundle.", &setting_http_ca_file, "", PGC_SIGHUP,
        0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "stocktech_sync.http_max_attempts",
        "Attempts for one ERP request that fails with a transient error.", nullptr,
        &setting_http_max_attempts, 5, 1, 100, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "stocktech_sync.http_retry_base_delay",
        "First delay of the exponential backoff between attempts, in milliseconds.", nullptr,
        &setting_http_retry_base_delay, 500, 1, 600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "stocktech_sync.http_retry_max_delay",
        "Longest delay between attempts, also the cap on Retry-After, in milliseconds.",
        nullptr, &setting_http_retry_max_delay, 30000, 1, 3600000, PGC_SIGHUP, GUC_UNIT_MS,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "stocktech_sync.launcher_naptime",
        "Time between the launcher's checks of its workers, in seconds.", nullptr,
        &setting_launcher_naptime, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
        nullptr);

    DefineCustomIntVariable(
        "stocktech_sync.outbound_lease",
        "Time a drain holds a claimed outbound change, in seconds.",
        "A change whose lease expired, because its worker stopped before recording the "
        "result, is sent again with the same idempotency key.  Keep it above "
        "stocktech_sync.http_timeout.",
        &setting_outbound_lease, 300, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
        nullptr);

    MarkGUCPrefixReserved("stocktech_sync");
}

}  // namespace stocktech::pg

extern "C" void
_PG_init(void)
{
    stocktech::pg::define_settings();

    if (process_shared_preload_libraries_in_progress)
        stocktech::bgworkers::register_launcher();
}
