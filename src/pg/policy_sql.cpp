/*
 * policy_sql.cpp
 *    SQL-callable helpers of the policy tables: _policy_problem() checks a
 *    policy definition before publish_policy() stores it, governed_fields()
 *    lists the governed vin_master columns from the C++ catalog.
 */
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
}

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fields.hpp"
#include "core/policy.hpp"
#include "pg/boundary.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_policy_problem)
STOCKTECH_SQL_FUNCTION(stocktech_governed_fields)

namespace stocktech::pg {

namespace {

/* Read a string member of a rule object, or record why it is missing. */
bool
read_string(const nlohmann::json &rule, const char *key, std::string &out, std::string &problem)
{
    auto it = rule.find(key);
    if (it == rule.end() || !it->is_string())
    {
        auto field = rule.find("field");
        problem = std::string("a rule");
        if (field != rule.end() && field->is_string())
            problem += " for field \"" + field->get<std::string>() + "\"";
        problem += std::string(" has no string \"") + key + "\"";
        return false;
    }
    out = it->get<std::string>();
    return true;
}

/* Read an optional boolean member; absent means false. */
bool
read_bool(const nlohmann::json &rule, const char *key, bool &out, std::string &problem)
{
    auto it = rule.find(key);
    if (it == rule.end() || it->is_null())
    {
        out = false;
        return true;
    }
    if (!it->is_boolean())
    {
        problem = std::string("\"") + key + "\" of a rule must be true or false";
        return false;
    }
    out = it->get<bool>();
    return true;
}

/* Turn one JSON rule object into a FieldRule, or return a problem. */
std::string
parse_rule(const nlohmann::json &item, FieldRule &rule)
{
    static const char *const known_keys[] = {"field", "erp_access", "stocktech_access",
                                              "strategy", "locked_in_transit", "outbound"};
    std::string problem;
    std::string text;

    if (!item.is_object())
        return "every rule must be a JSON object";
    for (auto it = item.begin(); it != item.end(); ++it)
    {
        bool known = false;
        for (const char *key : known_keys)
            known = known || it.key() == key;
        if (!known)
            return "unknown key \"" + it.key() + "\" in a rule";
    }

    if (!read_string(item, "field", rule.field, problem))
        return problem;
    if (!read_string(item, "erp_access", text, problem))
        return problem;
    auto erp = parse_erp_access(text);
    if (!erp)
        return "invalid erp_access \"" + text + "\" for field \"" + rule.field + "\"";
    rule.erp_access = *erp;
    if (!read_string(item, "stocktech_access", text, problem))
        return problem;
    auto local = parse_stocktech_access(text);
    if (!local)
        return "invalid stocktech_access \"" + text + "\" for field \"" + rule.field + "\"";
    rule.stocktech_access = *local;
    if (!read_string(item, "strategy", text, problem))
        return problem;
    auto strategy = parse_strategy(text);
    if (!strategy)
        return "invalid strategy \"" + text + "\" for field \"" + rule.field + "\"";
    rule.strategy = *strategy;
    if (!read_bool(item, "locked_in_transit", rule.locked_in_transit, problem) ||
        !read_bool(item, "outbound", rule.outbound, problem))
        return problem;
    return {};
}

/* The first problem of a policy definition given as JSON text, or "". */
std::string
policy_problem(const std::string &json_text)
{
    nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, false);
    if (doc.is_discarded() || !doc.is_array())
        return "the rules must be a JSON array of objects";

    std::vector<FieldRule> rules;
    for (const nlohmann::json &item : doc)
    {
        FieldRule rule;
        std::string problem = parse_rule(item, rule);
        if (!problem.empty())
            return problem;
        rules.push_back(std::move(rule));
    }

    std::vector<std::string> names;
    for (const FieldSpec &spec : governed_fields())
        names.emplace_back(spec.name);
    return validate_policy(rules, names);
}

}  // namespace

}  // namespace stocktech::pg

using stocktech::pg::pg_call;
using stocktech::pg::run_at_boundary;

/* _policy_problem(fields jsonb) RETURNS text: NULL when the rules are valid */
extern "C" Datum
stocktech_policy_problem(PG_FUNCTION_ARGS)
{
    Jsonb *rules = PG_GETARG_JSONB_P(0);
    char *rules_text = JsonbToCString(nullptr, &rules->root, VARSIZE(rules));
    text *result = nullptr;

    run_at_boundary([&] {
        std::string problem = stocktech::pg::policy_problem(rules_text);
        if (!problem.empty())
            pg_call([&] { result = cstring_to_text(problem.c_str()); });
    });
    if (result == nullptr)
        PG_RETURN_NULL();
    PG_RETURN_TEXT_P(result);
}

/* governed_fields() RETURNS SETOF (field text, sql_type text) */
extern "C" Datum
stocktech_governed_fields(PG_FUNCTION_ARGS)
{
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

    InitMaterializedSRF(fcinfo, 0);
    for (const stocktech::FieldSpec &spec : stocktech::governed_fields())
    {
        Datum values[2];
        bool nulls[2] = {false, false};

        values[0] = PointerGetDatum(cstring_to_text_with_len(spec.name.data(), spec.name.size()));
        values[1] = PointerGetDatum(
            cstring_to_text_with_len(spec.sql_type.data(), spec.sql_type.size()));
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
