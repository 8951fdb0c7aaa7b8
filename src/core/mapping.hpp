/*
 * mapping.hpp
 *    Applies a connector profile's mapping to one source record.
 *
 * A source record is a JSON object: an OData entity, a REST JSON item, or a
 * CSV row turned into an object of header -> string (or "1", "2", ... ->
 * string when the file has no header line).  The result contains canonical
 * column text for the policy engine, in the forms listed in transform.hpp.
 * Numerics are also rounded to the scale of their column, half away from
 * zero as PostgreSQL rounds, so that equal values have equal text.
 *
 * Per column, in this order:
 *  1. read the source property; a missing property yields the mapping's
 *     default when it has one and otherwise leaves the column out of the
 *     result, so the column keeps its current value; JSON null is NULL;
 *  2. apply the transforms (trim, upper, lower) to string values;
 *  3. look the text up in value_map; a value without entry passes through;
 *  4. empty text: NULL from a CSV row; from JSON it is NULL for number and
 *     date columns, false for boolean columns (an initial ABAP flag), ""
 *     for text columns, and an error for enumeration columns;
 *  5. parse the text for the column's type and check enumeration values.
 * A column whose value fails is left out and reported in errors; the other
 * columns are still mapped, so the caller can dead-letter the record with
 * every reason at once.
 *
 * No function throws.
 */
#ifndef STOCKTECH_CORE_MAPPING_HPP
#define STOCKTECH_CORE_MAPPING_HPP

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fields.hpp"
#include "core/profile.hpp"
#include "core/transform.hpp"

namespace stocktech {

/* A value that could not be mapped.  column is empty for the key and delta
 * properties, which fill no column. */
struct MappingError
{
    std::string column;
    std::string source;
    std::string message;
};

/* One mapped column; value std::nullopt is SQL NULL. */
struct MappedColumn
{
    std::string column;
    std::optional<std::string> value;
};

struct MappedRecord
{
    std::string vin;                  /* after the vin transforms, not yet validated */
    std::string key;                  /* key_property value as text; empty for csv */
    std::vector<MappedColumn> columns; /* in the order of the profile's mapping */
    std::optional<std::string> etag;  /* verbatim from @odata.etag or __metadata.etag */
    std::optional<Timestamp> modified; /* delta.property, when present and valid */
    std::vector<MappingError> errors;

    bool ok() const { return errors.empty(); }
};

/*
 * Converts text to the canonical text of column spec.  decimal_separator
 * and date_format apply to numeric and date columns.  Sets out to
 * std::nullopt for the SAP initial date "00000000".  Used for source values
 * and, when a profile is validated, for value_map targets and defaults.
 */
bool convert_for_column(const FieldSpec &spec, std::string_view text, char decimal_separator,
                        DateFormat date_format, std::optional<std::string> &out,
                        std::string &error);

/* Maps one source record with profile, which validate_profile accepted. */
MappedRecord map_record(const ConnectorProfile &profile, const nlohmann::json &record);

}  // namespace stocktech

#endif
