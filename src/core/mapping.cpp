/*
 * mapping.cpp
 *    Source record -> canonical vin_master column text.
 *
 * The rules are listed in mapping.hpp.  Every public function catches all
 * exceptions at its boundary and reports them as errors.
 */
#include "core/mapping.hpp"

#include <cstdio>
#include <limits>

namespace stocktech {

namespace {

using nlohmann::json;

/* Precision and scale of a "numeric(p,s)" SQL type; false when the type
 * has no type modifier. */
bool
numeric_typmod(std::string_view sql_type, int &precision, int &scale)
{
    std::string type(sql_type);
    return std::sscanf(type.c_str(), "numeric(%d,%d)", &precision, &scale) == 2;
}

/* Adds one unit in the last place to a string of decimal digits. */
void
increment_digits(std::string &digits)
{
    for (size_t i = digits.size(); i > 0; i--)
    {
        if (digits[i - 1] != '9')
        {
            digits[i - 1]++;
            return;
        }
        digits[i - 1] = '0';
    }
    digits.insert(digits.begin(), '1');
}

/*
 * Rounds a canonical decimal to scale fraction digits (half away from zero,
 * as numeric does) and checks that at most precision - scale digits remain
 * before the point.  The output always has exactly scale fraction digits,
 * like PostgreSQL's output of a numeric(p,s) value.
 */
bool
fit_numeric(const std::string &canonical, int precision, int scale, std::string &out,
            std::string &error)
{
    bool negative = !canonical.empty() && canonical[0] == '-';
    std::string body = negative ? canonical.substr(1) : canonical;
    size_t point = body.find('.');
    std::string int_digits = body.substr(0, point);
    std::string frac_digits = point == std::string::npos ? "" : body.substr(point + 1);

    bool round_up = false;
    if (frac_digits.size() > static_cast<size_t>(scale))
    {
        round_up = frac_digits[static_cast<size_t>(scale)] >= '5';
        frac_digits.resize(static_cast<size_t>(scale));
    }
    frac_digits.append(static_cast<size_t>(scale) - frac_digits.size(), '0');

    std::string digits = int_digits + frac_digits;
    if (round_up)
        increment_digits(digits);
    int_digits = digits.substr(0, digits.size() - static_cast<size_t>(scale));
    frac_digits = digits.substr(digits.size() - static_cast<size_t>(scale));

    size_t first_significant = int_digits.find_first_not_of('0');
    int_digits = first_significant == std::string::npos ? "0"
                                                         : int_digits.substr(first_significant);
    int max_int_digits = precision - scale;
    if (int_digits != "0" && static_cast<int>(int_digits.size()) > max_int_digits)
    {
        error = "value " + canonical + " does not fit numeric(" + std::to_string(precision) +
                "," + std::to_string(scale) + "): at most " + std::to_string(max_int_digits) +
                " digits are allowed before the decimal point";
        return false;
    }

    bool is_zero = int_digits == "0" && frac_digits.find_first_not_of('0') == std::string::npos;
    out = (negative && !is_zero ? "-" : "") + int_digits;
    if (scale > 0)
        out += "." + frac_digits;
    return true;
}

/* Parses an integer and checks the range of the column type. */
bool
convert_integer(const FieldSpec &spec, std::string_view text, int64_t min, int64_t max,
                std::optional<std::string> &out, std::string &error)
{
    int64_t value = 0;
    if (!parse_integer(text, value, error))
        return false;
    if (value < min || value > max)
    {
        error = "value " + std::to_string(value) + " is out of range for " +
                std::string(spec.sql_type) + " (" + std::to_string(min) + " to " +
                std::to_string(max) + ")";
        return false;
    }
    out = std::to_string(value);
    return true;
}

/* Lists the values of an enumeration for an error message. */
std::string
list_enum_values(const FieldSpec &spec)
{
    std::string list;
    for (std::string_view value : spec.enum_values)
    {
        if (!list.empty())
            list += ", ";
        list += value;
    }
    return list;
}

/* The body of convert_for_column, which may throw std::bad_alloc. */
bool
convert_for_column_impl(const FieldSpec &spec, std::string_view text, char decimal_separator,
                        DateFormat date_format, std::optional<std::string> &out,
                        std::string &error)
{
    switch (spec.type)
    {
        case FieldType::Text:
            out = std::string(text);
            return true;
        case FieldType::SmallInt:
            return convert_integer(spec, text, std::numeric_limits<int16_t>::min(),
                                   std::numeric_limits<int16_t>::max(), out, error);
        case FieldType::Integer:
            return convert_integer(spec, text, std::numeric_limits<int32_t>::min(),
                                   std::numeric_limits<int32_t>::max(), out, error);
        case FieldType::Numeric:
        {
            std::string canonical;
            if (!parse_decimal(text, decimal_separator, canonical, error))
                return false;
            int precision = 0;
            int scale = 0;
            if (!numeric_typmod(spec.sql_type, precision, scale))
            {
                out = canonical;
                return true;
            }
            std::string fitted;
            if (!fit_numeric(canonical, precision, scale, fitted, error))
                return false;
            out = fitted;
            return true;
        }
        case FieldType::Date:
            return parse_date(text, date_format, out, error);
        case FieldType::Bool:
        {
            bool value = false;
            if (!parse_bool(text, value, error))
                return false;
            out = value ? "true" : "false";
            return true;
        }
        case FieldType::Enum:
            if (!is_enum_value(spec, text))
            {
                error = quote_value(text) + " is not a " + std::string(spec.name) +
                        " value (expected one of " + list_enum_values(spec) + ")";
                return false;
            }
            out = std::string(text);
            return true;
    }
    error = "unsupported column type";
    return false;
}

/* Converts a scalar JSON value to text; false for objects and arrays. */
bool
json_to_text(const json &value, std::string &text, std::string &error)
{
    switch (value.type())
    {
        case json::value_t::string:
            text = value.get_ref<const std::string &>();
            return true;
        case json::value_t::boolean:
            text = value.get<bool>() ? "true" : "false";
            return true;
        case json::value_t::number_integer:
            text = std::to_string(value.get<int64_t>());
            return true;
        case json::value_t::number_unsigned:
            text = std::to_string(value.get<uint64_t>());
            return true;
        case json::value_t::number_float:
            /* dump() writes the shortest text that reads back as the same
             * double.  parse_page keeps decimal text exact by delivering
             * such numbers as strings. */
            text = value.dump();
            return true;
        default:
            error = std::string("expected a scalar value, got a JSON ") + value.type_name();
            return false;
    }
}

std::string
apply_transforms(const FieldMapping &entry, std::string text)
{
    for (ValueTransform transform : entry.transforms)
    {
        switch (transform)
        {
            case ValueTransform::Trim:
                text = trim(text);
                break;
            case ValueTransform::Upper:
                text = upper(text);
                break;
            case ValueTransform::Lower:
                text = lower(text);
                break;
        }
    }
    return text;
}

/* Finds the source value of entry in record; nullptr when missing. */
const json *
find_source(const json &record, const std::string &property)
{
    auto it = record.find(property);
    return it == record.end() ? nullptr : &*it;
}

/* Reads the ETag: @odata.etag (V4), odata.etag (JSON light of older SAP
 * Business One releases) or __metadata.etag (V2). */
std::optional<std::string>
read_etag(const json &record)
{
    for (const char *name : {"@odata.etag", "odata.etag"})
    {
        const json *etag = find_source(record, name);
        if (etag != nullptr && etag->is_string())
            return etag->get<std::string>();
    }
    const json *metadata = find_source(record, "__metadata");
    if (metadata != nullptr && metadata->is_object())
    {
        const json *etag = find_source(*metadata, "etag");
        if (etag != nullptr && etag->is_string())
            return etag->get<std::string>();
    }
    return std::nullopt;
}

/*
 * Maps one governed column; on success appends it to result.columns,
 * otherwise appends an error.  Leaves the column out when its source
 * property is missing and it has no default.
 */
void
map_column(const ConnectorProfile &profile, const FieldMapping &entry, const FieldSpec &spec,
           const json &record, MappedRecord &result)
{
    const bool from_csv = profile.kind == ConnectorKind::Csv;
    auto fail = [&](const std::string &message) {
        result.errors.push_back({entry.column, entry.source, message});
    };

    /* Step 1: the raw value. */
    const json *raw = find_source(record, entry.source);
    if (raw == nullptr)
    {
        if (entry.has_default)
            result.columns.push_back({entry.column, entry.default_value});
        return;
    }
    if (raw->is_null())
    {
        result.columns.push_back({entry.column, std::nullopt});
        return;
    }
    std::string text;
    std::string error;
    if (!json_to_text(*raw, text, error))
    {
        fail(error);
        return;
    }

    /* Step 2: transforms apply to strings only. */
    if (raw->is_string())
        text = apply_transforms(entry, text);

    /* Step 3: value map. */
    auto mapped = entry.value_map.find(text);
    if (mapped != entry.value_map.end())
    {
        if (!mapped->second.has_value())
        {
            result.columns.push_back({entry.column, std::nullopt});
            return;
        }
        text = *mapped->second;
    }

    /* Step 4: empty text. */
    if (trim(text).empty())
    {
        if (from_csv)
        {
            result.columns.push_back({entry.column, std::nullopt});
            return;
        }
        switch (spec.type)
        {
            case FieldType::SmallInt:
            case FieldType::Integer:
            case FieldType::Numeric:
            case FieldType::Date:
                result.columns.push_back({entry.column, std::nullopt});
                return;
            case FieldType::Enum:
                fail("empty value is not a " + std::string(spec.name) +
                     " value; map \"\" in value_map");
                return;
            case FieldType::Text:
            case FieldType::Bool:
                break;
        }
    }

    /* Step 5: type.  JSON numbers always use '.' as decimal separator. */
    char separator = raw->is_number() ? '.' : entry.decimal_separator;
    std::optional<std::string> value;
    if (!convert_for_column_impl(spec, text, separator, entry.date_format, value, error))
    {
        if (spec.type == FieldType::Enum && !entry.value_map.empty() &&
            mapped == entry.value_map.end())
            error += ", and value_map has no entry for it";
        fail(error);
        return;
    }
    result.columns.push_back({entry.column, value});
}

/* Maps the "vin" entry into result.vin. */
void
map_vin(const FieldMapping &entry, const json &record, MappedRecord &result)
{
    auto fail = [&](const std::string &message) {
        result.errors.push_back({"vin", entry.source, message});
    };
    const json *raw = find_source(record, entry.source);
    if (raw == nullptr)
    {
        fail("missing source property " + quote_value(entry.source) + " for the VIN");
        return;
    }
    if (raw->is_null())
    {
        fail("the VIN is null");
        return;
    }
    std::string text;
    std::string error;
    if (!raw->is_string() && !raw->is_number())
    {
        fail(std::string("expected the VIN as a string, got a JSON ") + raw->type_name());
        return;
    }
    json_to_text(*raw, text, error);
    text = apply_transforms(entry, text);
    if (trim(text).empty())
    {
        fail("the VIN is empty");
        return;
    }
    result.vin = text;
}

/* Reads the key property and the delta property of an HTTP record. */
void
map_key_and_modified(const ConnectorProfile &profile, const json &record, MappedRecord &result)
{
    std::string error;
    const json *key = find_source(record, profile.key_property);
    if (key == nullptr || key->is_null())
        result.errors.push_back(
            {"", profile.key_property,
             "missing key property " + quote_value(profile.key_property)});
    else if (!json_to_text(*key, result.key, error))
        result.errors.push_back({"", profile.key_property, "key property: " + error});

    if (profile.delta.mode != DeltaMode::ModifiedSince)
        return;
    const json *modified = find_source(record, profile.delta.property);
    if (modified == nullptr || modified->is_null())
        return;
    Timestamp timestamp;
    if (!modified->is_string())
        result.errors.push_back({"", profile.delta.property,
                                 std::string("expected a timestamp string, got a JSON ") +
                                     modified->type_name()});
    else if (!parse_timestamp(modified->get_ref<const std::string &>(), timestamp, error))
        result.errors.push_back({"", profile.delta.property, error});
    else
        result.modified = timestamp;
}

}  // namespace

bool
convert_for_column(const FieldSpec &spec, std::string_view text, char decimal_separator,
                   DateFormat date_format, std::optional<std::string> &out, std::string &error)
{
    try
    {
        return convert_for_column_impl(spec, text, decimal_separator, date_format, out, error);
    }
    catch (...)
    {
        error = "out of memory while converting a value";
        return false;
    }
}

MappedRecord
map_record(const ConnectorProfile &profile, const json &record)
{
    MappedRecord result;
    try
    {
        if (!record.is_object())
        {
            result.errors.push_back(
                {"", "", std::string("expected a JSON object, got a JSON ") + record.type_name()});
            return result;
        }
        if (is_http_kind(profile.kind))
        {
            map_key_and_modified(profile, record, result);
            result.etag = read_etag(record);
        }

        for (const FieldMapping &entry : profile.mapping)
        {
            if (entry.column == "vin")
            {
                map_vin(entry, record, result);
                continue;
            }
            const FieldSpec *spec = find_field(entry.column);
            if (spec == nullptr)
            {
                result.errors.push_back(
                    {entry.column, entry.source,
                     quote_value(entry.column) + " is not a governed column"});
                continue;
            }
            map_column(profile, entry, *spec, record, result);
        }
        if (profile.find_mapping("vin") == nullptr)
            result.errors.push_back({"vin", "", "the profile has no mapping for vin"});
    }
    catch (...)
    {
        result.errors.push_back({"", "", "out of memory while mapping a record"});
    }
    return result;
}

}  // namespace stocktech
