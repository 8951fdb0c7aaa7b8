/*
 * config.cpp
 *    Loading and invalidating the per-backend sync configuration cache.
 */
extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include <memory>
#include <vector>

#include "pg/boundary.hpp"
#include "pg/config.hpp"

STOCKTECH_SQL_FUNCTION(stocktech_config_changed)

namespace stocktech::pg {

namespace {

std::unique_ptr<SyncConfig> cached_config;
bool cached_config_stale = false;
Oid settings_relid = InvalidOid;
Oid policy_versions_relid = InvalidOid;
bool callback_registered = false;

/*
 * Configurations replaced during the current transaction.  Callers may
 * hold a reference to the configuration across SPI calls, and any lock
 * acquisition can deliver an invalidation, so a replaced configuration
 * lives until the transaction ends.
 */
std::vector<std::unique_ptr<SyncConfig>> retired_configs;

/* Relcache callback: mark the cache stale when a configuration table
 * changes; the next current_config() loads a new one. */
void
invalidate_config(Datum, Oid relid)
{
    if (relid == InvalidOid || relid == settings_relid || relid == policy_versions_relid ||
        (cached_config && relid == cached_config->vin_master_relid))
        cached_config_stale = true;
}

/* Transaction callback: free the configurations retired in it. */
void
free_retired_configs(XactEvent event, void *)
{
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
        event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
        retired_configs.clear();
}

Oid
schema_relid(const char *name)
{
    Oid schema = get_namespace_oid("stocktech_sync", false);
    Oid relid = get_relname_relid(name, schema);
    if (!OidIsValid(relid))
        elog(ERROR, "relation stocktech_sync.%s does not exist", name);
    return relid;
}

/* Run a read-only query through SPI; the caller has connected SPI. */
void
spi_query(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
    int rc = SPI_execute_with_args(sql, nargs, types, values, nullptr, true, 0);
    if (rc != expected)
        elog(ERROR, "SPI query failed with code %d: %s", rc, sql);
}

std::string
spi_text(int row, int column)
{
    char *value = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column);
    return value ? std::string(value) : std::string();
}

/* Fill config from the tables; runs inside pg_call, so it may raise errors. */
void
load_config(SyncConfig &config, std::string &problem)
{
    SPI_connect();
    spi_query("SELECT s.mode::text, s.strict_vin_check::text, "
              "(SELECT v.version FROM stocktech_sync.policy_versions v WHERE v.is_active) "
              "FROM stocktech_sync.settings s",
              0, nullptr, nullptr, SPI_OK_SELECT);
    if (SPI_processed != 1)
    {
        problem = "the settings table stocktech_sync.settings has no row";
        SPI_finish();
        return;
    }
    std::string mode = spi_text(0, 1);
    config.strict_vin_check = spi_text(0, 2) == "true";
    config.policy_version = spi_text(0, 3);
    config.mode = parse_mode(mode).value_or(Mode::Manual);

    Oid types[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(config.policy_version.c_str())};
    spi_query("SELECT field, erp_access::text, stocktech_access::text, strategy::text, "
              "locked_in_transit::text, outbound::text "
              "FROM stocktech_sync.policy_fields WHERE version = $1",
              1, types, values, SPI_OK_SELECT);
    config.rules.assign(governed_fields().size(), FieldRule{});
    std::vector<bool> seen(governed_fields().size(), false);
    for (uint64 i = 0; i < SPI_processed; i++)
    {
        int index = field_index(spi_text(i, 1));
        if (index < 0)
            continue;
        FieldRule &rule = config.rules[index];
        rule.field = spi_text(i, 1);
        rule.erp_access = parse_erp_access(spi_text(i, 2)).value_or(ErpAccess::None);
        rule.stocktech_access =
            parse_stocktech_access(spi_text(i, 3)).value_or(StocktechAccess::Read);
        rule.strategy = parse_strategy(spi_text(i, 4)).value_or(Strategy::ErpWins);
        rule.locked_in_transit = spi_text(i, 5) == "true";
        rule.outbound = spi_text(i, 6) == "true";
        seen[index] = true;
    }
    SPI_finish();

    if (config.policy_version.empty())
        problem = "no policy version is active";
    for (size_t i = 0; problem.empty() && i < seen.size(); i++)
    {
        if (!seen[i])
            problem = "policy version \"" + config.policy_version + "\" has no rule for field \"" +
                      std::string(governed_fields()[i].name) + "\"";
    }
}

/* Owner of the stocktech_sync extension. */
Oid
get_extension_owner()
{
    Oid owner = InvalidOid;
    Oid types[1] = {NAMEOID};
    Datum values[1] = {CStringGetDatum("stocktech_sync")};

    SPI_connect();
    spi_query("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'stocktech_sync'",
              0, types, values, SPI_OK_SELECT);
    if (SPI_processed == 1)
    {
        bool isnull;
        owner = DatumGetObjectId(
            SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    SPI_finish();
    if (!OidIsValid(owner))
        elog(ERROR, "extension stocktech_sync is not installed in this database");
    return owner;
}

/* Look up the type I/O functions of the governed columns. */
void
load_columns(SyncConfig &config)
{
    config.vin_master_relid = schema_relid("vin_master");
    config.extension_owner = get_extension_owner();
    config.columns.assign(governed_fields().size(), ColumnIo{});
    for (size_t i = 0; i < governed_fields().size(); i++)
    {
        ColumnIo &column = config.columns[i];
        std::string name(governed_fields()[i].name);
        Oid output_function;
        Oid input_function;
        bool is_varlena;

        column.spec = &governed_fields()[i];
        column.attnum = get_attnum(config.vin_master_relid, name.c_str());
        if (column.attnum == InvalidAttrNumber)
            elog(ERROR, "column \"%s\" of vin_master does not exist", name.c_str());
        get_atttypetypmodcoll(config.vin_master_relid, column.attnum, &column.type_oid,
                              &column.typmod, &input_function);
        getTypeInputInfo(column.type_oid, &input_function, &column.input_param);
        fmgr_info_cxt(input_function, &column.input, TopMemoryContext);
        getTypeOutputInfo(column.type_oid, &output_function, &is_varlena);
        fmgr_info_cxt(output_function, &column.output, TopMemoryContext);
    }
}

}  // namespace

OwnerSection::OwnerSection(Oid owner)
{
    pg_call([&] {
        guc_level_ = NewGUCNestLevel();
        (void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
                                 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    });
    GetUserIdAndSecContext(&saved_user_, &saved_context_);
    SetUserIdAndSecContext(owner, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
}

OwnerSection::~OwnerSection()
{
    SetUserIdAndSecContext(saved_user_, saved_context_);
    AtEOXact_GUC(false, guc_level_);
}

std::string
format_timestamptz(int64_t ts)
{
    const char *text = nullptr;
    pg_call([&] { text = timestamptz_to_str(static_cast<TimestampTz>(ts)); });
    return text;
}

int64_t
parse_timestamptz(const std::string &text)
{
    TimestampTz ts = 0;
    pg_call([&] {
        ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()),
                                                     ObjectIdGetDatum(InvalidOid),
                                                     Int32GetDatum(-1)));
    });
    return static_cast<int64_t>(ts);
}

int
field_index(std::string_view name)
{
    const std::vector<FieldSpec> &fields = governed_fields();
    for (size_t i = 0; i < fields.size(); i++)
    {
        if (fields[i].name == name)
            return static_cast<int>(i);
    }
    return -1;
}

const SyncConfig &
current_config()
{
    if (cached_config && !cached_config_stale)
        return *cached_config;

    auto config = std::make_unique<SyncConfig>();
    std::string problem;
    cached_config_stale = false;
    pg_call([&] {
        if (!callback_registered)
        {
            CacheRegisterRelcacheCallback(invalidate_config, (Datum) 0);
            RegisterXactCallback(free_retired_configs, nullptr);
            callback_registered = true;
        }
        settings_relid = schema_relid("settings");
        policy_versions_relid = schema_relid("policy_versions");
        load_columns(*config);
    });
    /* NOTE: load_config builds std::string temporaries between SPI calls;
     * an SPI error there would skip their destructors and leak them. */
    pg_call([&] { load_config(*config, problem); });
    if (!problem.empty())
        throw SqlError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                       "stocktech_sync configuration is incomplete", problem + ".",
                       "Publish and activate a complete policy with "
                       "stocktech_sync.publish_policy() and stocktech_sync.activate_policy().");
    if (cached_config)
        retired_configs.push_back(std::move(cached_config));
    cached_config = std::move(config);
    return *cached_config;
}

std::string
canonical_text(const ColumnIo &column, const std::string &value)
{
    std::string result;
    char *output = nullptr;
    pg_call([&] {
        Datum datum = InputFunctionCall(const_cast<FmgrInfo *>(&column.input),
                                        const_cast<char *>(value.c_str()), column.input_param,
                                        column.typmod);
        output = OutputFunctionCall(const_cast<FmgrInfo *>(&column.output), datum);
    });
    result = output;
    pfree(output);
    return result;
}

}  // namespace stocktech::pg

/*
 * _config_changed() RETURNS void: makes every backend reload the cached
 * configuration once the calling transaction commits.
 */
extern "C" Datum
stocktech_config_changed(PG_FUNCTION_ARGS)
{
    Oid schema = get_namespace_oid("stocktech_sync", false);
    Oid relid = get_relname_relid("settings", schema);

    if (OidIsValid(relid))
        CacheInvalidateRelcacheByRelid(relid);
    PG_RETURN_VOID();
}
