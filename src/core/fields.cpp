/*
 * fields.cpp
 *    The catalog of governed vin_master columns.
 */
#include "core/fields.hpp"

namespace stocktech {

const std::vector<FieldSpec> &
governed_fields()
{
    static const std::vector<FieldSpec> fields = {
        {"model_code", FieldType::Text, "text", {}},
        {"model_year", FieldType::SmallInt, "smallint", {}},
        {"version_code", FieldType::Text, "text", {}},
        {"color_code", FieldType::Text, "text", {}},
        {"engine_number", FieldType::Text, "text", {}},
        {"dealer_code", FieldType::Text, "text", {}},
        {"commercial_status", FieldType::Enum, "stocktech_sync.commercial_status",
         {"available", "reserved", "sold", "invoiced", "delivered", "returned", "blocked"}},
        {"financial_status", FieldType::Enum, "stocktech_sync.financial_status",
         {"unpaid", "floorplan", "financed", "consignment", "paid", "released"}},
        {"list_price", FieldType::Numeric, "numeric(15,2)", {}},
        {"sales_order", FieldType::Text, "text", {}},
        {"customer_ref", FieldType::Text, "text", {}},
        {"warehouse_location", FieldType::Text, "text", {}},
        {"maint_status", FieldType::Enum, "stocktech_sync.maint_status",
         {"none", "scheduled", "in_service", "done"}},
        {"pdi_status", FieldType::Enum, "stocktech_sync.pdi_status",
         {"pending", "in_progress", "passed", "failed"}},
        {"vitw_in_transit", FieldType::Bool, "boolean", {}},
        {"customs_evidence", FieldType::Text, "text", {}},
        {"arrival_date", FieldType::Date, "date", {}},
        {"odometer_km", FieldType::Integer, "integer", {}},
    };
    return fields;
}

const FieldSpec *
find_field(std::string_view name)
{
    for (const FieldSpec &spec : governed_fields())
    {
        if (spec.name == name)
            return &spec;
    }
    return nullptr;
}

bool
is_enum_value(const FieldSpec &spec, std::string_view value)
{
    for (std::string_view allowed : spec.enum_values)
    {
        if (allowed == value)
            return true;
    }
    return false;
}

}  // namespace stocktech
