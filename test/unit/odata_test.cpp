/*
 * odata_test.cpp
 *    Unit tests of the OData wire format code (src/core/odata.cpp): V2 and
 *    V4 pages, error bodies of each shape, next-link resolution and the
 *    page URLs with their watermark filters.
 */
#include <gtest/gtest.h>

#include "core/odata.hpp"

namespace stocktech {
namespace {

using nlohmann::json;

const char *const kRoot = "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/";
const char *const kEntitySet = "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles";

/* Resolves link against kRoot and kEntitySet; "ERROR: ..." on failure. */
std::string
resolve(std::string_view link, const char *root = kRoot, const char *entity_set = kEntitySet)
{
    std::string url;
    std::string error;
    if (!resolve_next_link(root, entity_set, link, url, error))
        return "ERROR: " + error;
    return url;
}

bool
is_error(const std::string &result)
{
    return result.rfind("ERROR: ", 0) == 0;
}

ConnectorProfile
load(const json &document)
{
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    EXPECT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    return profile;
}

json
v4_profile()
{
    return json::parse(R"json({
        "format_version": 1,
        "kind": "odata_v4",
        "service_root": "http://127.0.0.1:4004/odata/v4/vehicle/",
        "entity_set": "Vehicles",
        "key_property": "VIN",
        "delta": {"property": "modifiedAt", "overlap_seconds": 60},
        "mapping": {"vin": "VIN", "model_code": "Model"}
    })json");
}

/* 2024-01-01T00:01:00Z in microseconds. */
constexpr int64_t kWatermark = (1704067200LL + 60) * 1000000;

std::string
first_url(const ConnectorProfile &profile, const Watermark &watermark)
{
    PageRequest request;
    std::string error;
    if (!build_query(profile, watermark, request, error))
        return "ERROR: " + error;
    return request.url;
}

TEST(ParsePageTest, V4Collection)
{
    ODataPage page;
    std::string error;
    ASSERT_TRUE(parse_page(R"json({
        "@odata.context": "$metadata#Vehicles",
        "@odata.count": 1234,
        "value": [{"VIN": "A", "ModelYear": 2024}, {"VIN": "B", "ModelYear": 2023}],
        "@odata.nextLink": "Vehicles?$skiptoken=2"
    })json",
                           ODataVersion::V4, page, error))
        << error;
    EXPECT_EQ(page.records.size(), 2u);
    EXPECT_EQ(page.records[0]["VIN"], "A");
    EXPECT_TRUE(page.records[0]["ModelYear"].is_number_integer()) << "integers stay numbers";
    EXPECT_EQ(page.next_link, std::optional<std::string>("Vehicles?$skiptoken=2"));
    EXPECT_EQ(page.count, std::optional<int64_t>(1234));
    EXPECT_FALSE(page.delta_link.has_value());
}

TEST(ParsePageTest, V4LastPageAndEmptyPage)
{
    ODataPage page;
    std::string error;
    ASSERT_TRUE(parse_page(R"({"value": []})", ODataVersion::V4, page, error)) << error;
    EXPECT_TRUE(page.records.empty());
    EXPECT_FALSE(page.next_link.has_value());
    EXPECT_FALSE(page.count.has_value());
}

TEST(ParsePageTest, DecimalsKeepTheirDigits)
{
    ODataPage page;
    std::string error;
    ASSERT_TRUE(parse_page(R"({"value": [{"ListPrice": 12345678901234567.89, "Rate": 1e-7,
                                          "Big": 123456789012345678901234567890}]})",
                           ODataVersion::V4, page, error))
        << error;
    ASSERT_EQ(page.records.size(), 1u);
    EXPECT_EQ(page.records[0]["ListPrice"], "12345678901234567.89");
    EXPECT_EQ(page.records[0]["Rate"], "1e-7");
    EXPECT_EQ(page.records[0]["Big"], "123456789012345678901234567890");
}

TEST(ParsePageTest, V4JsonLightNamesOfBusinessOne)
{
    ODataPage page;
    std::string error;
    ASSERT_TRUE(parse_page(R"({"odata.metadata": "x", "value": [{"Code": "A"}],
                               "odata.nextLink": "STK_VEHICLES?$skip=20", "odata.count": "21"})",
                           ODataVersion::V4, page, error))
        << error;
    EXPECT_EQ(page.next_link, std::optional<std::string>("STK_VEHICLES?$skip=20"));
    EXPECT_EQ(page.count, std::optional<int64_t>(21));
}

TEST(ParsePageTest, V4DeltaResponse)
{
    ODataPage page;
    std::string error;
    ASSERT_TRUE(parse_page(R"json({
        "value": [
            {"VIN": "A", "Model": "GT"},
            {"@removed": {"reason": "deleted"}, "@id": "Vehicles('B')"},
            {"@odata.removed": {"reason": "changed"}, "@odata.id": "Vehicles('C')"}
        ],
        "@odata.deltaLink": "Vehicles?$deltatoken=abc"
    })json",
                           ODataVersion::V4, page, error))
        << error;
    EXPECT_EQ(page.records.size(), 1u);
    EXPECT_EQ(page.removed.size(), 2u);
    EXPECT_EQ(page.delta_link, std::optional<std::string>("Vehicles?$deltatoken=abc"));
}

TEST(ParsePageTest, V4Malformed)
{
    ODataPage page;
    std::string error;
    EXPECT_FALSE(parse_page(R"({"d": {"results": []}})", ODataVersion::V4, page, error));
    EXPECT_NE(error.find("no \"value\" array"), std::string::npos) << error;
    EXPECT_FALSE(parse_page(R"({"value": [], "@odata.nextLink": 5})", ODataVersion::V4, page,
                            error));
    EXPECT_NE(error.find("must be a string"), std::string::npos) << error;
    EXPECT_FALSE(parse_page(R"({"value": [], "@odata.count": -1})", ODataVersion::V4, page,
                            error));
    EXPECT_FALSE(parse_page("[1, 2]", ODataVersion::V4, page, error));
    EXPECT_NE(error.find("expected a JSON object"), std::string::npos) << error;
}

TEST(ParsePageTest, V2Results)
{
    ODataPage page;
    std::string error;
    ASSERT_TRUE(parse_page(R"json({"d": {
        "results": [{"__metadata": {"etag": "W/\"x\""}, "VIN": "A", "ListPrice": "52920.50"}],
        "__count": "1234",
        "__next": "http://internal:8000/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skiptoken=1"
    }})json",
                           ODataVersion::V2, page, error))
        << error;
    EXPECT_EQ(page.records.size(), 1u);
    EXPECT_EQ(page.records[0]["ListPrice"], "52920.50");
    EXPECT_EQ(page.count, std::optional<int64_t>(1234)) << "V2 __count is a string";
    EXPECT_TRUE(page.next_link.has_value());
}

TEST(ParsePageTest, V2BareArrayAndDelta)
{
    ODataPage page;
    std::string error;
    ASSERT_TRUE(parse_page(R"({"d": [{"VIN": "A"}, {"VIN": "B"}]})", ODataVersion::V2, page,
                           error))
        << error;
    EXPECT_EQ(page.records.size(), 2u);
    EXPECT_FALSE(page.next_link.has_value());

    ASSERT_TRUE(parse_page(R"({"d": {"results": [], "__delta": "Vehicles?!deltatoken='x'"}})",
                           ODataVersion::V2, page, error))
        << error;
    EXPECT_EQ(page.delta_link, std::optional<std::string>("Vehicles?!deltatoken='x'"));
}

TEST(ParsePageTest, V2Malformed)
{
    ODataPage page;
    std::string error;
    EXPECT_FALSE(parse_page(R"({"d": {"__metadata": {}, "VIN": "A"}})", ODataVersion::V2, page,
                            error));
    EXPECT_NE(error.find("single entity"), std::string::npos) << error;
    EXPECT_FALSE(parse_page(R"({"value": []})", ODataVersion::V2, page, error));
    EXPECT_NE(error.find("no \"d\""), std::string::npos) << error;
    EXPECT_FALSE(parse_page(R"({"d": {"results": [], "__count": "many"}})", ODataVersion::V2,
                            page, error));
}

TEST(ParsePageTest, ErrorObjectInBody)
{
    ODataPage page;
    std::string error;
    EXPECT_FALSE(parse_page(R"({"error": {"code": "X1", "message": "backend down"}})",
                            ODataVersion::V4, page, error));
    EXPECT_EQ(error, "the response is an OData error, error code \"X1\": backend down");
}

TEST(ParsePageTest, BrokenBodies)
{
    ODataPage page;
    std::string error;
    EXPECT_FALSE(parse_page("{\"value\": [{\"VIN\": \"A\"}", ODataVersion::V4, page, error));
    EXPECT_NE(error.find("truncated"), std::string::npos) << error;
    EXPECT_FALSE(parse_page("{\"value\": [\"\xFF\"]}", ODataVersion::V4, page, error));
    EXPECT_NE(error.find("not valid UTF-8"), std::string::npos) << error;
    EXPECT_FALSE(parse_page("{\"value\": [} ]}", ODataVersion::V4, page, error));
    EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
    EXPECT_FALSE(parse_page("", ODataVersion::V4, page, error));

    std::string deep = "{\"value\": [" + std::string(100, '[') + std::string(100, ']') + "]}";
    EXPECT_FALSE(parse_page(deep, ODataVersion::V4, page, error));
    EXPECT_NE(error.find("deeper than"), std::string::npos) << error;
}

TEST(ParseRestPageTest, PointersAndNextLink)
{
    RestConfig rest;
    rest.records_pointer = "/data/items";
    rest.next_link_pointer = "/links/next";
    ODataPage page;
    std::string error;
    ASSERT_TRUE(parse_rest_page(R"({"data": {"items": [{"vin": "A"}]},
                                    "links": {"next": "/api/vehicles?page=2"}})",
                                rest, page, error))
        << error;
    EXPECT_EQ(page.records.size(), 1u);
    EXPECT_EQ(page.next_link, std::optional<std::string>("/api/vehicles?page=2"));

    ASSERT_TRUE(parse_rest_page(R"({"data": {"items": []}, "links": {"next": null}})", rest, page,
                                error))
        << error;
    EXPECT_FALSE(page.next_link.has_value());
    EXPECT_FALSE(parse_rest_page(R"({"data": {}})", rest, page, error));

    rest.records_pointer = "";
    rest.next_link_pointer = "";
    ASSERT_TRUE(parse_rest_page(R"([{"vin": "A"}, {"vin": "B"}])", rest, page, error)) << error;
    EXPECT_EQ(page.records.size(), 2u);
}

TEST(ErrorBodyTest, V4ErrorObject)
{
    EXPECT_EQ(parse_error_body(400, "application/json",
                               R"({"error": {"code": "400",
                                   "message": "Property 'Foo' does not exist"}})"),
              "HTTP 400, error code \"400\": Property 'Foo' does not exist");
}

TEST(ErrorBodyTest, V4Details)
{
    EXPECT_EQ(parse_error_body(
                  400, "application/json;odata.metadata=minimal",
                  R"({"error": {"code": "MULTIPLE", "message": "Multiple errors",
                      "details": [{"code": "A", "message": "Model is too long", "target": "Model"},
                                  {"code": "B", "message": "ModelYear is invalid"}]}})"),
              "HTTP 400, error code \"MULTIPLE\": Multiple errors (details: Model is too long; "
              "ModelYear is invalid)");
}

TEST(ErrorBodyTest, V2ErrorObjectIgnoresInnerError)
{
    std::string summary = parse_error_body(
        400, "application/json",
        R"({"error": {"code": "SY/530", "message": {"lang": "en", "value": "Vehicle is locked"},
            "innererror": {"transactionid": "ABC", "errordetails": [{"message": "noise"}]}}})");
    EXPECT_EQ(summary, "HTTP 400, error code \"SY/530\": Vehicle is locked");
    EXPECT_EQ(summary.find("noise"), std::string::npos);
    EXPECT_EQ(summary.find("ABC"), std::string::npos);
}

TEST(ErrorBodyTest, BusinessOneNumericCode)
{
    EXPECT_EQ(parse_error_body(404, "application/json",
                               R"json({"error": {"code": -2028, "message": {"lang": "en-us",
                                   "value": "No matching records found (ODBC -2028)"}}})json"),
              "HTTP 404, error code \"-2028\": No matching records found (ODBC -2028)");
}

TEST(ErrorBodyTest, ErrorWithoutMessage)
{
    EXPECT_EQ(parse_error_body(500, "application/json", R"({"error": {"code": "X"}})"),
              "HTTP 500, error code \"X\" without an error message");
}

TEST(ErrorBodyTest, HtmlBodies)
{
    EXPECT_EQ(parse_error_body(502, "text/html",
                               "<html><head><TITLE>502 Bad  Gateway</TITLE></head>"
                               "<body>nginx</body></html>"),
              "HTTP 502 with an HTML body: \"502 Bad Gateway\"");
    EXPECT_EQ(parse_error_body(502, "", "<!DOCTYPE html><html><body>x</body></html>"),
              "HTTP 502 with an HTML body");
    EXPECT_EQ(parse_error_body(403, "text/html; charset=utf-8",
                               "<html><title>Tom &amp; Jerry</title></html>"),
              "HTTP 403 with an HTML body: \"Tom & Jerry\"");
}

TEST(ErrorBodyTest, EmptyBinaryAndTruncated)
{
    EXPECT_EQ(parse_error_body(503, "text/plain", ""), "HTTP 503 with an empty body");
    EXPECT_EQ(parse_error_body(503, "text/plain", " \r\n"), "HTTP 503 with an empty body");
    EXPECT_EQ(parse_error_body(500, "application/json", "{\"error\": \xC3\x28}"),
              "HTTP 500 with a body that is not valid UTF-8 (13 bytes)");
    EXPECT_EQ(parse_error_body(500, "application/json", R"({"error": {"code": "X", "mess)"),
              "HTTP 500 with a truncated JSON body (29 bytes)");
    EXPECT_EQ(parse_error_body(500, "application/json", "{\"error\" 5}"),
              "HTTP 500 with an invalid JSON body (11 bytes)");
}

TEST(ErrorBodyTest, XmlErrorDocument)
{
    EXPECT_EQ(parse_error_body(
                  400, "application/xml",
                  R"(<?xml version="1.0" encoding="utf-8"?>
<error xmlns="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">
<code>SY/530</code><message xml:lang="en">Vehicle &apos;X&apos; is locked</message>
<innererror><transactionid>1</transactionid></innererror></error>)"),
              "HTTP 400, error code \"SY/530\": Vehicle 'X' is locked");
    EXPECT_EQ(parse_error_body(400, "application/xml",
                               "<m:error><m:code>C</m:code><m:message>M</m:message></m:error>"),
              "HTTP 400, error code \"C\": M");
}

TEST(ErrorBodyTest, PlainTextAndOtherJson)
{
    EXPECT_EQ(parse_error_body(503, "text/plain", "Service Unavailable\nretry later"),
              "HTTP 503: Service Unavailable");
    EXPECT_EQ(parse_error_body(429, "application/json", R"({"status": "slow down"})"),
              "HTTP 429 with a JSON body without an OData error object: "
              "{\"status\": \"slow down\"}");
}

TEST(ErrorBodyTest, LongAndControlCharacters)
{
    std::string message(2000, 'x');
    std::string summary = parse_error_body(
        400, "application/json", R"({"error": {"code": "L", "message": ")" + message + "\"}}");
    EXPECT_LT(summary.size(), 600u);
    EXPECT_EQ(summary.substr(summary.size() - 3), "...");
    summary = parse_error_body(400, "application/json",
                               R"({"error": {"code": "C", "message": "line1\nline2\tend"}})");
    EXPECT_EQ(summary, "HTTP 400, error code \"C\": line1 line2 end");
}

TEST(ResolveNextLinkTest, AbsoluteLinkIsRebased)
{
    EXPECT_EQ(resolve("http://sapgw-internal:8000/sap/opu/odata/sap/ZVEH_SRV/"
                      "Vehicles?$skiptoken=100"),
              "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skiptoken=100");
    EXPECT_EQ(resolve("https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skip=5"),
              "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skip=5");
    EXPECT_EQ(resolve("//sapgw-internal/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skip=5"),
              "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skip=5")
        << "network-path reference";
}

TEST(ResolveNextLinkTest, AbsoluteLinkBehindProxyPrefix)
{
    const char *root = "https://proxy.example.com/erp/ZVEH_SRV/";
    const char *set = "https://proxy.example.com/erp/ZVEH_SRV/Vehicles";
    EXPECT_EQ(resolve("http://internal/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skiptoken=1", root,
                      set),
              "https://proxy.example.com/erp/ZVEH_SRV/Vehicles?$skiptoken=1");

    const char *api_root = "https://proxy.example.com/api/";
    const char *api_set = "https://proxy.example.com/api/Vehicles";
    EXPECT_EQ(resolve("http://internal:4004/odata/v4/vehicle/Vehicles?$skiptoken=7", api_root,
                      api_set),
              "https://proxy.example.com/api/Vehicles?$skiptoken=7")
        << "found by the entity set name";
}

TEST(ResolveNextLinkTest, AbsoluteLinkOutsideRoot)
{
    EXPECT_TRUE(is_error(resolve("https://evil.example.com/steal?token=1")));
    EXPECT_TRUE(is_error(resolve("ftp://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles")));
    EXPECT_TRUE(is_error(resolve("javascript:alert(1)")));
}

TEST(ResolveNextLinkTest, RelativeLinks)
{
    EXPECT_EQ(resolve("Vehicles?$skiptoken=10"),
              "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skiptoken=10");
    EXPECT_EQ(resolve("?$skiptoken=10"),
              "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skiptoken=10")
        << "query-only reference keeps the path";
    EXPECT_EQ(resolve("/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skip=20"),
              "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skip=20");
    EXPECT_EQ(resolve("./Vehicles?$skip=1#section"),
              "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skip=1")
        << "dot segment removed, fragment dropped";
    EXPECT_EQ(resolve("../ZVEH_SRV/Vehicles?$skip=1"),
              "https://gw.example.com/sap/opu/odata/sap/ZVEH_SRV/Vehicles?$skip=1");
}

TEST(ResolveNextLinkTest, RelativeToEntitySetDirectory)
{
    /* A REST resource below the root: relative links replace its last
     * segment, as RFC 3986 merges paths. */
    const char *root = "https://api.example.com/erp/";
    const char *set = "https://api.example.com/erp/v1/vehicles";
    EXPECT_EQ(resolve("vehicles?page=2", root, set),
              "https://api.example.com/erp/v1/vehicles?page=2");
    EXPECT_EQ(resolve("?page=3", root, set), "https://api.example.com/erp/v1/vehicles?page=3");
}

TEST(ResolveNextLinkTest, Rejects)
{
    EXPECT_TRUE(is_error(resolve("")));
    EXPECT_TRUE(is_error(resolve("   ")));
    EXPECT_TRUE(is_error(resolve("#only-fragment")));
    EXPECT_TRUE(is_error(resolve("../../../../etc/passwd")));
    EXPECT_TRUE(is_error(resolve("/other/service/Vehicles")));
    EXPECT_TRUE(is_error(resolve("Vehicles?$skip=1 2")));
    std::string result = resolve("/other/service/Vehicles");
    EXPECT_NE(result.find("outside the service root"), std::string::npos) << result;
}

TEST(HttpUrlTest, Components)
{
    HttpUrl url;
    std::string error;
    ASSERT_TRUE(parse_http_url("HTTPS://User@ERP.Example.com:443/a/b?x=1#f", url, error))
        << error;
    EXPECT_EQ(url.scheme, "https");
    EXPECT_EQ(url.userinfo, "User");
    EXPECT_EQ(url.host, "erp.example.com");
    EXPECT_EQ(url.port, "") << "the default port is dropped";
    EXPECT_EQ(url.path, "/a/b");
    EXPECT_EQ(url.query, std::optional<std::string>("x=1"));
    EXPECT_EQ(url.fragment, std::optional<std::string>("f"));
    EXPECT_EQ(url.origin(), "https://erp.example.com");

    ASSERT_TRUE(parse_http_url("http://[::1]:4004", url, error)) << error;
    EXPECT_EQ(url.host, "[::1]");
    EXPECT_EQ(url.port, "4004");
    EXPECT_EQ(url.path, "/");

    EXPECT_FALSE(parse_http_url("http://host:0/", url, error));
    EXPECT_FALSE(parse_http_url("http://host:abc/", url, error));
    EXPECT_FALSE(parse_http_url("http:/host/", url, error));
    EXPECT_FALSE(parse_http_url("http://h\xC3\xB6st/", url, error));
}

TEST(BuildQueryTest, V4FirstRun)
{
    ConnectorProfile profile = load(v4_profile());
    PageRequest request;
    std::string error;
    ASSERT_TRUE(build_query(profile, Watermark(), request, error)) << error;
    EXPECT_EQ(request.url, "http://127.0.0.1:4004/odata/v4/vehicle/Vehicles"
                           "?$select=VIN,modifiedAt,Model"
                           "&$orderby=modifiedAt%20asc,VIN%20asc&$top=500&$count=true");
    EXPECT_EQ(request.prefer, "odata.maxpagesize=500");
}

TEST(BuildQueryTest, V4OverlapWindow)
{
    ConnectorProfile profile = load(v4_profile());
    Watermark watermark;
    watermark.modified_micros = kWatermark;
    watermark.key = "1FA6P8TH0PF281624";
    std::string url = first_url(profile, watermark);
    EXPECT_NE(url.find("&$filter=modifiedAt%20ge%202024-01-01T00:00:00Z&"), std::string::npos)
        << url;
    EXPECT_EQ(url.find("VIN%20gt"), std::string::npos) << "the key is not needed with overlap";
}

TEST(BuildQueryTest, V4ContinuationUsesKey)
{
    ConnectorProfile profile = load(v4_profile());
    Watermark watermark;
    watermark.modified_micros = kWatermark + 500000;
    watermark.key = "O'BRIEN 1";
    watermark.continuation = true;
    std::string url = first_url(profile, watermark);
    EXPECT_NE(url.find("$filter=modifiedAt%20gt%202024-01-01T00:01:00.5Z%20or%20"
                       "(modifiedAt%20eq%202024-01-01T00:01:00.5Z%20and%20"
                       "VIN%20gt%20'O''BRIEN%201')"),
              std::string::npos)
        << url;
}

TEST(BuildQueryTest, ZeroOverlapUsesKey)
{
    json document = v4_profile();
    document["delta"]["overlap_seconds"] = 0;
    ConnectorProfile profile = load(document);
    Watermark watermark;
    watermark.modified_micros = kWatermark;
    watermark.key = "K";
    std::string url = first_url(profile, watermark);
    EXPECT_NE(url.find("modifiedAt%20gt%202024-01-01T00:01:00Z%20or%20(modifiedAt%20eq%20"
                       "2024-01-01T00:01:00Z%20and%20VIN%20gt%20'K')"),
              std::string::npos)
        << url;
    watermark.key.clear();
    url = first_url(profile, watermark);
    EXPECT_NE(url.find("$filter=modifiedAt%20gt%202024-01-01T00:01:00Z&"), std::string::npos)
        << url;
}

TEST(BuildQueryTest, NoDeltaContinuesAfterKey)
{
    json document = v4_profile();
    document["delta"] = {{"mode", "none"}};
    ConnectorProfile profile = load(document);
    std::string url = first_url(profile, Watermark());
    EXPECT_EQ(url, "http://127.0.0.1:4004/odata/v4/vehicle/Vehicles?$select=VIN,Model"
                   "&$orderby=VIN%20asc&$top=500&$count=true");
    Watermark watermark;
    watermark.key = "WBA'5";
    watermark.continuation = true;
    url = first_url(profile, watermark);
    EXPECT_NE(url.find("&$filter=VIN%20gt%20'WBA''5'&$orderby=VIN%20asc&"), std::string::npos)
        << url;
}

TEST(BuildQueryTest, V2Literals)
{
    json document = v4_profile();
    document["kind"] = "odata_v2";
    ConnectorProfile profile = load(document);
    Watermark watermark;
    watermark.modified_micros = kWatermark;
    std::string url = first_url(profile, watermark);
    EXPECT_NE(url.find("$filter=modifiedAt%20ge%20datetimeoffset'2024-01-01T00:00:00Z'"),
              std::string::npos)
        << url;
    EXPECT_NE(url.find("&$inlinecount=allpages"), std::string::npos) << url;
    EXPECT_EQ(url.find("$count"), std::string::npos) << url;

    document["delta"]["literal"] = "datetime";
    url = first_url(load(document), watermark);
    EXPECT_NE(url.find("modifiedAt%20ge%20datetime'2024-01-01T00:00:00'"), std::string::npos)
        << url;
}

TEST(BuildQueryTest, BusinessOneDateString)
{
    json document = v4_profile();
    document["kind"] = "sap_b1_service_layer";
    document["key_property"] = "Code";
    document["delta"] = {{"property", "UpdateDate"}, {"literal", "date_string"},
                         {"overlap_seconds", 86400}};
    document["mapping"]["vin"] = "Code";
    ConnectorProfile profile = load(document);
    Watermark watermark;
    watermark.modified_micros = kWatermark;
    watermark.key = "K";
    PageRequest request;
    std::string error;
    ASSERT_TRUE(build_query(profile, watermark, request, error)) << error;
    EXPECT_NE(request.url.find("$filter=UpdateDate%20ge%20'2023-12-31'&"), std::string::npos)
        << request.url;
    EXPECT_NE(request.url.find("$top=20"), std::string::npos) << request.url;
    EXPECT_EQ(request.url.find("count"), std::string::npos) << request.url;
    EXPECT_EQ(request.prefer, "odata.maxpagesize=20");

    watermark.continuation = true;
    std::string url = first_url(profile, watermark);
    EXPECT_NE(url.find("UpdateDate%20gt%20'2024-01-01'%20or%20(UpdateDate%20eq%20'2024-01-01'"
                       "%20and%20Code%20gt%20'K')"),
              std::string::npos)
        << url;
}

TEST(BuildQueryTest, CustomQueryOptionsAreEncoded)
{
    json document = v4_profile();
    document["query"] = {{"sap-client", "100"}, {"x-note", "a&b=c d+e/M\xC3\xBCller"}};
    std::string url = first_url(load(document), Watermark());
    EXPECT_NE(url.find("&sap-client=100"), std::string::npos) << url;
    EXPECT_NE(url.find("&x-note=a%26b%3Dc%20d%2Be/M%C3%BCller"), std::string::npos) << url;
}

TEST(BuildQueryTest, ExplicitEmptySelect)
{
    json document = v4_profile();
    document["select"] = json::array();
    std::string url = first_url(load(document), Watermark());
    EXPECT_EQ(url.find("$select"), std::string::npos) << url;
    EXPECT_NE(url.find("?$orderby="), std::string::npos) << url;
}

TEST(BuildQueryTest, DeltaLinkMode)
{
    json document = v4_profile();
    document["delta"] = {{"mode", "delta_link"}};
    ConnectorProfile profile = load(document);
    PageRequest request;
    std::string error;
    ASSERT_TRUE(build_query(profile, Watermark(), request, error)) << error;
    EXPECT_EQ(request.prefer, "odata.track-changes, odata.maxpagesize=500");
    EXPECT_EQ(request.url.find("$filter"), std::string::npos) << request.url;
    EXPECT_EQ(request.url.find("$top"), std::string::npos) << request.url;

    Watermark watermark;
    watermark.delta_link = "Vehicles?$deltatoken=abc";
    ASSERT_TRUE(build_query(profile, watermark, request, error)) << error;
    EXPECT_EQ(request.url, "http://127.0.0.1:4004/odata/v4/vehicle/Vehicles?$deltatoken=abc");
    EXPECT_EQ(request.prefer, "odata.maxpagesize=500");
}

TEST(BuildQueryTest, RestJson)
{
    json document = v4_profile();
    document["kind"] = "rest_json";
    document["entity_set"] = "api/vehicles";
    document["rest"] = {{"records_pointer", "/items"},
                        {"page_size_param", "limit"},
                        {"modified_since_param", "updated_since"}};
    document["page_size"] = 200;
    ConnectorProfile profile = load(document);
    Watermark watermark;
    watermark.modified_micros = kWatermark;
    PageRequest request;
    std::string error;
    ASSERT_TRUE(build_query(profile, watermark, request, error)) << error;
    EXPECT_EQ(request.url, "http://127.0.0.1:4004/odata/v4/vehicle/api/vehicles"
                           "?limit=200&updated_since=2024-01-01T00:00:00Z");
    EXPECT_EQ(request.prefer, "");
}

TEST(BuildQueryTest, CsvHasNoQuery)
{
    json document = {{"format_version", 1}, {"kind", "csv"}, {"mapping", {{"vin", "VIN"}}}};
    std::string url = first_url(load(document), Watermark());
    EXPECT_TRUE(is_error(url)) << url;
}

TEST(LiteralTest, DeltaLiterals)
{
    const int64_t micros = 1704067200LL * 1000000 + 123450;
    EXPECT_EQ(format_delta_literal(micros, DeltaLiteral::DateTimeOffset, ODataVersion::V4),
              "2024-01-01T00:00:00.12345Z");
    EXPECT_EQ(format_delta_literal(micros, DeltaLiteral::DateTimeOffset, ODataVersion::V2),
              "datetimeoffset'2024-01-01T00:00:00.12345Z'");
    EXPECT_EQ(format_delta_literal(micros, DeltaLiteral::DateTime, ODataVersion::V2),
              "datetime'2024-01-01T00:00:00.12345'");
    EXPECT_EQ(format_delta_literal(micros, DeltaLiteral::Date, ODataVersion::V4), "2024-01-01");
    EXPECT_EQ(format_delta_literal(micros, DeltaLiteral::Date, ODataVersion::V2),
              "datetime'2024-01-01T00:00:00'");
    EXPECT_EQ(format_delta_literal(micros, DeltaLiteral::DateString, ODataVersion::V4),
              "'2024-01-01'");
}

TEST(LiteralTest, StringsAndEncoding)
{
    EXPECT_EQ(odata_string_literal("O'Brien"), "'O''Brien'");
    EXPECT_EQ(odata_string_literal("''"), "''''''");
    EXPECT_EQ(odata_string_literal(""), "''");
    EXPECT_EQ(percent_encode_query("a b+c&d=e#f%g"), "a%20b%2Bc%26d%3De%23f%25g");
    EXPECT_EQ(percent_encode_query("$select=x,y:'z'(1)/@?"), "$select%3Dx,y:'z'(1)/@?");
    EXPECT_EQ(percent_encode_query("\xC3\xA9"), "%C3%A9");
}

TEST(WriteUrlTest, ExpandsKey)
{
    json document = v4_profile();
    document["write_back"] = {
        {"method", "PATCH"}, {"url", "Vehicles('{key}')"}, {"fields", {"model_code"}}};
    ConnectorProfile profile = load(document);
    std::string url;
    std::string error;
    ASSERT_TRUE(expand_write_url(profile, "1FA6P8TH0PF281624", url, error)) << error;
    EXPECT_EQ(url, "http://127.0.0.1:4004/odata/v4/vehicle/Vehicles('1FA6P8TH0PF281624')");
    ASSERT_TRUE(expand_write_url(profile, "A'B/C D", url, error)) << error;
    EXPECT_EQ(url, "http://127.0.0.1:4004/odata/v4/vehicle/Vehicles('A''B%2FC%20D')");
    EXPECT_FALSE(expand_write_url(profile, "", url, error));

    ConnectorProfile read_only = load(v4_profile());
    EXPECT_FALSE(expand_write_url(read_only, "X", url, error));
}

}  // namespace
}  // namespace stocktech
