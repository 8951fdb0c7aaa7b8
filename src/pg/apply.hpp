/*
 * apply.hpp
 *    Applying one inbound record (an ERP record or a CSV row) to the VIN
 *    master through the policy engine.
 *
 * apply_inbound() locks the vehicle's row, decides every field the record
 * brings with decide_field(), and writes the row, the deferred changes and
 * one audit row in the caller's (sub)transaction.  It runs inside SPI
 * connected by the caller and throws SqlError or PgError for records that
 * cannot be applied (invalid VIN, a value invalid for its column, an
 * unknown field); the batch callers dead-letter those.
 */
#ifndef STOCKTECH_PG_APPLY_HPP
#define STOCKTECH_PG_APPLY_HPP

#include <optional>
#include <string>
#include <vector>

#include "core/policy.hpp"

#include <nlohmann/json.hpp>

namespace stocktech {
struct MappedRecord;
}

namespace stocktech::pg {

struct InboundField
{
    int index = -1;                   /* position in governed_fields() */
    std::optional<std::string> value; /* text form, not yet canonical */
};

struct InboundRecord
{
    std::string vin; /* as received */
    std::vector<InboundField> fields;
    Source source = Source::Erp;
    int64_t source_ts = 0; /* TimestampTz */
    std::string connector = "manual";
    int profile_version = 0;
    std::optional<std::string> etag;
    std::string source_ref; /* file and line, or URL; for the audit detail */
};

struct FieldResult
{
    int index = -1;
    Decision decision = Decision::Unchanged;
    Value old_value;
    Value new_value;
    Value incoming;
    std::string reason;
    bool conflict = false;
};

struct ApplyResult
{
    std::string vin;
    bool created = false;
    bool written = false; /* the row or its bookkeeping changed */
    long audit_id = 0;    /* 0 when every decision was unchanged */
    std::vector<FieldResult> fields;
};

/* Fill record's VIN, ETag and fields from a mapped source record. */
void add_mapped_columns(const MappedRecord &mapped, InboundRecord &record);

/* The mapping errors of a record as one line, for a dead letter or an error. */
std::string mapping_errors_text(const MappedRecord &mapped);

/* Apply one record; see the file header. */
ApplyResult apply_inbound(const InboundRecord &record);

/* The result as JSON text: {vin, created, audit_id, decisions: [...]}. */
std::string result_json(const ApplyResult &result);

/*
 * What the matrix would decide for value arriving from source for one field
 * of a vehicle, as JSON text; reads the row without locking or changing it.
 */
std::string explain_field(const std::string &vin, const std::string &field, const Value &value,
                          Source source);

/*
 * Record that the ERP accepted fields (column -> canonical text) of vin: the
 * values become the baseline and etag, when given, the stored ETag.  SPI
 * connected; runs as an engine write.
 */
void acknowledge_outbound(const std::string &vin, const nlohmann::json &fields,
                          const Value &etag);

/* Whether the engine itself is writing vin_master, so the guard trigger
 * lets the write through. */
bool engine_is_writing();

}  // namespace stocktech::pg

#endif
