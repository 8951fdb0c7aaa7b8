/*
 * fields.hpp
 *    The catalog of the 18 governed columns of stocktech_sync.vin_master.
 *
 * The catalog is the single list of governed field names, their SQL types
 * and the values of their enumerations.  The install script creates the
 * same columns and enumeration types; a regression test compares the two.
 */
#ifndef STOCKTECH_CORE_FIELDS_HPP
#define STOCKTECH_CORE_FIELDS_HPP

#include <string_view>
#include <vector>

namespace stocktech {

enum class FieldType { Text, SmallInt, Integer, Numeric, Date, Bool, Enum };

struct FieldSpec
{
    std::string_view name;
    FieldType type;
    std::string_view sql_type;               /* as created in vin_master */
    std::vector<std::string_view> enum_values; /* only for FieldType::Enum */
};

/* The governed fields in the order of the default policy 3.2. */
const std::vector<FieldSpec> &governed_fields();

/* The spec of a governed field, or nullptr when the name is not governed. */
const FieldSpec *find_field(std::string_view name);

/* Whether value is one of the enumeration values of spec. */
bool is_enum_value(const FieldSpec &spec, std::string_view value);

}  // namespace stocktech

#endif
