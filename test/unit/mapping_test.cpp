/*
 * mapping_test.cpp
 *    Unit tests of map_record (src/core/mapping.cpp): OData V4 and V2
 *    entities of the test ERP, CSV rows, value maps, enumeration checks,
 *    NULL and missing-property rules, and numeric rounding to the column
 *    scale.
 */
#include <gtest/gtest.h>

#include "core/mapping.hpp"

namespace stocktech {
namespace {

using nlohmann::json;

/* Part of the shipped S/4HANA profile's mapping, inlined so that this test
 * does not depend on the connectors/ files. */
json
erp_profile(const char *kind)
{
    json profile = json::parse(R"json({
        "format_version": 1,
        "service_root": "http://127.0.0.1:4004/odata/v4/vehicle/",
        "entity_set": "Vehicles",
        "key_property": "VIN",
        "delta": {"property": "modifiedAt"},
        "mapping": {
            "vin": {"from": "VIN", "transform": ["trim", "upper"]},
            "model_code": {"from": "Model", "transform": ["trim"]},
            "model_year": "ModelYear",
            "commercial_status": {
                "from": "SalesStatus",
                "transform": ["trim", "upper"],
                "value_map": {"A0": "available", "R1": "reserved", "S2": "sold"}
            },
            "list_price": "ListPrice",
            "customer_ref": "Customer",
            "maint_status": {
                "from": "MaintStatus",
                "value_map": {"0": "none", "1": "scheduled", "2": "in_service", "3": "done"}
            },
            "vitw_in_transit": "InTransit",
            "arrival_date": "ArrivalDate",
            "odometer_km": "Mileage"
        }
    })json");
    profile["kind"] = kind;
    return profile;
}

ConnectorProfile
load(const json &document)
{
    ConnectorProfile profile;
    std::vector<ProfileError> errors;
    EXPECT_TRUE(validate_profile(document, profile, errors)) << format_profile_errors(errors);
    return profile;
}

/* The value of column in record: the text, "NULL", or "ABSENT". */
std::string
value_of(const MappedRecord &record, const std::string &column)
{
    for (const MappedColumn &mapped : record.columns)
    {
        if (mapped.column == column)
            return mapped.value ? *mapped.value : "NULL";
    }
    return "ABSENT";
}

/* The message of the error of column, or "". */
std::string
error_of(const MappedRecord &record, const std::string &column)
{
    for (const MappingError &error : record.errors)
    {
        if (error.column == column)
            return error.message;
    }
    return "";
}

std::string
all_errors(const MappedRecord &record)
{
    std::string text;
    for (const MappingError &error : record.errors)
        text += error.column + " (" + error.source + "): " + error.message + "\n";
    return text;
}

TEST(MappingTest, ODataV4Entity)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    json entity = json::parse(R"json({
        "@odata.etag": "W/\"2025-01-16T13:51:53.104Z\"",
        "VIN": " 1fa6p8th0pf281624 ",
        "Model": "MUSTANG ",
        "ModelYear": 2023,
        "SalesStatus": "r1",
        "ListPrice": 52920.5,
        "Customer": "0000361645",
        "MaintStatus": "2",
        "InTransit": false,
        "ArrivalDate": "2024-11-22",
        "Mileage": 28,
        "modifiedAt": "2025-01-16T13:51:53.104Z"
    })json");
    MappedRecord record = map_record(profile, entity);
    EXPECT_TRUE(record.ok()) << all_errors(record);

    EXPECT_EQ(record.vin, "1FA6P8TH0PF281624");
    EXPECT_EQ(record.key, " 1fa6p8th0pf281624 ") << "the key is kept as the ERP sent it";
    EXPECT_EQ(record.etag, std::optional<std::string>("W/\"2025-01-16T13:51:53.104Z\""));
    ASSERT_TRUE(record.modified.has_value());
    EXPECT_EQ(record.modified->text, "2025-01-16T13:51:53.104000Z");

    EXPECT_EQ(value_of(record, "model_code"), "MUSTANG");
    EXPECT_EQ(value_of(record, "model_year"), "2023");
    EXPECT_EQ(value_of(record, "commercial_status"), "reserved");
    EXPECT_EQ(value_of(record, "list_price"), "52920.50");
    EXPECT_EQ(value_of(record, "customer_ref"), "0000361645");
    EXPECT_EQ(value_of(record, "maint_status"), "in_service");
    EXPECT_EQ(value_of(record, "vitw_in_transit"), "false");
    EXPECT_EQ(value_of(record, "arrival_date"), "2024-11-22");
    EXPECT_EQ(value_of(record, "odometer_km"), "28");
}

TEST(MappingTest, ColumnsFollowProfileOrder)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"Mileage", 1}, {"Model", "GT"},
                   {"ModelYear", 2024}};
    MappedRecord record = map_record(profile, entity);
    ASSERT_EQ(record.columns.size(), 3u) << all_errors(record);
    EXPECT_EQ(record.columns[0].column, "model_code");
    EXPECT_EQ(record.columns[1].column, "model_year");
    EXPECT_EQ(record.columns[2].column, "odometer_km");
}

TEST(MappingTest, ODataV2Entity)
{
    ConnectorProfile profile = load(erp_profile("odata_v2"));
    json entity = json::parse(R"json({
        "__metadata": {
            "uri": "http://127.0.0.1:4004/odata/v2/vehicle/Vehicles('1FA6P8TH0PF281624')",
            "type": "VehicleService.Vehicles",
            "etag": "W/\"2025-01-16T13:51:53.104Z\""
        },
        "VIN": "1FA6P8TH0PF281624",
        "ListPrice": "52920.50",
        "ArrivalDate": "/Date(1732233600000)/",
        "Mileage": "28",
        "modifiedAt": "/Date(1737035513104+0000)/"
    })json");
    MappedRecord record = map_record(profile, entity);
    EXPECT_TRUE(record.ok()) << all_errors(record);
    EXPECT_EQ(record.etag, std::optional<std::string>("W/\"2025-01-16T13:51:53.104Z\""));
    ASSERT_TRUE(record.modified.has_value());
    EXPECT_EQ(record.modified->micros, 1737035513104000);
    EXPECT_EQ(value_of(record, "list_price"), "52920.50");
    EXPECT_EQ(value_of(record, "arrival_date"), "2024-11-22");
    EXPECT_EQ(value_of(record, "odometer_km"), "28");
}

TEST(MappingTest, UnknownCodeIsAnErrorNotAValue)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"SalesStatus", "ZZ"}, {"Model", "GT"}};
    MappedRecord record = map_record(profile, entity);
    ASSERT_EQ(record.errors.size(), 1u) << all_errors(record);
    EXPECT_EQ(record.errors[0].column, "commercial_status");
    EXPECT_EQ(record.errors[0].source, "SalesStatus");
    EXPECT_NE(record.errors[0].message.find("\"ZZ\" is not a commercial_status value"),
              std::string::npos)
        << record.errors[0].message;
    EXPECT_EQ(value_of(record, "commercial_status"), "ABSENT");
    EXPECT_EQ(value_of(record, "model_code"), "GT") << "other columns are still mapped";
}

TEST(MappingTest, EnumValuePassesThroughValueMap)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"SalesStatus", "blocked"}};
    MappedRecord record = map_record(profile, entity);
    /* "blocked" has no value_map entry; upper() made it "BLOCKED". */
    EXPECT_NE(error_of(record, "commercial_status"), "");

    json lower_case = erp_profile("odata_v4");
    lower_case["mapping"]["commercial_status"]["transform"] = {"trim"};
    record = map_record(load(lower_case), entity);
    EXPECT_EQ(value_of(record, "commercial_status"), "blocked") << all_errors(record);
}

TEST(MappingTest, NullMissingAndDefault)
{
    json document = erp_profile("odata_v4");
    document["mapping"]["customer_ref"] = {{"from", "Customer"}, {"default", "WALK-IN"}};
    document["mapping"]["arrival_date"] = {{"from", "ArrivalDate"}, {"default", nullptr}};
    ConnectorProfile profile = load(document);

    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"Model", nullptr}};
    MappedRecord record = map_record(profile, entity);
    EXPECT_TRUE(record.ok()) << all_errors(record);
    EXPECT_EQ(value_of(record, "model_code"), "NULL") << "JSON null is NULL";
    EXPECT_EQ(value_of(record, "model_year"), "ABSENT") << "missing without default";
    EXPECT_EQ(value_of(record, "customer_ref"), "WALK-IN") << "missing with default";
    EXPECT_EQ(value_of(record, "arrival_date"), "NULL") << "missing with default null";

    entity["Customer"] = nullptr;
    record = map_record(profile, entity);
    EXPECT_EQ(value_of(record, "customer_ref"), "NULL") << "null is not missing";
}

TEST(MappingTest, EmptyStringsFromJson)
{
    ConnectorProfile profile = load(erp_profile("odata_v2"));
    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"Customer", ""},       {"ListPrice", ""},
                   {"ArrivalDate", ""},          {"InTransit", ""},      {"Mileage", " "},
                   {"SalesStatus", ""}};
    MappedRecord record = map_record(profile, entity);
    EXPECT_EQ(value_of(record, "customer_ref"), "") << "text keeps the empty string";
    EXPECT_EQ(value_of(record, "list_price"), "NULL");
    EXPECT_EQ(value_of(record, "arrival_date"), "NULL");
    EXPECT_EQ(value_of(record, "odometer_km"), "NULL");
    EXPECT_EQ(value_of(record, "vitw_in_transit"), "false") << "an initial ABAP flag";
    EXPECT_NE(error_of(record, "commercial_status").find("map \"\" in value_map"),
              std::string::npos)
        << all_errors(record);
}

TEST(MappingTest, ValueMapToNull)
{
    json document = erp_profile("odata_v4");
    document["mapping"]["commercial_status"]["value_map"][""] = nullptr;
    document["mapping"]["commercial_status"]["value_map"]["XX"] = nullptr;
    ConnectorProfile profile = load(document);
    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"SalesStatus", "xx"}};
    MappedRecord record = map_record(profile, entity);
    EXPECT_EQ(value_of(record, "commercial_status"), "NULL") << all_errors(record);
    entity["SalesStatus"] = "";
    record = map_record(profile, entity);
    EXPECT_EQ(value_of(record, "commercial_status"), "NULL") << all_errors(record);
}

TEST(MappingTest, NumericRoundingAndPrecision)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    json entity = {{"VIN", "1FA6P8TH0PF281624"}};
    const std::vector<std::pair<json, std::string>> cases = {
        {"89990.505", "89990.51"},     {"89990.504", "89990.50"},
        {"-89990.505", "-89990.51"},   {"89990", "89990.00"},
        {"9.999", "10.00"},            {"-0.001", "0.00"},
        {"1234567890123.456", "1234567890123.46"},
        {52920, "52920.00"},           {"1.5E3", "1500.00"}};
    for (const auto &[input, expected] : cases)
    {
        entity["ListPrice"] = input;
        MappedRecord record = map_record(profile, entity);
        EXPECT_EQ(value_of(record, "list_price"), expected) << input.dump();
    }

    entity["ListPrice"] = "12345678901234.5";
    MappedRecord record = map_record(profile, entity);
    EXPECT_NE(error_of(record, "list_price").find("at most 13 digits"), std::string::npos)
        << all_errors(record);
    entity["ListPrice"] = "9999999999999.995";
    record = map_record(profile, entity);
    EXPECT_NE(error_of(record, "list_price"), "") << "rounding up overflows numeric(15,2)";
}

TEST(MappingTest, IntegerRanges)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"ModelYear", 40000}, {"Mileage", 2147483648LL}};
    MappedRecord record = map_record(profile, entity);
    EXPECT_NE(error_of(record, "model_year").find("out of range for smallint"),
              std::string::npos)
        << all_errors(record);
    EXPECT_NE(error_of(record, "odometer_km").find("out of range for integer"),
              std::string::npos)
        << all_errors(record);

    entity["ModelYear"] = 2024.5;
    entity["Mileage"] = "12 km";
    record = map_record(profile, entity);
    EXPECT_NE(error_of(record, "model_year"), "");
    EXPECT_NE(error_of(record, "odometer_km"), "");
}

TEST(MappingTest, ScalarRequired)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"Model", {{"Code", "GT"}}}};
    MappedRecord record = map_record(profile, entity);
    EXPECT_NE(error_of(record, "model_code").find("expected a scalar value"), std::string::npos)
        << all_errors(record);
}

TEST(MappingTest, VinProblems)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    MappedRecord record = map_record(profile, json{{"Model", "GT"}});
    EXPECT_NE(error_of(record, "vin").find("missing source property \"VIN\""), std::string::npos)
        << all_errors(record);
    record = map_record(profile, json{{"VIN", "   "}});
    EXPECT_EQ(error_of(record, "vin"), "the VIN is empty");
    record = map_record(profile, json{{"VIN", nullptr}});
    EXPECT_EQ(error_of(record, "vin"), "the VIN is null");
}

TEST(MappingTest, KeyAndDeltaProblems)
{
    json document = erp_profile("odata_v4");
    document["key_property"] = "ID";
    ConnectorProfile profile = load(document);
    json entity = {{"VIN", "1FA6P8TH0PF281624"}, {"modifiedAt", "last tuesday"}};
    MappedRecord record = map_record(profile, entity);
    ASSERT_EQ(record.errors.size(), 2u) << all_errors(record);
    EXPECT_EQ(record.errors[0].column, "");
    EXPECT_EQ(record.errors[0].source, "ID");
    EXPECT_EQ(record.errors[1].source, "modifiedAt");
    EXPECT_FALSE(record.modified.has_value());
}

TEST(MappingTest, NonObjectRecord)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    MappedRecord record = map_record(profile, json::array());
    ASSERT_EQ(record.errors.size(), 1u);
    EXPECT_NE(record.errors[0].message.find("expected a JSON object"), std::string::npos);
}

TEST(MappingTest, CsvRowWithEuropeanFormats)
{
    json document = {
        {"format_version", 1},
        {"kind", "csv"},
        {"csv", {{"delimiter", ";"}, {"decimal_separator", ","}, {"date_format", "DD.MM.YYYY"}}},
        {"mapping",
         {{"vin", {{"from", "FIN"}, {"transform", {"trim", "upper"}}}},
          {"list_price", "Preis"},
          {"arrival_date", "Ankunft"},
          {"customer_ref", "Kunde"},
          {"vitw_in_transit", "Transport"},
          {"model_year", "Modelljahr"}}}};
    ConnectorProfile profile = load(document);
    json row = {{"FIN", "wp0zzz99zts392124"}, {"Preis", "89.990,50"}, {"Ankunft", "29.02.2024"},
                {"Kunde", ""},                {"Transport", ""},      {"Modelljahr", "2024"}};
    MappedRecord record = map_record(profile, row);
    EXPECT_TRUE(record.ok()) << all_errors(record);
    EXPECT_EQ(record.vin, "WP0ZZZ99ZTS392124");
    EXPECT_EQ(record.key, "") << "csv rows have no key property";
    EXPECT_FALSE(record.etag.has_value());
    EXPECT_EQ(value_of(record, "list_price"), "89990.50");
    EXPECT_EQ(value_of(record, "arrival_date"), "2024-02-29");
    EXPECT_EQ(value_of(record, "customer_ref"), "NULL") << "an empty CSV field is NULL";
    EXPECT_EQ(value_of(record, "vitw_in_transit"), "NULL");
    EXPECT_EQ(value_of(record, "model_year"), "2024");

    row["Preis"] = "89990.5";
    record = map_record(profile, row);
    EXPECT_NE(error_of(record, "list_price").find("three digits"), std::string::npos)
        << all_errors(record);
    row["Ankunft"] = "30.02.2024";
    record = map_record(profile, row);
    EXPECT_NE(error_of(record, "arrival_date"), "");
}

TEST(MappingTest, EntryOptionsOverrideCsvDefaults)
{
    json document = {{"format_version", 1},
                     {"kind", "csv"},
                     {"csv", {{"decimal_separator", ","}, {"date_format", "DD.MM.YYYY"}}},
                     {"mapping",
                      {{"vin", "VIN"},
                       {"list_price", {{"from", "Price"}, {"decimal_separator", "."}}},
                       {"arrival_date", {{"from", "Arrival"}, {"date_format", "YYYYMMDD"}}}}}};
    ConnectorProfile profile = load(document);
    json row = {{"VIN", "WP0ZZZ99ZTS392124"}, {"Price", "1,234.5"}, {"Arrival", "00000000"}};
    MappedRecord record = map_record(profile, row);
    EXPECT_TRUE(record.ok()) << all_errors(record);
    EXPECT_EQ(value_of(record, "list_price"), "1234.50");
    EXPECT_EQ(value_of(record, "arrival_date"), "NULL") << "SAP initial date";
}

TEST(MappingTest, CsvWithoutHeader)
{
    json document = {{"format_version", 1},
                     {"kind", "csv"},
                     {"csv", {{"header", false}}},
                     {"mapping", {{"vin", {{"from", 1}}}, {"model_code", {{"from", 2}}}}}};
    ConnectorProfile profile = load(document);
    MappedRecord record = map_record(profile, json{{"1", "WP0ZZZ99ZTS392124"}, {"2", "911"}});
    EXPECT_TRUE(record.ok()) << all_errors(record);
    EXPECT_EQ(value_of(record, "model_code"), "911");
}

TEST(MappingTest, SeveralErrorsAtOnce)
{
    ConnectorProfile profile = load(erp_profile("odata_v4"));
    json entity = {{"VIN", "1FA6P8TH0PF281624"},
                   {"SalesStatus", "??"},
                   {"ListPrice", "abc"},
                   {"ArrivalDate", "2023-02-29"},
                   {"InTransit", "maybe"}};
    MappedRecord record = map_record(profile, entity);
    EXPECT_EQ(record.errors.size(), 4u) << all_errors(record);
    EXPECT_NE(error_of(record, "commercial_status"), "");
    EXPECT_NE(error_of(record, "list_price"), "");
    EXPECT_NE(error_of(record, "arrival_date"), "");
    EXPECT_NE(error_of(record, "vitw_in_transit"), "");
}

TEST(ConvertForColumnTest, EachType)
{
    std::optional<std::string> out;
    std::string error;
    EXPECT_TRUE(convert_for_column(*find_field("vitw_in_transit"), "X", '.', DateFormat::Iso,
                                   out, error));
    EXPECT_EQ(out, std::optional<std::string>("true"));
    EXPECT_TRUE(convert_for_column(*find_field("pdi_status"), "passed", '.', DateFormat::Iso,
                                   out, error));
    EXPECT_EQ(out, std::optional<std::string>("passed"));
    EXPECT_FALSE(convert_for_column(*find_field("pdi_status"), "PASSED", '.', DateFormat::Iso,
                                    out, error))
        << "enumeration values are case-sensitive";
    EXPECT_TRUE(convert_for_column(*find_field("model_year"), "-32768", '.', DateFormat::Iso,
                                   out, error));
    EXPECT_FALSE(convert_for_column(*find_field("model_year"), "32768", '.', DateFormat::Iso,
                                    out, error));
    EXPECT_TRUE(convert_for_column(*find_field("model_code"), " as is ", '.', DateFormat::Iso,
                                   out, error));
    EXPECT_EQ(out, std::optional<std::string>(" as is "));
}

}  // namespace
}  // namespace stocktech
