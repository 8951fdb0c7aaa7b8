/*
 * profile.hpp
 *    Connector profiles: the JSON documents that tell stocktech_sync how to
 *    read an ERP or a CSV export and how to map its records to vin_master.
 *
 * A profile is checked once, when it is saved; the workers then use the
 * typed ConnectorProfile and never see the JSON again.  Validation collects
 * every problem in one pass, so an integrator can fix a profile in one go.
 * Each ProfileError names the key path ("delta.overlap_seconds",
 * "mapping.commercial_status.value_map") and its message is a lowercase
 * sentence without a final period that contains that path.
 *
 * Invariants of a ConnectorProfile that validate_profile accepted:
 *  - mapping contains "vin" first, then governed columns in the order of
 *    governed_fields(), each at most once;
 *  - every value_map target, default and reverse_value_map key is a valid
 *    value of its column (enumeration member, number, date, ...);
 *  - service_root is an http or https URL without credentials, query or
 *    fragment, and ends with '/';
 *  - auth contains names of secrets, never secret values.
 *
 * Profiles carry no secrets and no PostgreSQL types, so this file and its
 * tests build without a server.  The format is documented in
 * docs/connectors.md and connectors/profile.schema.json.
 */
#ifndef STOCKTECH_CORE_PROFILE_HPP
#define STOCKTECH_CORE_PROFILE_HPP

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/transform.hpp"

namespace stocktech {

/* The profile format this code reads, stored in "format_version". */
constexpr int kProfileFormatVersion = 1;

enum class ConnectorKind { ODataV4, ODataV2, SapB1ServiceLayer, RestJson, Csv };
enum class AuthType { None, Basic, Bearer, OAuth2ClientCredentials, SessionLogin };
enum class DeltaMode { None, ModifiedSince, DeltaLink };

/* Literal form of the delta timestamp in $filter. */
enum class DeltaLiteral
{
    DateTimeOffset, /* V4 2024-01-31T12:00:00Z, V2 datetimeoffset'2024-01-31T12:00:00Z' */
    DateTime,       /* V2 only: datetime'2024-01-31T12:00:00' (Edm.DateTime, UTC) */
    Date,           /* V4 Edm.Date: 2024-01-31 */
    DateString      /* a quoted string '2024-01-31', as SAP Business One filters dates */
};

/* Whether write-back sends If-Match with the ETag read from the ERP. */
enum class EtagMode
{
    Required, /* a change to a record read without an ETag is not sent */
    IfPresent,
    Ignore /* never send If-Match; for services without optimistic locking */
};

enum class WriteMethod { Patch, Merge, Put };
enum class TextEncoding { Utf8, Latin1, Win1252 };
enum class ValueTransform { Trim, Upper, Lower };

/* Authentication.  Fields ending in _secret hold the NAME of a row in the
 * secrets table, never the secret. */
struct AuthConfig
{
    AuthType type = AuthType::None;
    std::string username;             /* basic, session_login */
    std::string password_secret;      /* basic, session_login */
    std::string token_secret;         /* bearer */
    std::string token_url;            /* oauth2_client_credentials */
    std::string client_id;            /* oauth2_client_credentials */
    std::string client_secret_secret; /* oauth2_client_credentials */
    std::string scope;                /* oauth2_client_credentials, optional */
    std::string login_url;            /* session_login; absolute URL */
    std::string company_db;           /* session_login, SAP Business One CompanyDB */
};

/* Incremental reading. */
struct DeltaConfig
{
    DeltaMode mode = DeltaMode::None;
    std::string property;        /* modified_since: the ERP's last-changed property */
    int64_t overlap_seconds = 60; /* re-read window before the watermark */
    DeltaLiteral literal = DeltaLiteral::DateTimeOffset;
};

struct CsrfConfig
{
    bool fetch = false;      /* fetch an x-csrf-token before the first write */
    bool head_first = false; /* fetch it with HEAD instead of GET */
};

/* Bidirectional mode: how local changes are written to the ERP. */
struct WriteBackConfig
{
    bool enabled = false;
    WriteMethod method = WriteMethod::Patch;
    std::string url_template; /* absolute, contains "{key}" */
    CsrfConfig csrf;
    bool repeatable_requests = false; /* send Repeatability-Request-ID */
    std::vector<std::string> fields;  /* columns that may be sent */
};

struct CsvConfig
{
    char delimiter = ',';
    TextEncoding encoding = TextEncoding::Utf8;
    char decimal_separator = '.';
    DateFormat date_format = DateFormat::Iso;
    char quote = '"';
    bool header = true;
};

/* Generic REST JSON services.  Pointers are RFC 6901 JSON pointers. */
struct RestConfig
{
    std::string records_pointer;      /* "" when the body is the array itself */
    std::string next_link_pointer;    /* empty: no server-driven paging */
    std::string page_size_param;      /* e.g. "limit"; empty: not sent */
    std::string modified_since_param; /* e.g. "updated_since"; needs delta.property */
};

/* One entry of "mapping": how one vin_master column is filled. */
struct FieldMapping
{
    std::string column;
    std::string source; /* "from": property, CSV header, or 1-based CSV column number */
    std::vector<ValueTransform> transforms;
    std::map<std::string, std::optional<std::string>> value_map; /* nullopt: NULL */
    std::map<std::string, std::string> reverse_value_map; /* column value -> ERP value */
    bool has_default = false;
    std::optional<std::string> default_value; /* canonical text; nullopt: NULL */
    char decimal_separator = '.';
    DateFormat date_format = DateFormat::Iso;
};

struct ConnectorProfile
{
    int format_version = kProfileFormatVersion;
    ConnectorKind kind = ConnectorKind::ODataV4;
    std::string description;

    /* HTTP kinds only. */
    std::string service_root; /* ends with '/' */
    std::string entity_set;
    std::string key_property;
    std::vector<std::string> select; /* empty: no $select */
    int64_t page_size = 500;
    int64_t max_pages = 1000;
    std::vector<std::pair<std::string, std::string>> query; /* custom query options */
    DeltaConfig delta;
    EtagMode etag = EtagMode::IfPresent;
    AuthConfig auth;
    int64_t poll_interval_seconds = 300;
    WriteBackConfig write_back;
    RestConfig rest;

    /* csv only. */
    CsvConfig csv;

    std::vector<FieldMapping> mapping;

    /* The mapping entry of column, or nullptr. */
    const FieldMapping *find_mapping(std::string_view column) const;
};

/* One validation problem; message contains path. */
struct ProfileError
{
    std::string path;
    std::string message;
};

/*
 * Validates a profile document and fills profile from it.  Returns true
 * when errors is empty.  Defaults are applied for omitted keys: for example
 * page_size 500 (20 for sap_b1_service_layer) and, when "select" is
 * omitted, a $select list made of key_property, delta.property and every
 * mapped source property.
 */
bool validate_profile(const nlohmann::json &document, ConnectorProfile &profile,
                      std::vector<ProfileError> &errors);

/*
 * Parses profile text and validates it.  Unlike validate_profile, this also
 * rejects duplicate keys, which a JSON parser resolves silently by keeping
 * the last one.  In "mapping" they would be two entries for one column.
 */
bool parse_profile(std::string_view text, ConnectorProfile &profile,
                   std::vector<ProfileError> &errors);

/* Joins the messages of errors, one per line, for an error detail. */
std::string format_profile_errors(const std::vector<ProfileError> &errors);

/* Whether kind reads over HTTP (every kind except csv). */
bool is_http_kind(ConnectorKind kind);

/* Profile spellings, for example "odata_v4", "oauth2_client_credentials",
 * "modified_since", "datetimeoffset", "if_present", "PATCH", "WIN1252". */
const char *to_string(ConnectorKind kind);
const char *to_string(AuthType type);
const char *to_string(DeltaMode mode);
const char *to_string(DeltaLiteral literal);
const char *to_string(EtagMode mode);
const char *to_string(WriteMethod method);
const char *to_string(TextEncoding encoding);
const char *to_string(ValueTransform transform);

}  // namespace stocktech

#endif
