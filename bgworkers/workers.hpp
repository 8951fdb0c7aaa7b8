/*
 * workers.hpp
 *    The background workers of stocktech_sync: a launcher, registered at
 *    server start, and one inbound and one outbound worker per database
 *    listed in stocktech_sync.database.
 */
#ifndef STOCKTECH_BGWORKERS_WORKERS_HPP
#define STOCKTECH_BGWORKERS_WORKERS_HPP

namespace stocktech::bgworkers {

/* Register the launcher; call from _PG_init during shared_preload_libraries. */
void register_launcher();

/* The bgw_type of the inbound worker, as pg_stat_activity.backend_type shows it. */
inline constexpr const char *kInboundWorkerType = "stocktech_sync inbound";
inline constexpr const char *kOutboundWorkerType = "stocktech_sync outbound";

}  // namespace stocktech::bgworkers

extern "C" {
PGDLLEXPORT void stocktech_launcher_main(Datum main_arg);
PGDLLEXPORT void stocktech_inbound_main(Datum main_arg);
PGDLLEXPORT void stocktech_outbound_main(Datum main_arg);
}

#endif
