/*
 * profile_test.cpp
 *    Unit tests of connector profile validation (src/core/profile.cpp):
 *    the shipped profiles in connectors/, defaults, and the rejection of
 *    unknown keys, bad URLs, embedded secrets, bad value maps and duplicate
 *    mapping entries.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "core/fields.hpp"
#include "core/profile.hpp"

namespace stocktech {
namespace {

using nlohmann::json;

/* The repository root, found from this file's path (CMake compiles with
 * absolute paths). */
std::string
repository_root()
{
    std::string path = __FILE__;
    size_t pos = path.rfind("test/unit/");
    return pos == std::string::npos ? "./" : path.substr(0, pos);
}

std::string
read_connector(const std::string &name)
{
    std::ifstream file(repository_root() + "connectors/" + name);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

/* A minimal valid odata_v4 profile that tests modify. */
json
base_profile()
{
    return json::parse(R"({
        "format_version": 1,
        "kind": "odata_v4",
        "service_root": "https://erp.example.com/odata/v4/vehicle",
        "entity_set": "Vehicles",
        "key_property": "VIN",
        "delta": {"property": "modifiedAt"},
        "mapping": {
            "vin": {"from": "VIN", "transform": ["trim", "upper"]},
            "model_code": "Model",
            "commercial_status": {
                "from": "SalesStatus",
                "value_map": {"A0": "available", "S2": "sold"}
            }
        }
    })");
}

std::vector<ProfileError>
errors_of(const json &document)
{
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    validate_profile(document, profile, errors);
    return errors;
}

std::vector<ProfileError>
errors_of_text(const std::string &text)
{
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    parse_profile(text, profile, errors);
    return errors;
}

/* The message of the first error whose message contains needle, or "". */
std::string
find_message(const std::vector<ProfileError> &errors, const std::string &needle)
{
    for (const ProfileError &error : errors)
    {
        if (error.message.find(needle) != std::string::npos)
            return error.message;
    }
    return "";
}

bool
has_path(const std::vector<ProfileError> &errors, const std::string &path)
{
    for (const ProfileError &error : errors)
    {
        if (error.path == path)
            return true;
    }
    return false;
}

TEST(ProfileTest, BaseProfileIsValid)
{
    std::vector<ProfileError> errors = errors_of(base_profile());
    EXPECT_TRUE(errors.empty()) << format_profile_errors(errors);
}

class ShippedProfileTest : public ::testing::TestWithParam<const char *>
{
};

TEST_P(ShippedProfileTest, Validates)
{
    std::string text = read_connector(GetParam());
    ASSERT_FALSE(text.empty()) << "cannot read connectors/" << GetParam();
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    EXPECT_TRUE(parse_profile(text, profile, errors)) << format_profile_errors(errors);
    EXPECT_TRUE(errors.empty()) << format_profile_errors(errors);
    ASSERT_FALSE(profile.mapping.empty());
    EXPECT_EQ(profile.mapping.front().column, "vin");
}

INSTANTIATE_TEST_SUITE_P(Connectors, ShippedProfileTest,
                         ::testing::Values("s4hana_odata_v4.json", "sap_gateway_odata_v2.json",
                                           "sap_b1_service_layer.json", "generic_csv.json"));

TEST(ProfileTest, S4ProfileContents)
{
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    ASSERT_TRUE(parse_profile(read_connector("s4hana_odata_v4.json"), profile, errors))
        << format_profile_errors(errors);
    EXPECT_EQ(profile.kind, ConnectorKind::ODataV4);
    EXPECT_EQ(profile.service_root.back(), '/');
    EXPECT_EQ(profile.key_property, "VIN");
    EXPECT_EQ(profile.delta.mode, DeltaMode::ModifiedSince);
    EXPECT_EQ(profile.delta.property, "modifiedAt");
    EXPECT_EQ(profile.auth.type, AuthType::OAuth2ClientCredentials);
    EXPECT_EQ(profile.auth.client_secret_secret, "s4_client_secret");
    EXPECT_TRUE(profile.write_back.enabled);
    EXPECT_EQ(profile.write_back.method, WriteMethod::Patch);
    EXPECT_EQ(profile.write_back.url_template.rfind(profile.service_root, 0), 0u)
        << "relative write-back URL resolved against service_root";
    ASSERT_EQ(profile.query.size(), 1u);
    EXPECT_EQ(profile.query[0].first, "sap-client");
    /* Mapping order: vin, then catalog order. */
    ASSERT_GE(profile.mapping.size(), 3u);
    EXPECT_EQ(profile.mapping[1].column, "model_code");
    EXPECT_EQ(profile.mapping[2].column, "model_year");
}

TEST(ProfileTest, DerivedSelect)
{
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    ASSERT_TRUE(validate_profile(base_profile(), profile, errors))
        << format_profile_errors(errors);
    std::vector<std::string> expected = {"VIN", "modifiedAt", "Model", "SalesStatus"};
    EXPECT_EQ(profile.select, expected);
}

TEST(ProfileTest, Defaults)
{
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    ASSERT_TRUE(validate_profile(base_profile(), profile, errors));
    EXPECT_EQ(profile.page_size, 500);
    EXPECT_EQ(profile.max_pages, 1000);
    EXPECT_EQ(profile.poll_interval_seconds, 300);
    EXPECT_EQ(profile.delta.overlap_seconds, 60);
    EXPECT_EQ(profile.etag, EtagMode::IfPresent);
    EXPECT_EQ(profile.auth.type, AuthType::None);
    EXPECT_FALSE(profile.write_back.enabled);

    json b1 = base_profile();
    b1["kind"] = "sap_b1_service_layer";
    ASSERT_TRUE(validate_profile(b1, profile, errors)) << format_profile_errors(errors);
    EXPECT_EQ(profile.page_size, 20) << "Service Layer pages hold 20 entities by default";
}

TEST(ProfileTest, UnknownTopLevelKeyWithSuggestion)
{
    json document = base_profile();
    document["pagesize"] = 100;
    std::vector<ProfileError> errors = errors_of(document);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].path, "pagesize");
    EXPECT_EQ(errors[0].message,
              "unknown key \"pagesize\" in profile; did you mean \"page_size\"?");
}

TEST(ProfileTest, UnknownKeyWithoutSuggestion)
{
    json document = base_profile();
    document["colour_of_the_sky"] = "blue";
    std::vector<ProfileError> errors = errors_of(document);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message, "unknown key \"colour_of_the_sky\" in profile");
}

TEST(ProfileTest, UnknownNestedKeys)
{
    json document = base_profile();
    document["delta"]["overlap"] = 30;
    document["mapping"]["model_code"] = {{"form", "Model"}};
    document["auth"] = {{"type", "basic"}, {"user", "x"}, {"password_secret", "p"}};
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_EQ(find_message(errors, "\"overlap\""),
              "unknown key \"overlap\" in delta; did you mean \"overlap_seconds\"?");
    EXPECT_EQ(find_message(errors, "\"form\""),
              "unknown key \"form\" in mapping.model_code; did you mean \"from\"?");
    EXPECT_TRUE(has_path(errors, "mapping.model_code.form"));
    EXPECT_TRUE(has_path(errors, "auth.user"));
    EXPECT_NE(find_message(errors, "missing key \"username\" in auth"), "");
}

TEST(ProfileTest, KeyOfAnotherKind)
{
    json document = base_profile();
    document["kind"] = "csv";
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_EQ(find_message(errors, "service_root"),
              "key \"service_root\" does not apply to kind \"csv\"");
    EXPECT_TRUE(has_path(errors, "entity_set"));
    EXPECT_TRUE(has_path(errors, "delta"));

    json http = base_profile();
    http["csv"] = json::object();
    EXPECT_EQ(find_message(errors_of(http), "\"csv\""),
              "key \"csv\" does not apply to kind \"odata_v4\"");
}

TEST(ProfileTest, MissingEndpointForHttpKinds)
{
    for (const char *kind : {"odata_v4", "odata_v2", "sap_b1_service_layer"})
    {
        json document = base_profile();
        document["kind"] = kind;
        document.erase("service_root");
        document.erase("entity_set");
        std::vector<ProfileError> errors = errors_of(document);
        EXPECT_EQ(find_message(errors, "service_root"),
                  "missing key \"service_root\" in profile")
            << kind;
        EXPECT_EQ(find_message(errors, "entity_set"), "missing key \"entity_set\" in profile")
            << kind;
    }
}

TEST(ProfileTest, RejectsNonHttpUrls)
{
    for (const char *url : {"ftp://erp.example.com/odata/", "file:///etc/passwd",
                            "erp.example.com/odata", "https://", "javascript:alert(1)",
                            "https://erp.example.com:99999/", "https://erp example.com/"})
    {
        json document = base_profile();
        document["service_root"] = url;
        std::vector<ProfileError> errors = errors_of(document);
        EXPECT_TRUE(has_path(errors, "service_root")) << url;
        EXPECT_NE(find_message(errors, "invalid service_root"), "") << url;
    }
}

TEST(ProfileTest, RejectsCredentialsQueryAndFragmentInUrl)
{
    json document = base_profile();
    document["service_root"] = "https://user:secret@erp.example.com/odata/";
    EXPECT_NE(find_message(errors_of(document), "must not contain a user name"), "");

    document["service_root"] = "https://erp.example.com/odata/?sap-client=100";
    EXPECT_NE(find_message(errors_of(document), "must not contain a query"), "");

    document["service_root"] = "https://erp.example.com/odata/#top";
    EXPECT_NE(find_message(errors_of(document), "fragment"), "");
}

TEST(ProfileTest, AcceptsHttpAndNormalisesRoot)
{
    json document = base_profile();
    document["service_root"] = "HTTP://127.0.0.1:4004/odata/v4/vehicle";
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    EXPECT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    EXPECT_EQ(profile.service_root, "HTTP://127.0.0.1:4004/odata/v4/vehicle/");
}

TEST(ProfileTest, MappingToUngovernedColumn)
{
    json document = base_profile();
    document["mapping"]["colour_code"] = "ColorCode";
    document["mapping"]["price"] = "ListPrice";
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_EQ(find_message(errors, "colour_code"),
              "unknown column \"colour_code\" in mapping: only \"vin\" and the governed "
              "columns can be mapped; did you mean \"color_code\"?");
    EXPECT_TRUE(has_path(errors, "mapping.price"));
}

TEST(ProfileTest, MappingMustContainVin)
{
    json document = base_profile();
    document["mapping"].erase("vin");
    std::vector<ProfileError> errors = errors_of(document);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].path, "mapping.vin");
    EXPECT_NE(errors[0].message.find("mapping must contain \"vin\""), std::string::npos);
}

TEST(ProfileTest, ValueMapOutsideEnumeration)
{
    json document = base_profile();
    document["mapping"]["commercial_status"]["value_map"]["Z9"] = "sold_out";
    std::vector<ProfileError> errors = errors_of(document);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].path, "mapping.commercial_status.value_map");
    EXPECT_NE(errors[0].message.find("maps \"Z9\" to \"sold_out\""), std::string::npos)
        << errors[0].message;
    EXPECT_NE(errors[0].message.find("available, reserved, sold"), std::string::npos)
        << errors[0].message;
}

TEST(ProfileTest, ValueMapChecksColumnType)
{
    json document = base_profile();
    document["mapping"]["model_year"] = {{"from", "ModelYear"},
                                         {"value_map", {{"X", "next year"}}}};
    document["mapping"]["vitw_in_transit"] = {{"from", "InTransit"},
                                              {"value_map", {{"Y", true}, {"N", "maybe"}}}};
    document["mapping"]["arrival_date"] = {{"from", "ArrivalDate"},
                                           {"value_map", {{"9999", "2024-02-30"}}}};
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_TRUE(has_path(errors, "mapping.model_year.value_map"));
    EXPECT_NE(find_message(errors, "\"N\" to \"maybe\""), "");
    EXPECT_TRUE(has_path(errors, "mapping.arrival_date.value_map"));
    EXPECT_EQ(errors.size(), 3u) << format_profile_errors(errors);
}

TEST(ProfileTest, ValueMapToNullAndParsedTargets)
{
    json document = base_profile();
    document["mapping"]["commercial_status"]["value_map"][""] = nullptr;
    document["mapping"]["list_price"] = {{"from", "ListPrice"},
                                         {"decimal_separator", ","},
                                         {"value_map", {{"n/a", "0,00"}}}};
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    ASSERT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    const FieldMapping *status = profile.find_mapping("commercial_status");
    ASSERT_NE(status, nullptr);
    ASSERT_EQ(status->value_map.count(""), 1u);
    EXPECT_FALSE(status->value_map.at("").has_value());
    const FieldMapping *price = profile.find_mapping("list_price");
    ASSERT_NE(price, nullptr);
    EXPECT_EQ(price->decimal_separator, ',');
    EXPECT_EQ(price->value_map.at("n/a"), std::optional<std::string>("0.00"));
}

TEST(ProfileTest, DuplicateMappingEntries)
{
    std::string text = base_profile().dump();
    /* Add a second "model_code" entry by text: a parsed json object cannot
     * hold two equal keys. */
    size_t pos = text.find("\"model_code\"");
    ASSERT_NE(pos, std::string::npos);
    text.insert(pos, "\"model_code\":\"ModelName\",");
    std::vector<ProfileError> errors = errors_of_text(text);
    ASSERT_EQ(errors.size(), 1u) << format_profile_errors(errors);
    EXPECT_EQ(errors[0].path, "mapping.model_code");
    EXPECT_EQ(errors[0].message, "column \"model_code\" is mapped twice in mapping; each "
                                 "column can be read from one source only");
}

TEST(ProfileTest, DuplicateKeysElsewhere)
{
    std::string text = R"({"format_version": 1, "kind": "csv", "kind": "csv",
                           "csv": {"header": true, "header": false},
                           "mapping": {"vin": "VIN"}})";
    std::vector<ProfileError> errors = errors_of_text(text);
    EXPECT_EQ(find_message(errors, "\"kind\""), "duplicate key \"kind\" in profile");
    EXPECT_EQ(find_message(errors, "\"header\""), "duplicate key \"header\" in csv");
}

TEST(ProfileTest, InvalidJsonText)
{
    std::vector<ProfileError> errors = errors_of_text("{\"format_version\": 1,");
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].message.rfind("invalid profile: ", 0), 0u) << errors[0].message;
}

TEST(ProfileTest, AuthWithEmbeddedSecret)
{
    json document = base_profile();
    document["auth"] = {{"type", "basic"}, {"username", "SYNC"}, {"password", "hunter2"}};
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_EQ(find_message(errors, "auth.password must"),
              "auth.password must not contain a secret; store it in the secrets table and set "
              "auth.password_secret to its name");
    EXPECT_NE(find_message(errors, "missing key \"password_secret\""), "");

    document["auth"] = {{"type", "oauth2_client_credentials"},
                        {"token_url", "https://erp.example.com/oauth/token"},
                        {"client_id", "sync"},
                        {"client_secret", "s3cr3t"}};
    errors = errors_of(document);
    EXPECT_NE(find_message(errors, "auth.client_secret_secret to its name"), "");

    document["auth"] = {{"type", "bearer"}, {"token", "eyJhbGciOiJIUzI1NiJ9.e30.x"}};
    EXPECT_TRUE(has_path(errors_of(document), "auth.token"));
}

TEST(ProfileTest, SecretReferenceMustBeAName)
{
    json document = base_profile();
    document["auth"] = {{"type", "basic"},
                        {"username", "SYNC"},
                        {"password_secret", "Pa$$w0rd with spaces!"}};
    std::vector<ProfileError> errors = errors_of(document);
    ASSERT_EQ(errors.size(), 1u) << format_profile_errors(errors);
    EXPECT_EQ(errors[0].path, "auth.password_secret");
    EXPECT_NE(errors[0].message.find("not the secret itself"), std::string::npos);

    document["auth"]["password_secret"] = "erp_password";
    EXPECT_TRUE(errors_of(document).empty());
}

TEST(ProfileTest, SessionLoginForBusinessOne)
{
    json document = base_profile();
    document["kind"] = "sap_b1_service_layer";
    document["auth"] = {{"type", "session_login"},
                        {"username", "manager"},
                        {"password_secret", "b1_password"}};
    EXPECT_NE(find_message(errors_of(document), "missing key \"company_db\" in auth"), "");

    document["auth"]["company_db"] = "SBODEMOUS";
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    ASSERT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    EXPECT_EQ(profile.auth.login_url, "https://erp.example.com/odata/v4/vehicle/Login");
}

TEST(ProfileTest, FormatVersionAndKind)
{
    json document = base_profile();
    document.erase("format_version");
    EXPECT_TRUE(has_path(errors_of(document), "format_version"));
    document["format_version"] = 2;
    EXPECT_NE(find_message(errors_of(document), "format_version 2 is not supported"), "");
    document["format_version"] = 1;
    document["kind"] = "odata_v3";
    EXPECT_NE(find_message(errors_of(document), "invalid kind \"odata_v3\""), "");
    EXPECT_FALSE(errors_of(json::array()).empty());
}

TEST(ProfileTest, NumericRanges)
{
    json document = base_profile();
    document["page_size"] = 0;
    document["max_pages"] = "10";
    document["poll_interval_seconds"] = 1;
    document["delta"]["overlap_seconds"] = -5;
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_TRUE(has_path(errors, "page_size"));
    EXPECT_TRUE(has_path(errors, "max_pages"));
    EXPECT_TRUE(has_path(errors, "poll_interval_seconds"));
    EXPECT_TRUE(has_path(errors, "delta.overlap_seconds"));
    EXPECT_EQ(errors.size(), 4u) << format_profile_errors(errors);
}

TEST(ProfileTest, QueryOptions)
{
    json document = base_profile();
    document["query"] = {{"sap-client", "100"}, {"$format", "json"}, {"sap-language", 1}};
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_TRUE(has_path(errors, "query.$format"));
    EXPECT_TRUE(has_path(errors, "query.sap-language"));
    EXPECT_EQ(errors.size(), 2u) << format_profile_errors(errors);
}

TEST(ProfileTest, DeltaOptions)
{
    json document = base_profile();
    document["delta"] = {{"property", "modifiedAt"}, {"literal", "datetime"}};
    EXPECT_NE(find_message(errors_of(document), "exists only in OData V2"), "");
    document["kind"] = "odata_v2";
    EXPECT_TRUE(errors_of(document).empty());

    document["delta"] = {{"mode", "delta_link"}, {"property", "modifiedAt"}};
    EXPECT_TRUE(has_path(errors_of(document), "delta.property"));
    document["delta"] = {{"mode", "delta_link"}};
    EXPECT_TRUE(errors_of(document).empty());
    document["kind"] = "sap_b1_service_layer";
    EXPECT_TRUE(has_path(errors_of(document), "delta.mode"));

    document["delta"] = {{"overlap_seconds", 10}};
    EXPECT_NE(find_message(errors_of(document), "missing key \"property\" in delta"), "");
}

TEST(ProfileTest, ExplicitSelectMustCoverMapping)
{
    json document = base_profile();
    document["select"] = {"VIN", "modifiedAt", "SalesStatus"};
    std::vector<ProfileError> errors = errors_of(document);
    ASSERT_EQ(errors.size(), 1u) << format_profile_errors(errors);
    EXPECT_EQ(errors[0].message, "select does not contain \"Model\", which mapping.model_code "
                                 "reads; add it or omit select");

    document["select"] = json::array();
    ConnectorProfile profile;
    ASSERT_TRUE(validate_profile(document, profile, errors));
    EXPECT_TRUE(profile.select.empty()) << "[] sends no $select";
}

TEST(ProfileTest, ParsingOptionsOnlyWhereTheyApply)
{
    json document = base_profile();
    document["mapping"]["model_code"] = {{"from", "Model"}, {"decimal_separator", ","}};
    document["mapping"]["vin"]["default"] = "WP0ZZZ99ZTS392124";
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_EQ(find_message(errors, "decimal_separator"),
              "key \"decimal_separator\" does not apply to mapping.model_code, whose type is "
              "text");
    EXPECT_TRUE(has_path(errors, "mapping.vin.default"));
}

TEST(ProfileTest, DefaultsAreCheckedAndCanonical)
{
    json document = base_profile();
    document["mapping"]["commercial_status"]["default"] = "sold";
    document["mapping"]["arrival_date"] = {
        {"from", "ArrivalDate"}, {"date_format", "DD.MM.YYYY"}, {"default", "01.02.2024"}};
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    ASSERT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    EXPECT_EQ(profile.find_mapping("arrival_date")->default_value,
              std::optional<std::string>("2024-02-01"));

    document["mapping"]["commercial_status"]["default"] = "gone";
    EXPECT_TRUE(has_path(errors_of(document), "mapping.commercial_status.default"));
}

TEST(ProfileTest, CsvSettings)
{
    json document = {{"format_version", 1},
                     {"kind", "csv"},
                     {"csv",
                      {{"delimiter", ";"},
                       {"encoding", "WIN1252"},
                       {"decimal_separator", ","},
                       {"date_format", "DD.MM.YYYY"}}},
                     {"mapping", {{"vin", "Fahrgestellnummer"}, {"list_price", "Preis"}}}};
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    ASSERT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    EXPECT_EQ(profile.csv.delimiter, ';');
    EXPECT_EQ(profile.csv.encoding, TextEncoding::Win1252);
    EXPECT_EQ(profile.find_mapping("list_price")->decimal_separator, ',')
        << "entries inherit the csv decimal separator";

    document["csv"]["delimiter"] = "|";
    document["csv"]["encoding"] = "UTF-16";
    document["csv"]["date_format"] = "D.M.Y";
    errors = errors_of(document);
    EXPECT_TRUE(has_path(errors, "csv.delimiter"));
    EXPECT_TRUE(has_path(errors, "csv.encoding"));
    EXPECT_TRUE(has_path(errors, "csv.date_format"));
}

TEST(ProfileTest, CsvWithoutHeaderUsesColumnNumbers)
{
    json document = {{"format_version", 1},
                     {"kind", "csv"},
                     {"csv", {{"header", false}}},
                     {"mapping", {{"vin", {{"from", 1}}}, {"model_code", {{"from", 3}}}}}};
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    ASSERT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    EXPECT_EQ(profile.find_mapping("model_code")->source, "3");

    document["mapping"]["model_code"] = {{"from", "Model"}};
    EXPECT_TRUE(has_path(errors_of(document), "mapping.model_code.from"));
}

TEST(ProfileTest, WriteBackChecks)
{
    json document = base_profile();
    document["write_back"] = {{"method", "MERGE"},
                              {"url", "https://other.example.com/Vehicles('{key}')"},
                              {"fields", {"commercial_status", "pdi_status", "vin"}}};
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_NE(find_message(errors, "\"MERGE\" exists only in OData V2"), "");
    EXPECT_NE(find_message(errors, "must be on the host of service_root"), "");
    EXPECT_NE(find_message(errors, "\"pdi_status\", which is not a mapped"), "");
    EXPECT_NE(find_message(errors, "\"vin\", which is not a mapped"), "");

    document["write_back"] = {{"method", "PATCH"}, {"url", "Vehicles"}, {"fields", json::array()}};
    errors = errors_of(document);
    EXPECT_NE(find_message(errors, "must contain \"{key}\""), "");
    EXPECT_TRUE(has_path(errors, "write_back.fields"));
}

TEST(ProfileTest, WriteBackNeedsReversibleValueMap)
{
    json document = base_profile();
    document["mapping"]["commercial_status"]["value_map"]["S3"] = "sold";
    document["write_back"] = {
        {"method", "PATCH"}, {"url", "Vehicles('{key}')"}, {"fields", {"commercial_status"}}};
    std::vector<ProfileError> errors = errors_of(document);
    ASSERT_EQ(errors.size(), 1u) << format_profile_errors(errors);
    EXPECT_EQ(errors[0].path, "mapping.commercial_status.reverse_value_map");

    document["mapping"]["commercial_status"]["reverse_value_map"] = {{"sold", "S2"}};
    ConnectorProfile profile;
    ASSERT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    EXPECT_EQ(profile.write_back.csrf.fetch, true) << "OData kinds fetch a CSRF token by default";
    EXPECT_EQ(profile.find_mapping("commercial_status")->reverse_value_map.at("sold"), "S2");
}

TEST(ProfileTest, RestJsonNeedsRestSection)
{
    json document = base_profile();
    document["kind"] = "rest_json";
    std::vector<ProfileError> errors = errors_of(document);
    EXPECT_TRUE(has_path(errors, "rest"));

    document["rest"] = {{"records_pointer", "items"}, {"modified_since_param", "since"}};
    errors = errors_of(document);
    EXPECT_TRUE(has_path(errors, "rest.records_pointer"));
    document["rest"]["records_pointer"] = "/items";
    EXPECT_TRUE(errors_of(document).empty()) << format_profile_errors(errors_of(document));

    document["select"] = {"VIN"};
    EXPECT_EQ(find_message(errors_of(document), "select"),
              "key \"select\" does not apply to kind \"rest_json\"");
}

TEST(ProfileTest, MessagesAreLowercaseWithoutFinalPeriod)
{
    json document = base_profile();
    document["pagesize"] = 1;
    document["service_root"] = "ftp://x";
    document["mapping"]["colour"] = "C";
    document["mapping"]["commercial_status"]["value_map"]["Q"] = "nope";
    document["auth"] = {{"type", "basic"}, {"password", "x"}};
    document["etag"] = "sometimes";
    std::vector<ProfileError> errors = errors_of(document);
    ASSERT_GE(errors.size(), 6u) << format_profile_errors(errors);
    for (const ProfileError &error : errors)
    {
        ASSERT_FALSE(error.message.empty());
        EXPECT_FALSE(std::isupper(static_cast<unsigned char>(error.message[0])))
            << error.message;
        EXPECT_NE(error.message.back(), '.') << error.message;
    }
}

TEST(ProfileSchemaTest, MatchesValidator)
{
    std::string text = read_connector("profile.schema.json");
    ASSERT_FALSE(text.empty());
    json schema = json::parse(text, nullptr, false);
    ASSERT_FALSE(schema.is_discarded());
    EXPECT_EQ(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");

    /* Every top-level key of the schema is known to the validator. */
    for (auto it = schema["properties"].begin(); it != schema["properties"].end(); ++it)
    {
        json document = base_profile();
        if (!document.contains(it.key()))
            document[it.key()] = nullptr;
        for (const ProfileError &error : errors_of(document))
            EXPECT_EQ(error.message.find("unknown key"), std::string::npos) << error.message;
    }

    /* The schema's mapping keys are "vin" and the governed columns. */
    std::vector<std::string> schema_columns;
    for (auto it = schema["$defs"]["mapping"]["properties"].begin();
         it != schema["$defs"]["mapping"]["properties"].end(); ++it)
        schema_columns.push_back(it.key());
    std::vector<std::string> columns = {"vin"};
    for (const FieldSpec &spec : governed_fields())
        columns.push_back(std::string(spec.name));
    std::sort(schema_columns.begin(), schema_columns.end());
    std::sort(columns.begin(), columns.end());
    EXPECT_EQ(schema_columns, columns);
}

TEST(ProfileTest, EnumSpellings)
{
    EXPECT_STREQ(to_string(ConnectorKind::SapB1ServiceLayer), "sap_b1_service_layer");
    EXPECT_STREQ(to_string(AuthType::OAuth2ClientCredentials), "oauth2_client_credentials");
    EXPECT_STREQ(to_string(DeltaLiteral::DateString), "date_string");
    EXPECT_STREQ(to_string(WriteMethod::Merge), "MERGE");
    EXPECT_STREQ(to_string(TextEncoding::Win1252), "WIN1252");
    EXPECT_STREQ(to_string(EtagMode::IfPresent), "if_present");
}

}  // namespace
}  // namespace stocktech
