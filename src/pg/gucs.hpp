/*
 * gucs.hpp
 *    Settings of stocktech_sync under the stocktech_sync. prefix.
 *
 * Defined by define_settings() from _PG_init; the values below are read by
 * the sync code and the background workers.
 */
#ifndef STOCKTECH_PG_GUCS_HPP
#define STOCKTECH_PG_GUCS_HPP

namespace stocktech::pg {

extern char *setting_databases;           /* stocktech_sync.database */
extern int setting_http_connect_timeout;  /* milliseconds */
extern int setting_http_timeout;          /* milliseconds, whole transfer */
extern int setting_http_max_response_kb;  /* kilobytes */
extern char *setting_http_ca_file;        /* CA bundle for TLS verification */
extern int setting_http_max_attempts;     /* attempts per request, transient failures */
extern int setting_http_retry_base_delay; /* milliseconds */
extern int setting_http_retry_max_delay;  /* milliseconds */
extern int setting_launcher_naptime;      /* seconds between launcher checks */
extern int setting_outbound_lease;        /* seconds a claimed outbound change is held */

void define_settings();

}  // namespace stocktech::pg

#endif
