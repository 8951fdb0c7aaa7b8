/*
 * writeback_test.cpp
 *    Unit tests of write-back bodies and URLs.
 */
#include "core/writeback.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace {

stocktech::ConnectorProfile
shipped_profile(const std::string &file)
{
    std::ifstream in(std::string(STOCKTECH_SOURCE_DIR) + "/connectors/" + file);
    std::stringstream text;
    text << in.rdbuf();
    stocktech::ConnectorProfile profile;
    std::vector<stocktech::ProfileError> errors;
    EXPECT_TRUE(stocktech::parse_profile(text.str(), profile, errors))
        << stocktech::format_profile_errors(errors);
    return profile;
}

}  // namespace

TEST(WriteBody, V4CodesAndTypes)
{
    auto profile = shipped_profile("s4hana_odata_v4.json");
    nlohmann::json fields = {{"commercial_status", "sold"},
                             {"arrival_date", "2026-03-01"},
                             {"odometer_km", "120"},
                             {"vitw_in_transit", "t"}};
    nlohmann::json body;
    std::string error;
    ASSERT_TRUE(stocktech::build_write_body(profile, fields, body, error)) << error;
    EXPECT_EQ(body["SalesStatus"], "S2");
    EXPECT_EQ(body["ArrivalDate"], "2026-03-01");
    EXPECT_EQ(body["Mileage"], 120);
    EXPECT_EQ(body["InTransit"], true);
    EXPECT_EQ(body.size(), 4u);
}

TEST(WriteBody, V2DatesAsDateLiterals)
{
    auto profile = shipped_profile("sap_gateway_odata_v2.json");
    nlohmann::json body;
    std::string error;
    ASSERT_TRUE(stocktech::build_write_body(profile, {{"arrival_date", "2024-12-13"}}, body,
                                            error))
        << error;
    EXPECT_EQ(body["ArrivalDate"], "/Date(1734048000000)/");
}

TEST(WriteBody, NullAndRejectedColumns)
{
    auto profile = shipped_profile("s4hana_odata_v4.json");
    nlohmann::json body;
    std::string error;
    ASSERT_TRUE(stocktech::build_write_body(profile, {{"warehouse_location", nullptr}}, body,
                                            error));
    EXPECT_TRUE(body["StorageBin"].is_null());

    EXPECT_FALSE(stocktech::build_write_body(profile, {{"model_code", "X"}}, body, error));
    EXPECT_EQ(error, "column \"model_code\" is not in write_back.fields");
    EXPECT_FALSE(stocktech::build_write_body(profile, {{"odometer_km", "ten"}}, body, error));
    EXPECT_EQ(error, "column \"odometer_km\": invalid integer \"ten\"");
    EXPECT_FALSE(stocktech::build_write_body(profile, nlohmann::json::array(), body, error));
}

TEST(WriteUrl, TemplateUnderServiceRoot)
{
    auto profile = shipped_profile("s4hana_odata_v4.json");
    std::string url;
    std::string error;
    ASSERT_TRUE(stocktech::write_url(profile, "WVWZZZ3CZPE512349", url, error)) << error;
    EXPECT_EQ(url, profile.service_root + "Vehicles('WVWZZZ3CZPE512349')");
    EXPECT_FALSE(stocktech::write_url(profile, "", url, error));
}
