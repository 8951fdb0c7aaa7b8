/*
 * writeback.cpp
 *    Building write-back request bodies (see writeback.hpp).
 */
#include "core/writeback.hpp"

#include <algorithm>
#include <cstdlib>

#include "core/fields.hpp"
#include "core/odata.hpp"

namespace stocktech {

namespace {

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil algorithm). */
long
days_from_civil(long year, unsigned month, unsigned day)
{
    year -= month <= 2;
    const long era = (year >= 0 ? year : year - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(year - era * 400);
    const unsigned doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<long>(doe) - 719468;
}

/* The JSON value of one canonical text for the column's type. */
bool
typed_value(const FieldSpec &spec, const std::string &text, ODataVersion version,
            nlohmann::json &out, std::string &error)
{
    switch (spec.type)
    {
        case FieldType::Text:
        case FieldType::Enum:
            out = text;
            return true;
        case FieldType::Bool:
            out = text == "t" || text == "true";
            return true;
        case FieldType::SmallInt:
        case FieldType::Integer:
        {
            char *end = nullptr;
            long long value = std::strtoll(text.c_str(), &end, 10);
            if (end == text.c_str() || *end != '\0')
            {
                error = "invalid integer " + quote_value(text);
                return false;
            }
            out = value;
            return true;
        }
        case FieldType::Numeric:
        {
            if (version == ODataVersion::V2)
            {
                out = text; /* Edm.Decimal travels as a string in OData V2 JSON */
                return true;
            }
            nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
            if (parsed.is_discarded() || !parsed.is_number())
            {
                error = "invalid number " + quote_value(text);
                return false;
            }
            out = parsed;
            return true;
        }
        case FieldType::Date:
        {
            int year = 0;
            unsigned month = 0;
            unsigned day = 0;
            if (std::sscanf(text.c_str(), "%d-%u-%u", &year, &month, &day) != 3)
            {
                error = "invalid date " + quote_value(text);
                return false;
            }
            if (version == ODataVersion::V2)
                out = "/Date(" + std::to_string(days_from_civil(year, month, day) * 86400000L) +
                      ")/";
            else
                out = text;
            return true;
        }
    }
    error = "unsupported column type";
    return false;
}

}  // namespace

std::string
reverse_map_value(const FieldMapping &mapping, const std::string &value)
{
    auto reverse = mapping.reverse_value_map.find(value);
    if (reverse != mapping.reverse_value_map.end())
        return reverse->second;
    for (const auto &entry : mapping.value_map)
    {
        if (entry.second && *entry.second == value)
            return entry.first;
    }
    return value;
}

bool
build_write_body(const ConnectorProfile &profile, const nlohmann::json &fields,
                 nlohmann::json &body, std::string &error)
{
    try
    {
        body = nlohmann::json::object();
        if (!fields.is_object())
        {
            error = "the fields to write must be a JSON object";
            return false;
        }
        ODataVersion version = page_version(profile.kind);
        for (auto it = fields.begin(); it != fields.end(); ++it)
        {
            const std::string &column = it.key();
            const std::vector<std::string> &allowed = profile.write_back.fields;
            if (std::find(allowed.begin(), allowed.end(), column) == allowed.end())
            {
                error = "column " + quote_value(column) + " is not in write_back.fields";
                return false;
            }
            const FieldMapping *mapping = profile.find_mapping(column);
            const FieldSpec *spec = find_field(column);
            if (mapping == nullptr || spec == nullptr)
            {
                error = "column " + quote_value(column) + " has no mapping";
                return false;
            }
            if (it.value().is_null())
            {
                body[mapping->source] = nullptr;
                continue;
            }
            if (!it.value().is_string())
            {
                error = "the value of column " + quote_value(column) + " must be text";
                return false;
            }
            std::string text = it.value().get<std::string>();
            if (spec->type == FieldType::Enum || spec->type == FieldType::Text)
                text = reverse_map_value(*mapping, text);
            nlohmann::json value;
            if (!typed_value(*spec, text, version, value, error))
            {
                error = "column " + quote_value(column) + ": " + error;
                return false;
            }
            body[mapping->source] = value;
        }
        return true;
    }
    catch (const std::exception &e)
    {
        error = e.what();
        return false;
    }
}

bool
write_url(const ConnectorProfile &profile, const std::string &key, std::string &url,
          std::string &error)
{
    if (!expand_write_url(profile, key, url, error))
        return false;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
        url = profile.service_root + url;
    return true;
}

}  // namespace stocktech
