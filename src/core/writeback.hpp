/*
 * writeback.hpp
 *    The body of a write-back request: local column values turned into the
 *    ERP's property names, codes and literal forms through the connector
 *    profile.  Pure C++; no function throws.
 */
#ifndef STOCKTECH_CORE_WRITEBACK_HPP
#define STOCKTECH_CORE_WRITEBACK_HPP

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/profile.hpp"

namespace stocktech {

/*
 * Build the JSON body that sends fields, an object of vin_master column
 * names and canonical texts (null for NULL), to the ERP.  Each column must
 * be in write_back.fields and mapped in the profile.  Enumeration values go
 * through reverse_value_map, else through the inverse of value_map, else
 * unchanged; numbers and booleans become JSON numbers and booleans, except
 * that OData V2 sends decimals as strings (Edm.Decimal) and dates as
 * "/Date(ms)/"; OData V4 sends dates as "YYYY-MM-DD".  Returns false with
 * error naming the first column that cannot be sent.
 */
bool build_write_body(const ConnectorProfile &profile, const nlohmann::json &fields,
                      nlohmann::json &body, std::string &error);

/* The ERP code for a column value through the mapping's reverse maps. */
std::string reverse_map_value(const FieldMapping &mapping, const std::string &value);

/* Absolute URL of the entity a write-back for key goes to. */
bool write_url(const ConnectorProfile &profile, const std::string &key, std::string &url,
               std::string &error);

}  // namespace stocktech

#endif
