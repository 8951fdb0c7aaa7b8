/*
 * outbound.hpp
 *    Mode M4: queueing accepted local changes for the ERP and sending them.
 *
 * enqueue_outbound() runs in the guard trigger, in the transaction of the
 * local change, so a rolled-back change queues nothing.  drain_outbound()
 * claims due changes with FOR UPDATE SKIP LOCKED and a lease, oldest first
 * and only the oldest open change of each VIN (FIFO per VIN, parallel across
 * VINs), sends them, and records each result.  Delivery is at least once:
 * a change whose result was not recorded (a crash, a killed worker) is sent
 * again after its lease expires, with the same idempotency key.
 */
#ifndef STOCKTECH_PG_OUTBOUND_HPP
#define STOCKTECH_PG_OUTBOUND_HPP

#include <string>

#include <nlohmann/json.hpp>

#include "pg/config.hpp"
#include "pg/sync.hpp"

namespace stocktech::pg {

/*
 * Queue fields (column -> canonical text or null) of vin for the ERP; etag
 * is the ETag known now and connector the vehicle's ERP connector, if any.
 * Returns a note for the audit when nothing could be queued (no connector
 * writes back), or an empty string.  SPI connected.
 */
std::string enqueue_outbound(const SyncConfig &config, const std::string &vin,
                             const Value &connector, const Value &etag,
                             const nlohmann::json &fields, long audit_id);

/* Send up to max due changes; returns the counts as JSON text.  Worker mode
 * commits each step; Atomic mode runs in the caller's transaction with SPI
 * connected. */
std::string drain_outbound(int max, RunMode mode);

/* Wake this database's outbound workers when the transaction commits. */
void wake_outbound_at_commit();

}  // namespace stocktech::pg

#endif
