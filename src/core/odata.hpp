/*
 * odata.hpp
 *    OData V2 and V4 wire format: response pages, error bodies, next links
 *    and the page URLs of a sync run.
 *
 * Nothing here does I/O: the inbound worker sends the requests through
 * libcurl and hands the bodies to these functions.  No function throws.
 *
 * Paging contract for one sync run (the worker implements it):
 *  1. request build_query(profile, watermark) with the Prefer header it
 *     returns;
 *  2. with delta mode modified_since or none, request every further page
 *     with build_query and a watermark made of the last record of the page
 *     before (its delta property and key property) with continuation =
 *     true.  Next links are not followed in these modes: servers such as
 *     CAP put an offset into them, and an offset skips a row when an
 *     earlier row changes during the run.  The run ends after a page that
 *     has no next link and fewer than page_size records;
 *  3. with delta mode delta_link, follow the next links through
 *     resolve_next_link; the last page carries the delta link for the next
 *     run;
 *  4. stop at max_pages, or with an error on a repeated URL or an empty
 *     page that still links onward.
 * Records are ordered by (delta property, key property), so the pair of the
 * last record applied is a watermark that neither skips nor repeats records
 * that share a timestamp.
 */
#ifndef STOCKTECH_CORE_ODATA_HPP
#define STOCKTECH_CORE_ODATA_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/profile.hpp"

namespace stocktech {

enum class ODataVersion { V2, V4 };

/* The page format of kind: V2 for odata_v2, V4 for odata_v4 and
 * sap_b1_service_layer (whose older releases write "odata.nextLink"
 * without '@', which parse_page also reads). */
ODataVersion page_version(ConnectorKind kind);

/* One page of a collection response. */
struct ODataPage
{
    nlohmann::json records = nlohmann::json::array();
    nlohmann::json removed = nlohmann::json::array(); /* V4 delta: entities with @removed */
    std::optional<std::string> next_link;
    std::optional<int64_t> count;
    std::optional<std::string> delta_link;
};

/*
 * Parses a collection response body.
 *    V4: {"value": [...], "@odata.nextLink", "@odata.count", "@odata.deltaLink"}
 *        ("odata.nextLink" and friends are accepted too);
 *    V2: {"d": {"results": [...], "__next", "__count" (a string), "__delta"}}
 *        or {"d": [...]} from OData V1-style services.
 * JSON numbers with a fraction or an exponent are delivered as strings
 * holding their exact text, because a double would lose digits of
 * Edm.Decimal values (12345678901234567.89).  Integers stay numbers.
 * A body with an OData error object fails with parse_error_body's text.
 */
bool parse_page(std::string_view body, ODataVersion version, ODataPage &page,
                std::string &error);

/* Parses a REST JSON page: records at rest.records_pointer, the next link
 * at rest.next_link_pointer.  Numbers are handled as in parse_page. */
bool parse_rest_page(std::string_view body, const RestConfig &rest, ODataPage &page,
                     std::string &error);

/*
 * Summarises an error response for logs and dead letters, for example
 *    HTTP 400, error code "SY/530": Property 'Foo' is invalid
 *    HTTP 502 with an HTML body: "Bad Gateway"
 *    HTTP 503 with an empty body
 * Reads the V4 error object (message a string), the V2 one (message
 * {"lang", "value"}, code also a number as SAP Business One writes it), the
 * V2 XML error document, and plain text; innererror is ignored.  Bodies
 * that are not valid UTF-8 or are truncated JSON are reported as such.
 * ERP text is cut to 500 bytes and control characters are replaced.
 */
std::string parse_error_body(int status, std::string_view content_type, std::string_view body);

/* An http or https URL split into its RFC 3986 components. */
struct HttpUrl
{
    std::string scheme; /* lower case */
    std::string userinfo;
    std::string host; /* lower case */
    std::string port; /* empty when not given */
    std::string path;
    std::optional<std::string> query;
    std::optional<std::string> fragment;

    /* scheme://host[:port] */
    std::string origin() const;
};

/* Splits an absolute http or https URL; rejects other schemes, empty
 * hosts, spaces and control characters. */
bool parse_http_url(std::string_view text, HttpUrl &url, std::string &error);

/*
 * Resolves a next link or delta link against the entity set URL.
 *  - An absolute link is re-based onto service_root: SAP Gateway and
 *    reverse proxies often return an internal host name, and re-basing also
 *    keeps credentials from being sent to a host the profile does not name.
 *    The link's path must contain the service root's path, or the entity
 *    set URL's last segment, to find the part to keep.
 *  - A relative link is resolved per RFC 3986 section 5.2 against
 *    entity_set_url, so "Vehicles?$skiptoken=10" replaces its last segment
 *    and "?$skiptoken=10" only its query.
 * The result must lie under service_root.  Fragments are dropped.
 */
bool resolve_next_link(std::string_view service_root, std::string_view entity_set_url,
                       std::string_view next_link, std::string &url, std::string &error);

/* service_root + entity_set. */
std::string entity_set_url(const ConnectorProfile &profile);

/* Reading position: the last record of the previous run or page. */
struct Watermark
{
    /* delta.property of that record, in microseconds since 1970-01-01 UTC;
     * nullopt on the first run. */
    std::optional<int64_t> modified_micros;
    /* key_property of that record; may be empty. */
    std::string key;
    /* true for the second and later pages of a run, and for a run that
     * continues one stopped at max_pages: no overlap window, strictly
     * after (modified, key). */
    bool continuation = false;
    /* delta_link mode: the link of the previous run, if any. */
    std::string delta_link;
};

/* A page request: URL and the value of the Prefer header. */
struct PageRequest
{
    std::string url;
    std::string prefer;
};

/*
 * Builds the request of the page after watermark.  For OData kinds the URL
 * carries, in this order: $select, $filter (see below), $orderby (delta
 * property, then key property), $top=page_size, $count=true (V4) or
 * $inlinecount=allpages (V2), then the custom query options.  Prefer is
 * "odata.maxpagesize=<page_size>", plus "odata.track-changes" on the first
 * run of delta_link mode, whose later runs request the stored delta link.
 *
 * The $filter for watermark (T, K), with W = delta.overlap_seconds:
 *    continuation or W = 0:  m gt T or (m eq T and key gt 'K')
 *    otherwise:              m ge T - W
 *    delta mode none:        key gt 'K' on continuation, else no filter
 * The second form re-reads the overlap window, for records that the ERP
 * committed late with an earlier timestamp.  Re-applying a record is
 * harmless, because unchanged values produce no change.  With the date
 * literals (day granularity) the whole day of T - W is re-read.
 * Every part is percent-encoded; string literals double their quotes.
 */
bool build_query(const ConnectorProfile &profile, const Watermark &watermark,
                 PageRequest &request, std::string &error);

/* The OData literal of a timestamp for literal and version, for example
 * 2024-01-31T12:00:00Z or datetimeoffset'2024-01-31T12:00:00.5Z'. */
std::string format_delta_literal(int64_t micros, DeltaLiteral literal, ODataVersion version);

/* 'text' with every ' doubled. */
std::string odata_string_literal(std::string_view text);

/* Percent-encodes text for a URL query component.  Unreserved characters
 * and ! $ ' ( ) * , : @ / ? stay readable; every other byte is %XX. */
std::string percent_encode_query(std::string_view text);

/* The write-back URL of key: write_back.url_template with "{key}" replaced
 * by key, its quotes doubled and percent-encoded as a path segment. */
bool expand_write_url(const ConnectorProfile &profile, std::string_view key, std::string &url,
                      std::string &error);

}  // namespace stocktech

#endif
