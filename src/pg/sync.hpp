/*
 * sync.hpp
 *    One poll run of an HTTP connector: fetch the changed records page by
 *    page, commit each page to inbound_queue, apply it through the policy
 *    engine, and advance the watermark once the whole run has succeeded.
 *
 * Two modes share the code:
 *  - RunMode::Worker (the inbound background worker) commits after each
 *    step: the sync_runs row, each fetched page, each applied page, and the
 *    final state.  No transaction is open during an HTTP request.  A crash
 *    leaves fetched pages pending; the next run applies them first.
 *  - RunMode::Atomic (sync_now() called from SQL) runs in the caller's
 *    transaction, so everything it did commits or rolls back with it.
 *
 * The watermark is the pair (modified timestamp, key) of the last record
 * read; it moves only at the end of a run that fetched and applied every
 * page.  A repeated next link, more pages than the profile's max_pages, or
 * an empty page that still links onward fail the run instead of looping.
 */
#ifndef STOCKTECH_PG_SYNC_HPP
#define STOCKTECH_PG_SYNC_HPP

#include <string>

namespace stocktech::pg {

enum class RunMode { Worker, Atomic };

/* Run one poll of connector; returns the run summary as JSON text.  In
 * Worker mode the caller has no transaction open; in Atomic mode the caller
 * has SPI connected.  Errors of the ERP side are recorded in the run and
 * the connector state and reported in the summary, not thrown; database
 * errors and interrupts are thrown. */
std::string run_sync(const std::string &connector, RunMode mode);

/* The current profile of a connector and its version; throws SqlError when
 * the connector does not exist or its profile is invalid.  SPI connected. */
}  // namespace stocktech::pg

namespace stocktech {
struct ConnectorProfile;
}

namespace stocktech::pg {

void load_current_profile(const std::string &connector, stocktech::ConnectorProfile &profile,
                          int &version);

/* Thrown when a transfer or a wait stopped because an interrupt is pending;
 * the boundary then lets CHECK_FOR_INTERRUPTS() act on it. */
struct SyncInterrupted
{
};

}  // namespace stocktech::pg

#endif
