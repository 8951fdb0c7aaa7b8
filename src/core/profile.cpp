/*
 * profile.cpp
 *    Validation of connector profile documents.
 *
 * The Validator walks the document once, section by section, fills the
 * ConnectorProfile and records every problem with its key path.  A section
 * with a wrong JSON type is reported and skipped.  Every nlohmann::json
 * accessor runs after a type check, so none throws a type_error.  Public
 * functions still catch everything, because allocation can fail.
 */
#include "core/profile.hpp"

#include <algorithm>
#include <set>

#include "core/fields.hpp"
#include "core/mapping.hpp"
#include "core/odata.hpp"

namespace stocktech {

namespace {

using nlohmann::json;

/* Every top-level key of any kind, to tell "unknown" from "not for this
 * kind". */
const std::vector<std::string_view> kCommonKeys = {"format_version", "kind", "description",
                                                   "mapping"};
const std::vector<std::string_view> kHttpKeys = {
    "service_root", "entity_set", "key_property", "select", "page_size", "max_pages", "query",
    "delta", "etag", "auth", "poll_interval_seconds", "write_back"};
const std::vector<std::string_view> kRestKeys = {"rest"};
const std::vector<std::string_view> kCsvKeys = {"csv"};

/* Keys under auth that would hold a secret value, with the key to use. */
const std::vector<std::pair<std::string_view, std::string_view>> kSecretValueKeys = {
    {"password", "password_secret"},  {"token", "token_secret"},
    {"access_token", "token_secret"}, {"bearer_token", "token_secret"},
    {"client_secret", "client_secret_secret"}, {"secret", "password_secret"},
    {"api_key", "token_secret"}};

/* Limits of the numeric settings, as documented in docs/connectors.md. */
constexpr int64_t kMaxPageSize = 10000;
constexpr int64_t kMaxPages = 1000000;
constexpr int64_t kMaxOverlapSeconds = 7 * 86400;
constexpr int64_t kMinPollSeconds = 10;
constexpr int64_t kMaxPollSeconds = 86400;
constexpr size_t kMaxStringLength = 2048;

std::string
join_path(const std::string &parent, std::string_view key)
{
    return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

/* "profile" for the top level, the path otherwise, for "in ..." phrases. */
std::string
location(const std::string &path)
{
    return path.empty() ? "profile" : path;
}

/* A JSON value shortened for messages. */
std::string
show(const json &value)
{
    std::string text = value.dump();
    if (text.size() > 64)
        text = text.substr(0, 61) + "...";
    return text;
}

/* Lower case without '_' and '-', to match "PageSize" with "page_size". */
std::string
fold(std::string_view text)
{
    std::string result;
    for (char c : text)
    {
        if (c != '_' && c != '-')
            result += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return result;
}

/* Optimal string alignment distance: insertions, deletions, substitutions
 * and transpositions of adjacent characters ("form" -> "from") cost 1. */
size_t
edit_distance(std::string_view a, std::string_view b)
{
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); i++)
        d[i][0] = i;
    for (size_t j = 0; j <= b.size(); j++)
        d[0][j] = j;
    for (size_t i = 1; i <= a.size(); i++)
    {
        for (size_t j = 1; j <= b.size(); j++)
        {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

/*
 * The candidate closest to key, or "" when none is close.  Close means:
 * equal ignoring case and separators, at most two edits apart and no more
 * than a third of the candidate's length, or a prefix of at least four
 * characters ("overlap" for "overlap_seconds").
 */
std::string
suggest(std::string_view key, const std::vector<std::string_view> &candidates)
{
    const std::string folded_key = fold(key);
    std::string best;
    size_t best_distance = 3;
    for (std::string_view candidate : candidates)
    {
        const std::string folded = fold(candidate);
        if (folded_key == folded)
            return std::string(candidate);
        size_t distance = edit_distance(folded_key, folded);
        if (distance < best_distance && distance * 3 <= folded.size())
        {
            best = std::string(candidate);
            best_distance = distance;
        }
    }
    if (!best.empty() || folded_key.size() < 4)
        return best;
    for (std::string_view candidate : candidates)
    {
        if (fold(candidate).rfind(folded_key, 0) == 0)
            return std::string(candidate);
    }
    return best;
}

bool
contains(const std::vector<std::string_view> &list, std::string_view value)
{
    return std::find(list.begin(), list.end(), value) != list.end();
}

/* Whether text is usable as a secret name: a letter or '_', then letters,
 * digits, '_', '.' or '-', at most 63 characters. */
bool
is_secret_name(std::string_view text)
{
    if (text.empty() || text.size() > 63)
        return false;
    for (size_t i = 0; i < text.size(); i++)
    {
        char c = text[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool other = (c >= '0' && c <= '9') || c == '.' || c == '-';
        if (!letter && (i == 0 || !other))
            return false;
    }
    return true;
}

class Validator
{
  public:
    Validator(ConnectorProfile &profile, std::vector<ProfileError> &errors)
        : profile_(profile), errors_(errors)
    {
    }

    void validate(const json &document);

  private:
    ConnectorProfile &profile_;
    std::vector<ProfileError> &errors_;
    bool kind_known_ = false;

    void add(const std::string &path, const std::string &message)
    {
        errors_.push_back({path, message});
    }

    void check_keys(const json &object, const std::string &path,
                    const std::vector<std::string_view> &allowed);
    void check_top_keys(const json &document);
    const json *member(const json &object, std::string_view key);

    bool read_string(const json &object, const std::string &path, std::string_view key,
                     std::string &out, bool required);
    bool read_integer(const json &object, const std::string &path, std::string_view key,
                      int64_t min, int64_t max, int64_t &out);
    bool read_bool(const json &object, const std::string &path, std::string_view key,
                   bool &out);
    bool read_url(const json &object, const std::string &path, std::string_view key,
                  std::string &out, bool required);
    bool read_char(const json &object, const std::string &path, std::string_view key,
                   const std::vector<std::string_view> &allowed, char &out);

    void validate_kind(const json &document);
    void validate_http(const json &document);
    void validate_query(const json &document);
    void validate_delta(const json &document);
    void validate_etag(const json &document);
    void validate_auth(const json &document);
    void validate_secret_name(const json &auth, const std::string &key, std::string &out,
                              bool required);
    void validate_write_back(const json &document);
    void validate_rest(const json &document);
    void validate_csv(const json &document);
    void validate_mapping(const json &document);
    void validate_mapping_entry(const std::string &column, const json &value);
    void check_entry_keys(const FieldSpec *spec, const json &value, const std::string &path);
    void read_source(const json &value, const std::string &path, bool positional,
                     FieldMapping &entry);
    void read_transforms(const json &value, const std::string &path, FieldMapping &entry);
    void read_entry_options(const FieldSpec &spec, const json &value, const std::string &path,
                            FieldMapping &entry);
    void validate_value_map(const FieldSpec &spec, const json &map, const std::string &path,
                            FieldMapping &entry);
    void validate_reverse_value_map(const FieldSpec &spec, const json &map,
                                    const std::string &path, FieldMapping &entry);
    void validate_default(const FieldSpec &spec, const json &value, const std::string &path,
                          FieldMapping &entry);
    void validate_select(const json &document);
    void validate_write_back_fields(const json &write_back);
    bool convert_value(const FieldSpec &spec, const json &value, const FieldMapping &entry,
                       std::optional<std::string> &out, std::string &error);
};

const json *
Validator::member(const json &object, std::string_view key)
{
    auto it = object.find(std::string(key));
    return it == object.end() ? nullptr : &*it;
}

/* Reports keys of object that are not in allowed, with a suggestion. */
void
Validator::check_keys(const json &object, const std::string &path,
                      const std::vector<std::string_view> &allowed)
{
    for (auto it = object.begin(); it != object.end(); ++it)
    {
        if (contains(allowed, it.key()))
            continue;
        std::string message = "unknown key \"" + it.key() + "\" in " + location(path);
        std::string suggestion = suggest(it.key(), allowed);
        if (!suggestion.empty())
            message += "; did you mean \"" + suggestion + "\"?";
        add(join_path(path, it.key()), message);
    }
}

/* Top-level keys: unknown ones, and known ones of another kind. */
void
Validator::check_top_keys(const json &document)
{
    std::vector<std::string_view> allowed = kCommonKeys;
    std::vector<std::string_view> everything = kCommonKeys;
    for (const auto *list : {&kHttpKeys, &kRestKeys, &kCsvKeys})
        everything.insert(everything.end(), list->begin(), list->end());

    if (!kind_known_)
        allowed = everything;
    else if (profile_.kind == ConnectorKind::Csv)
        allowed.insert(allowed.end(), kCsvKeys.begin(), kCsvKeys.end());
    else
    {
        allowed.insert(allowed.end(), kHttpKeys.begin(), kHttpKeys.end());
        if (profile_.kind == ConnectorKind::RestJson)
        {
            allowed.insert(allowed.end(), kRestKeys.begin(), kRestKeys.end());
            allowed.erase(std::find(allowed.begin(), allowed.end(), "select"));
        }
    }

    for (auto it = document.begin(); it != document.end(); ++it)
    {
        if (contains(allowed, it.key()))
            continue;
        if (contains(everything, it.key()))
        {
            add(it.key(), "key \"" + it.key() + "\" does not apply to kind \"" +
                              to_string(profile_.kind) + "\"");
            continue;
        }
        std::string message = "unknown key \"" + it.key() + "\" in profile";
        std::string suggestion = suggest(it.key(), allowed);
        if (!suggestion.empty())
            message += "; did you mean \"" + suggestion + "\"?";
        add(it.key(), message);
    }
}

/* Reads an optional or required non-empty string. */
bool
Validator::read_string(const json &object, const std::string &path, std::string_view key,
                       std::string &out, bool required)
{
    const std::string key_path = join_path(path, key);
    const json *value = member(object, key);
    if (value == nullptr)
    {
        if (required)
            add(key_path, "missing key \"" + std::string(key) + "\" in " + location(path));
        return false;
    }
    if (!value->is_string() || value->get_ref<const std::string &>().empty())
    {
        add(key_path, key_path + " must be a non-empty string, got " + show(*value));
        return false;
    }
    if (value->get_ref<const std::string &>().size() > kMaxStringLength)
    {
        add(key_path, key_path + " is longer than " + std::to_string(kMaxStringLength) +
                          " characters");
        return false;
    }
    out = value->get<std::string>();
    return true;
}

/* Reads an optional integer within [min, max]; out keeps its default when
 * the key is missing. */
bool
Validator::read_integer(const json &object, const std::string &path, std::string_view key,
                        int64_t min, int64_t max, int64_t &out)
{
    const std::string key_path = join_path(path, key);
    const json *value = member(object, key);
    if (value == nullptr)
        return false;
    if (!value->is_number_integer() || value->get<int64_t>() < min ||
        value->get<int64_t>() > max ||
        (value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(max)))
    {
        add(key_path, key_path + " must be an integer from " + std::to_string(min) + " to " +
                          std::to_string(max) + ", got " + show(*value));
        return false;
    }
    out = value->get<int64_t>();
    return true;
}

bool
Validator::read_bool(const json &object, const std::string &path, std::string_view key,
                     bool &out)
{
    const std::string key_path = join_path(path, key);
    const json *value = member(object, key);
    if (value == nullptr)
        return false;
    if (!value->is_boolean())
    {
        add(key_path, key_path + " must be true or false, got " + show(*value));
        return false;
    }
    out = value->get<bool>();
    return true;
}

/* Reads an http(s) URL without credentials or fragment. */
bool
Validator::read_url(const json &object, const std::string &path, std::string_view key,
                    std::string &out, bool required)
{
    const std::string key_path = join_path(path, key);
    std::string text;
    if (!read_string(object, path, key, text, required))
        return false;

    HttpUrl url;
    std::string error;
    if (!parse_http_url(text, url, error))
    {
        add(key_path, "invalid " + key_path + " " + quote_value(text) + ": " + error);
        return false;
    }
    if (!url.userinfo.empty())
    {
        add(key_path, key_path + " must not contain a user name or password; "
                                 "configure them in auth");
        return false;
    }
    if (url.fragment)
    {
        add(key_path, key_path + " must not contain a fragment (\"#...\")");
        return false;
    }
    out = text;
    return true;
}

/* Reads a one-character setting given as one of allowed. */
bool
Validator::read_char(const json &object, const std::string &path, std::string_view key,
                     const std::vector<std::string_view> &allowed, char &out)
{
    const std::string key_path = join_path(path, key);
    const json *value = member(object, key);
    if (value == nullptr)
        return false;
    if (!value->is_string() || !contains(allowed, value->get_ref<const std::string &>()))
    {
        std::string list;
        for (std::string_view item : allowed)
            list += (list.empty() ? "" : ", ") + json(std::string(item)).dump();
        add(key_path, key_path + " must be one of " + list + ", got " + show(*value));
        return false;
    }
    out = value->get_ref<const std::string &>()[0];
    return true;
}

void
Validator::validate(const json &document)
{
    if (!document.is_object())
    {
        add("", "profile must be a JSON object, got a JSON " + std::string(document.type_name()));
        return;
    }

    /* Check format_version first, because a profile of another format is
     * not read further. */
    const json *version = member(document, "format_version");
    if (version == nullptr)
    {
        add("format_version", "missing key \"format_version\" in profile; the current format "
                              "is " + std::to_string(kProfileFormatVersion));
        return;
    }
    if (!version->is_number_integer() || version->get<int64_t>() != kProfileFormatVersion)
    {
        add("format_version", "format_version " + show(*version) +
                                  " is not supported; this version of stocktech_sync reads "
                                  "format " + std::to_string(kProfileFormatVersion));
        return;
    }
    profile_.format_version = kProfileFormatVersion;

    validate_kind(document);
    check_top_keys(document);
    read_string(document, "", "description", profile_.description, false);

    if (kind_known_ && profile_.kind == ConnectorKind::Csv)
        validate_csv(document);
    else if (kind_known_)
        validate_http(document);

    validate_mapping(document);
    if (kind_known_ && is_http_kind(profile_.kind))
    {
        validate_select(document);
        validate_write_back(document);
    }
}

void
Validator::validate_kind(const json &document)
{
    const json *kind = member(document, "kind");
    if (kind == nullptr)
    {
        add("kind", "missing key \"kind\" in profile");
        return;
    }
    const std::vector<std::pair<std::string_view, ConnectorKind>> kinds = {
        {"odata_v4", ConnectorKind::ODataV4},
        {"odata_v2", ConnectorKind::ODataV2},
        {"sap_b1_service_layer", ConnectorKind::SapB1ServiceLayer},
        {"rest_json", ConnectorKind::RestJson},
        {"csv", ConnectorKind::Csv}};
    if (kind->is_string())
    {
        for (const auto &[name, value] : kinds)
        {
            if (kind->get_ref<const std::string &>() == name)
            {
                profile_.kind = value;
                kind_known_ = true;
                return;
            }
        }
    }
    add("kind", "invalid kind " + show(*kind) +
                    ": expected odata_v4, odata_v2, sap_b1_service_layer, rest_json or csv");
}

/* The endpoint and paging settings shared by the HTTP kinds. */
void
Validator::validate_http(const json &document)
{
    if (read_url(document, "", "service_root", profile_.service_root, true))
    {
        HttpUrl url;
        std::string error;
        parse_http_url(profile_.service_root, url, error);
        if (url.query)
        {
            add("service_root", "service_root must not contain a query; put query options "
                                "such as sap-client in \"query\"");
        }
        if (profile_.service_root.back() != '/')
            profile_.service_root += '/';
    }

    if (read_string(document, "", "entity_set", profile_.entity_set, true))
    {
        const std::string &set = profile_.entity_set;
        if (set.front() == '/' || set.find_first_of("?# \t\r\n") != std::string::npos ||
            set.find("..") != std::string::npos)
        {
            add("entity_set", "entity_set " + quote_value(set) +
                                  " must be a path relative to service_root, without "
                                  "\"/\" at the start, \"..\", query, fragment or spaces");
        }
    }
    if (read_string(document, "", "key_property", profile_.key_property, true) &&
        profile_.key_property.find_first_of("/?#&=' \t") != std::string::npos)
    {
        add("key_property", "key_property " + quote_value(profile_.key_property) +
                                " must be a property name");
    }

    profile_.page_size = profile_.kind == ConnectorKind::SapB1ServiceLayer ? 20 : 500;
    read_integer(document, "", "page_size", 1, kMaxPageSize, profile_.page_size);
    read_integer(document, "", "max_pages", 1, kMaxPages, profile_.max_pages);
    read_integer(document, "", "poll_interval_seconds", kMinPollSeconds, kMaxPollSeconds,
                 profile_.poll_interval_seconds);

    validate_query(document);
    validate_delta(document);
    validate_etag(document);
    validate_auth(document);
    if (profile_.kind == ConnectorKind::RestJson)
        validate_rest(document);
}

/* Custom query options: names must not start with '$'. */
void
Validator::validate_query(const json &document)
{
    const json *query = member(document, "query");
    if (query == nullptr)
        return;
    if (!query->is_object())
    {
        add("query", "query must be an object of option names to string values, got " +
                         show(*query));
        return;
    }
    for (auto it = query->begin(); it != query->end(); ++it)
    {
        const std::string path = join_path("query", it.key());
        if (it.key().empty() || it.key()[0] == '$')
        {
            add(path, "query option " + quote_value(it.key()) +
                          " is not allowed: stocktech_sync generates the OData system "
                          "query options ($select, $filter, $orderby, $top, ...)");
            continue;
        }
        if (!it.value().is_string())
        {
            add(path, path + " must be a string, got " + show(it.value()));
            continue;
        }
        profile_.query.emplace_back(it.key(), it.value().get<std::string>());
    }
}

void
Validator::validate_delta(const json &document)
{
    const json *delta = member(document, "delta");
    if (delta == nullptr)
        return;
    if (!delta->is_object())
    {
        add("delta", "delta must be an object, got " + show(*delta));
        return;
    }

    std::string mode = "modified_since";
    read_string(*delta, "delta", "mode", mode, false);
    if (mode == "none")
    {
        check_keys(*delta, "delta", {"mode"});
        profile_.delta.mode = DeltaMode::None;
        return;
    }
    if (mode == "delta_link")
    {
        check_keys(*delta, "delta", {"mode"});
        if (profile_.kind != ConnectorKind::ODataV4 && profile_.kind != ConnectorKind::ODataV2)
        {
            add("delta.mode", "delta.mode \"delta_link\" needs kind odata_v4 or odata_v2");
            return;
        }
        profile_.delta.mode = DeltaMode::DeltaLink;
        return;
    }
    if (mode != "modified_since")
    {
        add("delta.mode", "invalid delta.mode " + quote_value(mode) +
                              ": expected modified_since, delta_link or none");
        return;
    }

    profile_.delta.mode = DeltaMode::ModifiedSince;
    check_keys(*delta, "delta", {"mode", "property", "overlap_seconds", "literal"});
    read_string(*delta, "delta", "property", profile_.delta.property, true);
    read_integer(*delta, "delta", "overlap_seconds", 0, kMaxOverlapSeconds,
                 profile_.delta.overlap_seconds);

    std::string literal;
    if (!read_string(*delta, "delta", "literal", literal, false))
        return;
    const std::vector<std::pair<std::string_view, DeltaLiteral>> literals = {
        {"datetimeoffset", DeltaLiteral::DateTimeOffset},
        {"datetime", DeltaLiteral::DateTime},
        {"date", DeltaLiteral::Date},
        {"date_string", DeltaLiteral::DateString}};
    for (const auto &[name, value] : literals)
    {
        if (literal != name)
            continue;
        if (value == DeltaLiteral::DateTime && profile_.kind != ConnectorKind::ODataV2)
        {
            add("delta.literal", "delta.literal \"datetime\" (Edm.DateTime) exists only in "
                                 "OData V2; use \"datetimeoffset\"");
            return;
        }
        profile_.delta.literal = value;
        return;
    }
    add("delta.literal", "invalid delta.literal " + quote_value(literal) +
                             ": expected datetimeoffset, datetime, date or date_string");
}

void
Validator::validate_etag(const json &document)
{
    std::string etag;
    if (!read_string(document, "", "etag", etag, false))
        return;
    if (etag == "required")
        profile_.etag = EtagMode::Required;
    else if (etag == "if_present")
        profile_.etag = EtagMode::IfPresent;
    else if (etag == "ignore")
        profile_.etag = EtagMode::Ignore;
    else
        add("etag", "invalid etag " + quote_value(etag) +
                        ": expected required, if_present or ignore");
}

/* Reads a key that names a secret and rejects values that cannot be a
 * name. */
void
Validator::validate_secret_name(const json &auth, const std::string &key, std::string &out,
                                bool required)
{
    const std::string path = join_path("auth", key);
    if (!read_string(auth, "auth", key, out, required))
        return;
    if (!is_secret_name(out))
    {
        add(path, path + " must be the name of a secret in the secrets table (a letter or "
                         "\"_\", then letters, digits, \"_\", \".\" or \"-\", at most 63 "
                         "characters), not the secret itself");
        out.clear();
    }
}

void
Validator::validate_auth(const json &document)
{
    const json *auth = member(document, "auth");
    if (auth == nullptr)
        return;
    if (!auth->is_object())
    {
        add("auth", "auth must be an object, got " + show(*auth));
        return;
    }

    /* A secret written into the profile is the worst mistake: name it
     * first, with the key to use instead. */
    for (const auto &[key, replacement] : kSecretValueKeys)
    {
        if (member(*auth, key) != nullptr)
        {
            const std::string path = join_path("auth", key);
            add(path, path + " must not contain a secret; store it in the secrets table "
                             "and set auth." + std::string(replacement) + " to its name");
        }
    }

    std::string type;
    if (!read_string(*auth, "auth", "type", type, true))
        return;

    AuthConfig &config = profile_.auth;
    std::vector<std::string_view> allowed = {"type"};
    for (const auto &[key, replacement] : kSecretValueKeys)
        allowed.push_back(key); /* reported above */

    if (type == "none")
        config.type = AuthType::None;
    else if (type == "basic")
    {
        config.type = AuthType::Basic;
        allowed.insert(allowed.end(), {"username", "password_secret"});
        read_string(*auth, "auth", "username", config.username, true);
        validate_secret_name(*auth, "password_secret", config.password_secret, true);
    }
    else if (type == "bearer")
    {
        config.type = AuthType::Bearer;
        allowed.push_back("token_secret");
        validate_secret_name(*auth, "token_secret", config.token_secret, true);
    }
    else if (type == "oauth2_client_credentials")
    {
        config.type = AuthType::OAuth2ClientCredentials;
        allowed.insert(allowed.end(), {"token_url", "client_id", "client_secret_secret", "scope"});
        read_url(*auth, "auth", "token_url", config.token_url, true);
        read_string(*auth, "auth", "client_id", config.client_id, true);
        validate_secret_name(*auth, "client_secret_secret", config.client_secret_secret, true);
        read_string(*auth, "auth", "scope", config.scope, false);
    }
    else if (type == "session_login")
    {
        config.type = AuthType::SessionLogin;
        allowed.insert(allowed.end(), {"username", "password_secret", "login_url", "company_db"});
        read_string(*auth, "auth", "username", config.username, true);
        validate_secret_name(*auth, "password_secret", config.password_secret, true);
        bool is_b1 = profile_.kind == ConnectorKind::SapB1ServiceLayer;
        read_string(*auth, "auth", "company_db", config.company_db, is_b1);
        if (!read_url(*auth, "auth", "login_url", config.login_url, false) &&
            !profile_.service_root.empty())
            config.login_url = profile_.service_root + "Login";
    }
    else
    {
        add("auth.type", "invalid auth.type " + quote_value(type) +
                             ": expected none, basic, bearer, oauth2_client_credentials or "
                             "session_login");
        return;
    }
    check_keys(*auth, "auth", allowed);
}

void
Validator::validate_rest(const json &document)
{
    const json *rest = member(document, "rest");
    if (rest == nullptr)
    {
        add("rest", "missing key \"rest\" in profile, required for kind \"rest_json\"");
        return;
    }
    if (!rest->is_object())
    {
        add("rest", "rest must be an object, got " + show(*rest));
        return;
    }
    check_keys(*rest, "rest",
               {"records_pointer", "next_link_pointer", "page_size_param",
                "modified_since_param"});

    RestConfig &config = profile_.rest;
    for (const char *key : {"records_pointer", "next_link_pointer"})
    {
        const json *pointer = member(*rest, key);
        const std::string path = join_path("rest", key);
        if (pointer == nullptr)
        {
            if (std::string_view(key) == "records_pointer")
                add(path, "missing key \"records_pointer\" in rest");
            continue;
        }
        if (!pointer->is_string() ||
            (!pointer->get_ref<const std::string &>().empty() &&
             pointer->get_ref<const std::string &>()[0] != '/'))
        {
            add(path, path + " must be a JSON pointer such as \"/items\" (\"\" for the whole "
                             "body), got " + show(*pointer));
            continue;
        }
        (std::string_view(key) == "records_pointer" ? config.records_pointer
                                                    : config.next_link_pointer) =
            pointer->get<std::string>();
    }
    read_string(*rest, "rest", "page_size_param", config.page_size_param, false);
    read_string(*rest, "rest", "modified_since_param", config.modified_since_param, false);
    if (!config.modified_since_param.empty() && profile_.delta.mode != DeltaMode::ModifiedSince)
        add("rest.modified_since_param",
            "rest.modified_since_param needs delta.property, which names the record's "
            "last-changed property");
}

void
Validator::validate_csv(const json &document)
{
    const json *csv = member(document, "csv");
    if (csv == nullptr)
        return; /* all defaults: comma, UTF8, '.', ISO dates, header line */
    if (!csv->is_object())
    {
        add("csv", "csv must be an object, got " + show(*csv));
        return;
    }
    check_keys(*csv, "csv",
               {"delimiter", "encoding", "decimal_separator", "date_format", "quote", "header"});

    CsvConfig &config = profile_.csv;
    read_char(*csv, "csv", "delimiter", {",", ";", "\t"}, config.delimiter);
    read_char(*csv, "csv", "decimal_separator", {".", ","}, config.decimal_separator);
    read_char(*csv, "csv", "quote", {"\"", "'"}, config.quote);
    read_bool(*csv, "csv", "header", config.header);

    std::string encoding;
    if (read_string(*csv, "csv", "encoding", encoding, false))
    {
        if (encoding == "UTF8")
            config.encoding = TextEncoding::Utf8;
        else if (encoding == "LATIN1")
            config.encoding = TextEncoding::Latin1;
        else if (encoding == "WIN1252")
            config.encoding = TextEncoding::Win1252;
        else
            add("csv.encoding", "invalid csv.encoding " + quote_value(encoding) +
                                    ": expected UTF8, LATIN1 or WIN1252");
    }

    std::string date_format;
    if (read_string(*csv, "csv", "date_format", date_format, false))
    {
        std::optional<DateFormat> format = parse_date_format(date_format);
        if (format)
            config.date_format = *format;
        else
            add("csv.date_format", "invalid csv.date_format " + quote_value(date_format) +
                                       ": expected YYYY-MM-DD, DD.MM.YYYY, DD/MM/YYYY, "
                                       "MM/DD/YYYY or YYYYMMDD");
    }
    if (config.quote == config.delimiter)
        add("csv.quote", "csv.quote must differ from csv.delimiter");
}

void
Validator::validate_mapping(const json &document)
{
    const json *mapping = member(document, "mapping");
    if (mapping == nullptr)
    {
        add("mapping", "missing key \"mapping\" in profile");
        return;
    }
    if (!mapping->is_object())
    {
        add("mapping", "mapping must be an object of column names to entries, got " +
                           show(*mapping));
        return;
    }
    if (member(*mapping, "vin") == nullptr)
        add("mapping.vin", "mapping must contain \"vin\", the column that identifies the "
                           "vehicle");

    std::vector<std::string_view> columns = {"vin"};
    for (const FieldSpec &spec : governed_fields())
        columns.push_back(spec.name);
    for (auto it = mapping->begin(); it != mapping->end(); ++it)
    {
        if (contains(columns, it.key()))
            continue;
        std::string message = "unknown column \"" + it.key() +
                              "\" in mapping: only \"vin\" and the governed columns can be "
                              "mapped";
        std::string suggestion = suggest(it.key(), columns);
        if (!suggestion.empty())
            message += "; did you mean \"" + suggestion + "\"?";
        add(join_path("mapping", it.key()), message);
    }

    /* Entries in catalog order, "vin" first. */
    for (std::string_view column : columns)
    {
        const json *entry = member(*mapping, column);
        if (entry != nullptr)
            validate_mapping_entry(std::string(column), *entry);
    }
}

/* Converts a scalar JSON value given in the profile for spec. */
bool
Validator::convert_value(const FieldSpec &spec, const json &value, const FieldMapping &entry,
                         std::optional<std::string> &out, std::string &error)
{
    std::string text;
    if (value.is_string())
        text = value.get<std::string>();
    else if (value.is_boolean() || value.is_number())
        text = value.dump();
    else
    {
        error = "expected a string, number, boolean or null, got " + show(value);
        return false;
    }
    char separator = value.is_number() ? '.' : entry.decimal_separator;
    return convert_for_column(spec, text, separator, entry.date_format, out, error);
}

void
Validator::validate_mapping_entry(const std::string &column, const json &value)
{
    const std::string path = join_path("mapping", column);
    const FieldSpec *spec = find_field(column); /* nullptr for "vin" */
    const bool is_csv = kind_known_ && profile_.kind == ConnectorKind::Csv;
    const bool positional = is_csv && !profile_.csv.header;

    FieldMapping entry;
    entry.column = column;
    entry.decimal_separator = is_csv ? profile_.csv.decimal_separator : '.';
    entry.date_format = is_csv ? profile_.csv.date_format : DateFormat::Iso;

    /* Shorthand: "model_code": "Model". */
    if (value.is_string() && !positional)
    {
        entry.source = value.get<std::string>();
        if (entry.source.empty())
            add(path, path + " must name a source property");
        profile_.mapping.push_back(entry);
        return;
    }
    if (!value.is_object())
    {
        add(path, path + " must be an object with \"from\"" +
                      (positional ? std::string() : " or a source property name") +
                      ", got " + show(value));
        return;
    }

    check_entry_keys(spec, value, path);
    read_source(value, path, positional, entry);
    read_transforms(value, path, entry);
    if (spec != nullptr)
        read_entry_options(*spec, value, path, entry);
    profile_.mapping.push_back(entry);
}

/* Reports keys of a mapping entry that are unknown or do not apply to the
 * column's type. */
void
Validator::check_entry_keys(const FieldSpec *spec, const json &value, const std::string &path)
{
    std::vector<std::string_view> allowed = {"from", "transform"};
    if (spec != nullptr)
        allowed.insert(allowed.end(), {"value_map", "reverse_value_map", "default"});
    if (spec != nullptr && spec->type == FieldType::Numeric)
        allowed.push_back("decimal_separator");
    if (spec != nullptr && spec->type == FieldType::Date)
        allowed.push_back("date_format");
    for (auto it = value.begin(); it != value.end(); ++it)
    {
        if (contains(allowed, it.key()))
            continue;
        if (it.key() == "decimal_separator" || it.key() == "date_format" ||
            it.key() == "value_map" || it.key() == "reverse_value_map" || it.key() == "default")
        {
            std::string type = spec != nullptr ? std::string(spec->sql_type) : "the VIN";
            add(join_path(path, it.key()), "key \"" + it.key() + "\" does not apply to " +
                                               path + ", whose type is " + type);
            continue;
        }
        std::string message = "unknown key \"" + it.key() + "\" in " + path;
        std::string suggestion = suggest(it.key(), allowed);
        if (!suggestion.empty())
            message += "; did you mean \"" + suggestion + "\"?";
        add(join_path(path, it.key()), message);
    }
}

/* Reads "from": a name, or a column number for CSV files without header. */
void
Validator::read_source(const json &value, const std::string &path, bool positional,
                       FieldMapping &entry)
{
    const json *from = member(value, "from");
    if (from == nullptr)
        add(join_path(path, "from"), "missing key \"from\" in " + path);
    else if (positional)
    {
        if (!from->is_number_integer() || from->get<int64_t>() < 1 ||
            from->get<int64_t>() > 10000)
            add(join_path(path, "from"),
                path + ".from must be a column number from 1 (csv.header is false), got " +
                    show(*from));
        else
            entry.source = std::to_string(from->get<int64_t>());
    }
    else if (!from->is_string() || from->get_ref<const std::string &>().empty())
        add(join_path(path, "from"),
            path + ".from must be a non-empty string, got " + show(*from));
    else
        entry.source = from->get<std::string>();
}

void
Validator::read_transforms(const json &value, const std::string &path, FieldMapping &entry)
{
    const json *transforms = member(value, "transform");
    if (transforms == nullptr)
        return;
    const std::string transform_path = join_path(path, "transform");
    if (!transforms->is_array())
    {
        add(transform_path, transform_path + " must be an array such as [\"trim\", \"upper\"], "
                                             "got " + show(*transforms));
        return;
    }
    for (const json &item : *transforms)
    {
        if (item == "trim")
            entry.transforms.push_back(ValueTransform::Trim);
        else if (item == "upper")
            entry.transforms.push_back(ValueTransform::Upper);
        else if (item == "lower")
            entry.transforms.push_back(ValueTransform::Lower);
        else
            add(transform_path, "invalid transform " + show(item) + " in " + transform_path +
                                    ": expected trim, upper or lower");
    }
}

/* Reads the parsing options first, because value_map and default use them. */
void
Validator::read_entry_options(const FieldSpec &spec, const json &value, const std::string &path,
                              FieldMapping &entry)
{
    read_char(value, path, "decimal_separator", {".", ","}, entry.decimal_separator);
    std::string date_format;
    if (read_string(value, path, "date_format", date_format, false))
    {
        std::optional<DateFormat> format = parse_date_format(date_format);
        if (format)
            entry.date_format = *format;
        else
            add(join_path(path, "date_format"),
                "invalid " + join_path(path, "date_format") + " " +
                    quote_value(date_format) +
                    ": expected YYYY-MM-DD, DD.MM.YYYY, DD/MM/YYYY, MM/DD/YYYY or YYYYMMDD");
    }

    const json *value_map = member(value, "value_map");
    if (value_map != nullptr)
        validate_value_map(spec, *value_map, join_path(path, "value_map"), entry);
    const json *reverse = member(value, "reverse_value_map");
    if (reverse != nullptr)
        validate_reverse_value_map(spec, *reverse, join_path(path, "reverse_value_map"),
                                   entry);
    const json *default_value = member(value, "default");
    if (default_value != nullptr)
        validate_default(spec, *default_value, join_path(path, "default"), entry);
}

/* value_map targets must be valid values of the column. */
void
Validator::validate_value_map(const FieldSpec &spec, const json &map, const std::string &path,
                              FieldMapping &entry)
{
    if (!map.is_object())
    {
        add(path, path + " must be an object of source values to column values, got " +
                      show(map));
        return;
    }
    for (auto it = map.begin(); it != map.end(); ++it)
    {
        if (it.value().is_null())
        {
            entry.value_map[it.key()] = std::nullopt;
            continue;
        }
        std::optional<std::string> converted;
        std::string error;
        if (!convert_value(spec, it.value(), entry, converted, error))
        {
            add(path, path + " maps " + quote_value(it.key()) + " to " + show(it.value()) +
                          ": " + error);
            continue;
        }
        entry.value_map[it.key()] = converted;
    }
}

/* reverse_value_map: column value -> ERP value, for write-back. */
void
Validator::validate_reverse_value_map(const FieldSpec &spec, const json &map,
                                      const std::string &path, FieldMapping &entry)
{
    if (!map.is_object())
    {
        add(path, path + " must be an object of column values to ERP values, got " + show(map));
        return;
    }
    for (auto it = map.begin(); it != map.end(); ++it)
    {
        std::optional<std::string> converted;
        std::string error;
        if (!convert_value(spec, json(it.key()), entry, converted, error) || !converted)
        {
            add(path, path + " has the key " + quote_value(it.key()) + ", which is not a valid " +
                          std::string(spec.name) + " value: " + error);
            continue;
        }
        if (!it.value().is_string())
        {
            add(path, path + " must map " + quote_value(it.key()) +
                          " to a string ERP value, got " + show(it.value()));
            continue;
        }
        entry.reverse_value_map[*converted] = it.value().get<std::string>();
    }
}

void
Validator::validate_default(const FieldSpec &spec, const json &value, const std::string &path,
                            FieldMapping &entry)
{
    entry.has_default = true;
    if (value.is_null())
    {
        entry.default_value = std::nullopt;
        return;
    }
    std::string error;
    if (!convert_value(spec, value, entry, entry.default_value, error))
    {
        add(path, path + " " + show(value) + " is not a valid " + std::string(spec.name) +
                      " value: " + error);
        entry.has_default = false;
    }
}

/* An explicit select must contain every property that the profile reads;
 * an omitted one is derived. */
void
Validator::validate_select(const json &document)
{
    std::vector<std::string> needed;
    auto need = [&needed](const std::string &property) {
        if (!property.empty() &&
            std::find(needed.begin(), needed.end(), property) == needed.end())
            needed.push_back(property);
    };
    need(profile_.key_property);
    if (profile_.delta.mode == DeltaMode::ModifiedSince)
        need(profile_.delta.property);
    for (const FieldMapping &entry : profile_.mapping)
        need(entry.source);

    const json *select = member(document, "select");
    if (select == nullptr)
    {
        profile_.select = needed;
        return;
    }
    if (!select->is_array())
    {
        add("select", "select must be an array of property names, got " + show(*select));
        return;
    }
    for (const json &item : *select)
    {
        if (!item.is_string() || item.get_ref<const std::string &>().empty())
        {
            add("select", "select must contain non-empty property names, got " + show(item));
            return;
        }
        profile_.select.push_back(item.get<std::string>());
    }
    if (profile_.select.empty())
        return; /* [] means: send no $select */

    for (const std::string &property : needed)
    {
        if (std::find(profile_.select.begin(), profile_.select.end(), property) !=
            profile_.select.end())
            continue;
        std::string reader = property == profile_.key_property ? "key_property"
                             : property == profile_.delta.property ? "delta.property"
                                                                    : "the mapping";
        for (const FieldMapping &entry : profile_.mapping)
        {
            if (reader == "the mapping" && entry.source == property)
            {
                reader = "mapping." + entry.column;
                break;
            }
        }
        add("select", "select does not contain " + quote_value(property) + ", which " +
                          reader + " reads; add it or omit select");
    }
}

void
Validator::validate_write_back(const json &document)
{
    const json *write_back = member(document, "write_back");
    if (write_back == nullptr)
        return;
    if (!write_back->is_object())
    {
        add("write_back", "write_back must be an object, got " + show(*write_back));
        return;
    }
    check_keys(*write_back, "write_back",
               {"enabled", "method", "url", "csrf", "repeatable_requests", "fields"});

    WriteBackConfig &config = profile_.write_back;
    config.enabled = true;
    read_bool(*write_back, "write_back", "enabled", config.enabled);

    std::string method;
    if (read_string(*write_back, "write_back", "method", method, true))
    {
        if (method == "PATCH")
            config.method = WriteMethod::Patch;
        else if (method == "PUT")
            config.method = WriteMethod::Put;
        else if (method == "MERGE" && profile_.kind == ConnectorKind::ODataV2)
            config.method = WriteMethod::Merge;
        else if (method == "MERGE")
            add("write_back.method", "write_back.method \"MERGE\" exists only in OData V2; "
                                     "use \"PATCH\"");
        else
            add("write_back.method", "invalid write_back.method " + quote_value(method) +
                                         ": expected PATCH, MERGE or PUT");
    }

    /* url: relative to service_root, or absolute on the same host. */
    std::string url_template;
    if (read_string(*write_back, "write_back", "url", url_template, true))
    {
        if (url_template.find("{key}") == std::string::npos)
            add("write_back.url", "write_back.url must contain \"{key}\", for example "
                                  "\"Vehicles('{key}')\"");
        bool absolute = url_template.rfind("http://", 0) == 0 ||
                        url_template.rfind("https://", 0) == 0 ||
                        url_template.find("://") != std::string::npos;
        if (!absolute)
            url_template = profile_.service_root + (url_template[0] == '/' ? url_template.substr(1)
                                                                           : url_template);
        HttpUrl url;
        HttpUrl root;
        std::string error;
        std::string probe = url_template;
        for (size_t pos; (pos = probe.find("{key}")) != std::string::npos;)
            probe.replace(pos, 5, "KEY");
        if (!parse_http_url(probe, url, error))
            add("write_back.url", "invalid write_back.url " + quote_value(url_template) + ": " +
                                      error);
        else if (!profile_.service_root.empty() &&
                 parse_http_url(profile_.service_root, root, error) &&
                 url.origin() != root.origin())
            add("write_back.url", "write_back.url must be on the host of service_root (" +
                                      root.origin() + "), so that credentials go to one host");
        config.url_template = url_template;
    }

    const json *csrf = member(*write_back, "csrf");
    config.csrf.fetch =
        profile_.kind == ConnectorKind::ODataV2 || profile_.kind == ConnectorKind::ODataV4;
    if (csrf != nullptr && !csrf->is_object())
        add("write_back.csrf", "write_back.csrf must be an object such as {\"fetch\": true}, "
                               "got " + show(*csrf));
    else if (csrf != nullptr)
    {
        check_keys(*csrf, "write_back.csrf", {"fetch", "head_first"});
        read_bool(*csrf, "write_back.csrf", "fetch", config.csrf.fetch);
        read_bool(*csrf, "write_back.csrf", "head_first", config.csrf.head_first);
    }
    read_bool(*write_back, "write_back", "repeatable_requests", config.repeatable_requests);
    validate_write_back_fields(*write_back);
}

/*
 * write_back.fields: mapped columns whose value map can be reversed.  A
 * value map that sends two ERP values to one column value needs a
 * reverse_value_map entry for that value, or the ERP value to write would
 * be a guess.
 */
void
Validator::validate_write_back_fields(const json &write_back)
{
    const json *fields = member(write_back, "fields");
    if (fields == nullptr)
    {
        add("write_back.fields", "missing key \"fields\" in write_back: list the columns "
                                 "that may be written to the ERP");
        return;
    }
    if (!fields->is_array() || fields->empty())
    {
        add("write_back.fields", "write_back.fields must be a non-empty array of column "
                                 "names, got " + show(*fields));
        return;
    }
    for (const json &item : *fields)
    {
        if (!item.is_string())
        {
            add("write_back.fields", "write_back.fields must contain column names, got " +
                                         show(item));
            continue;
        }
        const std::string column = item.get<std::string>();
        const FieldMapping *entry = profile_.find_mapping(column);
        if (column == "vin" || entry == nullptr)
        {
            add("write_back.fields", "write_back.fields contains " + quote_value(column) +
                                         ", which is not a mapped governed column");
            continue;
        }
        if (std::find(profile_.write_back.fields.begin(), profile_.write_back.fields.end(),
                      column) != profile_.write_back.fields.end())
        {
            add("write_back.fields", "write_back.fields lists " + quote_value(column) + " twice");
            continue;
        }
        profile_.write_back.fields.push_back(column);

        std::map<std::string, std::vector<std::string>> sources_of;
        for (const auto &[source, target] : entry->value_map)
        {
            if (target)
                sources_of[*target].push_back(source);
        }
        for (const auto &[target, sources] : sources_of)
        {
            if (sources.size() > 1 && entry->reverse_value_map.count(target) == 0)
            {
                const std::string path = "mapping." + column;
                add(path + ".reverse_value_map",
                    path + ".value_map maps " + quote_value(sources[0]) + " and " +
                        quote_value(sources[1]) + " to " + quote_value(target) +
                        ", so write-back needs " + path + ".reverse_value_map[" +
                        quote_value(target) + "] to choose the ERP value");
            }
        }
    }
}

/* Duplicate-key detection for parse_profile.  nlohmann::json keeps the
 * last of two equal keys, so the check must run while parsing. */
class DuplicateKeyChecker
{
  public:
    explicit DuplicateKeyChecker(std::vector<ProfileError> &errors) : errors_(errors) {}

    bool on_event(json::parse_event_t event, const json &parsed)
    {
        switch (event)
        {
            case json::parse_event_t::object_start:
                frames_.push_back({true, child_path(), {}, ""});
                break;
            case json::parse_event_t::array_start:
                frames_.push_back({false, child_path(), {}, ""});
                break;
            case json::parse_event_t::object_end:
            case json::parse_event_t::array_end:
                if (!frames_.empty())
                    frames_.pop_back();
                break;
            case json::parse_event_t::key:
                on_key(parsed.get<std::string>());
                break;
            case json::parse_event_t::value:
                break;
        }
        return true;
    }

  private:
    struct Frame
    {
        bool is_object;
        std::string path;
        std::set<std::string> keys;
        std::string last_key;
    };
    std::vector<Frame> frames_;
    std::vector<ProfileError> &errors_;

    std::string child_path() const
    {
        if (frames_.empty())
            return "";
        const Frame &parent = frames_.back();
        return parent.is_object ? join_path(parent.path, parent.last_key) : parent.path + "[]";
    }

    void on_key(const std::string &key)
    {
        if (frames_.empty())
            return;
        Frame &frame = frames_.back();
        frame.last_key = key;
        if (frame.keys.insert(key).second)
            return;
        const std::string path = join_path(frame.path, key);
        if (frame.path == "mapping")
            errors_.push_back({path, "column \"" + key + "\" is mapped twice in mapping; "
                                     "each column can be read from one source only"});
        else
            errors_.push_back({path, "duplicate key \"" + key + "\" in " + location(frame.path)});
    }
};

}  // namespace

const FieldMapping *
ConnectorProfile::find_mapping(std::string_view column) const
{
    for (const FieldMapping &entry : mapping)
    {
        if (entry.column == column)
            return &entry;
    }
    return nullptr;
}

bool
validate_profile(const json &document, ConnectorProfile &profile,
                 std::vector<ProfileError> &errors)
{
    size_t errors_before = errors.size();
    try
    {
        profile = ConnectorProfile();
        Validator validator(profile, errors);
        validator.validate(document);
    }
    catch (const std::exception &e)
    {
        errors.push_back({"", std::string("internal error while validating the profile: ") +
                                  e.what()});
    }
    catch (...)
    {
        errors.push_back({"", "internal error while validating the profile"});
    }
    return errors.size() == errors_before;
}

bool
parse_profile(std::string_view text, ConnectorProfile &profile,
              std::vector<ProfileError> &errors)
{
    try
    {
        std::vector<ProfileError> duplicates;
        DuplicateKeyChecker checker(duplicates);
        json document = json::parse(
            text.begin(), text.end(),
            [&checker](int, json::parse_event_t event, json &parsed) {
                return checker.on_event(event, parsed);
            },
            false);
        if (document.is_discarded())
        {
            /* Parse again without callback for the parser's position. */
            std::string detail = "the text is not valid JSON";
            try
            {
                json strict = json::parse(text.begin(), text.end());
                (void) strict;
            }
            catch (const json::parse_error &e)
            {
                detail = e.what();
            }
            errors.push_back({"", "invalid profile: " + detail});
            return false;
        }
        bool valid = validate_profile(document, profile, errors);
        errors.insert(errors.end(), duplicates.begin(), duplicates.end());
        return valid && duplicates.empty();
    }
    catch (...)
    {
        errors.push_back({"", "internal error while parsing the profile"});
        return false;
    }
}

std::string
format_profile_errors(const std::vector<ProfileError> &errors)
{
    try
    {
        std::string text;
        for (const ProfileError &error : errors)
        {
            if (!text.empty())
                text += '\n';
            text += error.message;
        }
        return text;
    }
    catch (...)
    {
        return "profile errors could not be formatted";
    }
}

bool
is_http_kind(ConnectorKind kind)
{
    return kind != ConnectorKind::Csv;
}

const char *
to_string(ConnectorKind kind)
{
    switch (kind)
    {
        case ConnectorKind::ODataV4:
            return "odata_v4";
        case ConnectorKind::ODataV2:
            return "odata_v2";
        case ConnectorKind::SapB1ServiceLayer:
            return "sap_b1_service_layer";
        case ConnectorKind::RestJson:
            return "rest_json";
        case ConnectorKind::Csv:
            return "csv";
    }
    return "unknown";
}

const char *
to_string(AuthType type)
{
    switch (type)
    {
        case AuthType::None:
            return "none";
        case AuthType::Basic:
            return "basic";
        case AuthType::Bearer:
            return "bearer";
        case AuthType::OAuth2ClientCredentials:
            return "oauth2_client_credentials";
        case AuthType::SessionLogin:
            return "session_login";
    }
    return "unknown";
}

const char *
to_string(DeltaMode mode)
{
    switch (mode)
    {
        case DeltaMode::None:
            return "none";
        case DeltaMode::ModifiedSince:
            return "modified_since";
        case DeltaMode::DeltaLink:
            return "delta_link";
    }
    return "unknown";
}

const char *
to_string(DeltaLiteral literal)
{
    switch (literal)
    {
        case DeltaLiteral::DateTimeOffset:
            return "datetimeoffset";
        case DeltaLiteral::DateTime:
            return "datetime";
        case DeltaLiteral::Date:
            return "date";
        case DeltaLiteral::DateString:
            return "date_string";
    }
    return "unknown";
}

const char *
to_string(EtagMode mode)
{
    switch (mode)
    {
        case EtagMode::Required:
            return "required";
        case EtagMode::IfPresent:
            return "if_present";
        case EtagMode::Ignore:
            return "ignore";
    }
    return "unknown";
}

const char *
to_string(WriteMethod method)
{
    switch (method)
    {
        case WriteMethod::Patch:
            return "PATCH";
        case WriteMethod::Merge:
            return "MERGE";
        case WriteMethod::Put:
            return "PUT";
    }
    return "unknown";
}

const char *
to_string(TextEncoding encoding)
{
    switch (encoding)
    {
        case TextEncoding::Utf8:
            return "UTF8";
        case TextEncoding::Latin1:
            return "LATIN1";
        case TextEncoding::Win1252:
            return "WIN1252";
    }
    return "unknown";
}

const char *
to_string(ValueTransform transform)
{
    switch (transform)
    {
        case ValueTransform::Trim:
            return "trim";
        case ValueTransform::Upper:
            return "upper";
        case ValueTransform::Lower:
            return "lower";
    }
    return "unknown";
}

}  // namespace stocktech
