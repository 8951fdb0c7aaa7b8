/*
 * sync.cpp
 *    The poll run of an HTTP connector (see sync.hpp for the contract).
 *
 * Invariants:
 *  - In Worker mode every database step runs in its own transaction,
 *    opened by Step and committed when it ends; HTTP requests happen with
 *    no transaction open.
 *  - ERP-side failures (HTTP, protocol, paging) are SyncFailure exceptions:
 *    C++ only, so they are recorded and the run ends cleanly.  PostgreSQL
 *    errors are PgError; in Worker mode the run aborts the open transaction
 *    before recording them.
 *  - Secrets are read from connector_secrets as the extension owner and
 *    never logged; URLs in messages have their user information removed.
 */
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include <ctime>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/http_client.hpp"
#include "core/mapping.hpp"
#include "core/odata.hpp"
#include "core/profile.hpp"
#include "pg/apply.hpp"
#include "pg/apply_sql.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/gucs.hpp"
#include "pg/spi_util.hpp"
#include "pg/step.hpp"
#include "pg/sync.hpp"

namespace stocktech::pg {

namespace {

/* Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
constexpr int64_t kPostgresEpochMicros = INT64CONST(946684800000000);

/* An ERP-side failure that ends the run. */
struct SyncFailure
{
    std::string message;
    bool contact_failed = false; /* the ERP could not be reached or returned an invalid response */
    int http_status = 0;
};



void
execute(const std::string &sql, const std::vector<Value> &params)
{
    query_rows(sql, params, false);
}

std::string
micros_to_timestamptz_text(int64_t unix_micros)
{
    return format_timestamptz(unix_micros - kPostgresEpochMicros);
}

int64_t
timestamptz_text_to_unix_micros(const std::string &text)
{
    return parse_timestamptz(text) + kPostgresEpochMicros;
}

/* Sleep for delay_ms on the process latch; throws SyncInterrupted when an
 * interrupt arrives. */
void
interruptible_sleep(long delay_ms)
{
    TimestampTz end = GetCurrentTimestamp() + delay_ms * 1000L;
    for (;;)
    {
        if (QueryCancelPending || ProcDiePending)
            throw SyncInterrupted{};
        long remaining = (long) ((end - GetCurrentTimestamp()) / 1000);
        if (remaining <= 0)
            return;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
                         std::min(remaining, 1000L), PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}

HttpOptions
http_options()
{
    HttpOptions options;
    options.connect_timeout_ms = setting_http_connect_timeout;
    options.total_timeout_ms = setting_http_timeout;
    options.max_response_bytes = static_cast<size_t>(setting_http_max_response_kb) * 1024;
    options.ca_file = setting_http_ca_file ? setting_http_ca_file : "";
    options.verify_tls = true;
    options.should_abort = [] { return QueryCancelPending || ProcDiePending; };
    return options;
}

/* Everything a run needs about its connector. */
struct ConnectorContext
{
    std::string name;
    int profile_version = 0;
    ConnectorProfile profile;
    std::map<std::string, std::string> secrets;
    Watermark watermark;
    std::string session_cookies;  /* session_login */
    std::string bearer_token;     /* oauth2_client_credentials */
};

std::string
secret(const ConnectorContext &context, const std::string &name)
{
    auto it = context.secrets.find(name);
    if (it == context.secrets.end())
        throw SyncFailure{"secret \"" + name + "\" of connector \"" + context.name +
                              "\" is not set; set it with stocktech_sync.set_secret()",
                          false, 0};
    return it->second;
}

/* Perform one request with retries for transient failures. */
HttpResponse
perform_with_retries(ConnectorContext &context, HttpRequest request, bool is_write);

/* Log in to a session-based service (SAP Business One Service Layer). */
void
session_login(ConnectorContext &context)
{
    const AuthConfig &auth = context.profile.auth;
    nlohmann::json body = {{"CompanyDB", auth.company_db},
                           {"UserName", auth.username},
                           {"Password", secret(context, auth.password_secret)}};
    HttpRequest request;
    request.method = "POST";
    request.url = auth.login_url;
    request.headers = {{"Content-Type", "application/json"}};
    request.body = body.dump();
    HttpResponse response = http_perform(request, http_options());
    if (response.error == HttpError::Aborted)
        throw SyncInterrupted{};
    if (response.error != HttpError::None || response.status / 100 != 2)
        throw SyncFailure{"login to " + redact_url(auth.login_url) + " failed: " +
                              (response.error != HttpError::None
                                   ? response.error_message
                                   : parse_error_body(response.status,
                                                      response.header("content-type").value_or(""),
                                                      response.body)),
                          true, response.status};
    std::string cookies;
    for (const std::string &cookie : response.set_cookies())
    {
        std::string pair = cookie.substr(0, cookie.find(';'));
        if (!cookies.empty())
            cookies += "; ";
        cookies += pair;
    }
    context.session_cookies = cookies;
}

/* Fetch an OAuth2 access token with the client credentials grant. */
void
fetch_oauth_token(ConnectorContext &context)
{
    const AuthConfig &auth = context.profile.auth;
    HttpRequest request;
    request.method = "POST";
    request.url = auth.token_url;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"}};
    request.body = "grant_type=client_credentials&client_id=" +
                   percent_encode_query(auth.client_id) + "&client_secret=" +
                   percent_encode_query(secret(context, auth.client_secret_secret));
    if (!auth.scope.empty())
        request.body += "&scope=" + percent_encode_query(auth.scope);
    HttpResponse response = http_perform(request, http_options());
    if (response.error == HttpError::Aborted)
        throw SyncInterrupted{};
    nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, false);
    if (response.error != HttpError::None || response.status / 100 != 2 || !doc.is_object() ||
        !doc.contains("access_token") || !doc["access_token"].is_string())
        throw SyncFailure{"could not get an OAuth2 token from " + redact_url(auth.token_url) +
                              " (HTTP " + std::to_string(response.status) + ")",
                          true, response.status};
    context.bearer_token = doc["access_token"].get<std::string>();
}

/* Add the authentication of the connector to a request. */
void
authenticate(ConnectorContext &context, HttpRequest &request)
{
    const AuthConfig &auth = context.profile.auth;
    switch (auth.type)
    {
        case AuthType::None:
            break;
        case AuthType::Basic:
        {
            auto header = basic_authorization(auth.username,
                                              secret(context, auth.password_secret));
            if (!header)
                throw SyncFailure{"the user name of connector \"" + context.name +
                                      "\" contains a colon, which basic authentication "
                                      "cannot carry",
                                  false, 0};
            request.headers.emplace_back("Authorization", *header);
            break;
        }
        case AuthType::Bearer:
            request.headers.emplace_back("Authorization",
                                         "Bearer " + secret(context, auth.token_secret));
            break;
        case AuthType::OAuth2ClientCredentials:
            if (context.bearer_token.empty())
                fetch_oauth_token(context);
            request.headers.emplace_back("Authorization", "Bearer " + context.bearer_token);
            break;
        case AuthType::SessionLogin:
            if (context.session_cookies.empty())
                session_login(context);
            request.headers.emplace_back("Cookie", context.session_cookies);
            break;
    }
}

std::string
describe_response(const HttpResponse &response)
{
    if (response.error != HttpError::None)
        return response.error_message;
    return parse_error_body(response.status, response.header("content-type").value_or(""),
                            response.body);
}

HttpResponse
perform_with_retries(ConnectorContext &context, HttpRequest request, bool is_write)
{
    std::random_device device;
    std::mt19937_64 random(device());
    bool relogged = false;
    HttpRequest unauthenticated = request;

    for (int attempt = 1;; attempt++)
    {
        HttpRequest current = unauthenticated;
        authenticate(context, current);
        pgstat_report_wait_start(PG_WAIT_EXTENSION);
        HttpResponse response = http_perform(current, http_options());
        pgstat_report_wait_end();
        if (response.error == HttpError::Aborted)
            throw SyncInterrupted{};

        /* A session or token that expired: log in again once. */
        if (response.status == 401 && !relogged &&
            (context.profile.auth.type == AuthType::SessionLogin ||
             context.profile.auth.type == AuthType::OAuth2ClientCredentials))
        {
            context.session_cookies.clear();
            context.bearer_token.clear();
            relogged = true;
            attempt--;
            continue;
        }

        FailureClass failure = classify_response(response, is_write);
        if (failure == FailureClass::Success)
            return response;
        /* A body over the size cap does not shrink on the next attempt. */
        bool hopeless = response.error == HttpError::TooLarge;
        if (failure != FailureClass::Transient || hopeless ||
            attempt >= setting_http_max_attempts)
        {
            std::string what = failure == FailureClass::Configuration
                                   ? "configuration error"
                                   : (failure == FailureClass::Transient
                                          ? "failed after " + std::to_string(attempt) +
                                                " attempts"
                                          : "failed");
            throw SyncFailure{"request to " + redact_url(request.url) + " " + what + ": " +
                                  describe_response(response),
                              true, response.status};
        }

        long delay = backoff_delay_ms(attempt - 1, setting_http_retry_base_delay,
                                      setting_http_retry_max_delay, random());
        if (auto retry_after = response.header("retry-after"))
        {
            if (auto seconds = parse_retry_after(*retry_after, std::time(nullptr)))
                delay = std::min<long>(*seconds * 1000L, setting_http_retry_max_delay);
        }
        std::string reason = describe_response(response);
        pg_call([&] {
            ereport(LOG,
                    (errmsg("stocktech_sync connector \"%s\": %s; retrying in %ld ms "
                            "(attempt %d of %d)",
                            context.name.c_str(), reason.c_str(), delay, attempt + 1,
                            setting_http_max_attempts)));
        });
        interruptible_sleep(delay);
    }
}

/* Load the connector, its current profile, secrets and watermark. */
ConnectorContext
load_connector(const SyncConfig &config, const std::string &name)
{
    ConnectorContext context;
    context.name = name;
    auto rows = query_rows(
        "SELECT c.current_version::text, p.profile::text, s.watermark_modified::text, "
        "s.watermark_key, s.delta_link "
        "FROM stocktech_sync.connectors c "
        "JOIN stocktech_sync.connector_profiles p "
        "  ON p.connector = c.name AND p.version = c.current_version "
        "LEFT JOIN stocktech_sync.connector_state s ON s.connector = c.name "
        "WHERE c.name = $1",
        {name}, true);
    if (rows.empty())
        throw SqlError(ERRCODE_UNDEFINED_OBJECT, "connector \"" + name + "\" does not exist", {},
                       "Create it with stocktech_sync.create_connector().");
    context.profile_version = std::stoi(*rows[0][0]);
    std::vector<ProfileError> errors;
    if (!parse_profile(*rows[0][1], context.profile, errors))
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                       "profile version " + *rows[0][0] + " of connector \"" + name +
                           "\" is invalid",
                       format_profile_errors(errors));
    if (!is_http_kind(context.profile.kind))
        throw SqlError(ERRCODE_WRONG_OBJECT_TYPE,
                       "connector \"" + name + "\" of kind " + to_string(context.profile.kind) +
                           " cannot be polled",
                       {}, "Import CSV files with stocktech_sync.import_csv().");
    if (rows[0][2])
        context.watermark.modified_micros = timestamptz_text_to_unix_micros(*rows[0][2]);
    context.watermark.key = rows[0][3].value_or("");
    context.watermark.delta_link = rows[0][4].value_or("");

    as_extension_owner(config, [&] {
        auto secrets = query_rows(
            "SELECT name, value FROM stocktech_sync.connector_secrets WHERE connector = $1",
            {name}, true);
        for (const auto &row : secrets)
            context.secrets[*row[0]] = row[1].value_or("");
    });
    return context;
}

/* Counters of one run. */
struct RunStats
{
    long pages = 0;
    long records = 0;
    std::optional<int64_t> expected_count;
    std::set<std::string> vins;
    BatchCounts counts;
    std::optional<int64_t> max_modified;
    std::string max_key;
    std::string warning;
    std::string delta_link;
    bool more_pending = false; /* stopped at max_pages: poll again at once */
};

/* Apply one queued page; returns its record count. */
void
apply_page(const SyncConfig &config, ConnectorContext &context, long page_id,
           const nlohmann::json &records, const std::string &source_ref, RunStats &stats)
{
    int64_t run_ts = GetCurrentTransactionStartTimestamp();
    for (const nlohmann::json &record : records)
    {
        MappedRecord mapped = map_record(context.profile, record);
        RecordOutcome outcome;

        /* One SPI connection per record, so memory stays bounded. */
        pg_call([] { SPI_connect(); });
        if (mapped.ok())
        {
            InboundRecord inbound;
            add_mapped_columns(mapped, inbound);
            inbound.source = Source::Erp;
            inbound.source_ts =
                mapped.modified ? mapped.modified->micros - kPostgresEpochMicros : run_ts;
            inbound.connector = context.name;
            inbound.profile_version = context.profile_version;
            inbound.source_ref = source_ref;
            outcome = apply_in_subtransaction(inbound);
            if (outcome.ok)
                stats.vins.insert(outcome.result.vin);
        }
        else
        {
            outcome.sqlstate = ERRCODE_INVALID_TEXT_REPRESENTATION;
            outcome.reason = mapping_errors_text(mapped);
        }
        if (!outcome.ok)
        {
            DeadLetter letter;
            letter.connector = context.name;
            letter.source_ref = source_ref;
            if (!mapped.vin.empty())
                letter.vin = mapped.vin;
            letter.record_json = record.dump();
            letter.reason = outcome.reason;
            letter.sqlstate = sqlstate_text(outcome.sqlstate);
            letter.record_kind = "erp";
            write_dead_letter(config, letter);
        }
        count_outcome(outcome, stats.counts);
        stats.records++;
        pg_call([] { SPI_finish(); });

        /* The watermark candidate: the largest (modified, key) read. */
        if (mapped.modified)
        {
            int64_t modified = mapped.modified->micros;
            if (!stats.max_modified || modified > *stats.max_modified ||
                (modified == *stats.max_modified && mapped.key > stats.max_key))
            {
                stats.max_modified = modified;
                stats.max_key = mapped.key;
            }
        }
    }
    execute("UPDATE stocktech_sync.inbound_queue SET status = 'applied', "
            "applied_at = pg_catalog.clock_timestamp() WHERE id = $1::bigint",
            {std::to_string(page_id)});
}

/* Apply pages a previous run fetched but did not apply (a crash between). */
void
apply_pending_pages(const SyncConfig &config, ConnectorContext &context, RunMode mode,
                    RunStats &stats)
{
    std::vector<std::vector<Value>> pending;
    {
        Step step(mode);
        pending = query_rows("SELECT id::text FROM stocktech_sync.inbound_queue "
                             "WHERE connector = $1 AND status = 'pending' ORDER BY id",
                             {context.name}, true);
        step.commit();
    }
    for (const auto &row : pending)
    {
        Step step(mode);
        auto page = query_rows("SELECT records::text FROM stocktech_sync.inbound_queue "
                               "WHERE id = $1::bigint AND status = 'pending' FOR UPDATE",
                               {row[0]}, false);
        if (!page.empty())
        {
            nlohmann::json records = nlohmann::json::parse(*page[0][0], nullptr, false);
            apply_page(config, context, std::stol(*row[0]), records,
                       "inbound_queue page " + *row[0], stats);
        }
        step.commit();
    }
}

/* Fetch and apply every page of one run.  Without delta links, every page
 * after the first is a new keyset query after the last record read, because
 * next links of servers such as CAP carry an offset, which skips a row when
 * an earlier row changes during the run. */
void
fetch_pages(const SyncConfig &config, ConnectorContext &context, RunMode mode, long run_id,
            RunStats &stats)
{
    PageRequest request_spec;
    std::string error;
    if (!build_query(context.profile, context.watermark, request_spec, error))
        throw SyncFailure{"could not build the first request: " + error, false, 0};

    std::string url = request_spec.url;
    std::set<std::string> seen;
    ODataVersion version = page_version(context.profile.kind);
    std::string set_url = entity_set_url(context.profile);
    bool follow_links = context.profile.delta.mode == DeltaMode::DeltaLink;

    for (;;)
    {
        if (!seen.insert(url).second)
            throw SyncFailure{"the ERP returned the same page twice (" + redact_url(url) +
                                  "); the run stopped instead of looping",
                              false, 0};
        if (stats.pages >= context.profile.max_pages)
        {
            /* Keyset pages were read in (modified, key) order, so the run can
             * end here and the next run continue from the watermark. */
            if (!follow_links)
            {
                stats.warning = "the run stopped at the profile's max_pages (" +
                                std::to_string(context.profile.max_pages) +
                                " pages); the next run continues from the watermark";
                stats.more_pending = true;
                break;
            }
            throw SyncFailure{"more than " + std::to_string(context.profile.max_pages) +
                                  " pages; the run stopped at the profile's max_pages",
                              false, 0};
        }

        HttpRequest request;
        request.method = "GET";
        request.url = url;
        request.headers = {{"Accept", "application/json"}};
        if (!request_spec.prefer.empty())
            request.headers.emplace_back("Prefer", request_spec.prefer);
        pg_call([&] {
            pgstat_report_activity(STATE_RUNNING,
                                   psprintf("stocktech_sync: fetching page %ld of connector %s",
                                            stats.pages + 1, context.name.c_str()));
        });
        HttpResponse response = perform_with_retries(context, request, false);

        ODataPage page;
        bool parsed = context.profile.kind == ConnectorKind::RestJson
                          ? parse_rest_page(response.body, context.profile.rest, page, error)
                          : parse_page(response.body, version, page, error);
        if (!parsed)
            throw SyncFailure{"invalid page from " + redact_url(url) + ": " + error, true,
                              response.status};
        if (stats.pages == 0 && page.count)
            stats.expected_count = page.count;
        stats.pages++;

        if (page.records.empty() && page.next_link)
            throw SyncFailure{"the ERP returned an empty page that links to another page; "
                              "the run stopped instead of looping",
                              false, 0};

        /* Commit the page before applying it. */
        long page_id = 0;
        {
            Step step(mode);
            auto rows = query_rows(
                "INSERT INTO stocktech_sync.inbound_queue (connector, run_id, page_number, "
                "records) VALUES ($1, $2::bigint, $3::integer, $4::jsonb) RETURNING id::text",
                {context.name, std::to_string(run_id), std::to_string(stats.pages),
                 page.records.dump()},
                false);
            page_id = std::stol(*rows[0][0]);
            step.commit();
        }
        {
            Step step(mode);
            apply_page(config, context, page_id, page.records, redact_url(url), stats);
            step.commit();
        }
        if (QueryCancelPending || ProcDiePending)
            throw SyncInterrupted{};

        if (page.delta_link)
            stats.delta_link = *page.delta_link;

        if (follow_links)
        {
            if (!page.next_link)
                break;
            std::string next;
            if (!resolve_next_link(context.profile.service_root, set_url, *page.next_link, next,
                                   error))
                throw SyncFailure{"invalid next link \"" + *page.next_link + "\": " + error,
                                  false, 0};
            url = next;
            continue;
        }

        bool more = page.next_link.has_value() ||
                    static_cast<int64_t>(page.records.size()) >= context.profile.page_size;
        if (!more || page.records.empty())
            break;
        MappedRecord last = map_record(context.profile, page.records.back());
        Watermark next;
        next.continuation = true;
        next.key = last.key;
        if (last.modified)
            next.modified_micros = last.modified->micros;
        if (last.key.empty())
            throw SyncFailure{"the last record of a page has no key property \"" +
                                  context.profile.key_property + "\", so the next page cannot "
                                  "be requested",
                              false, 0};
        if (!build_query(context.profile, next, request_spec, error))
            throw SyncFailure{"could not build the next request: " + error, false, 0};
        url = request_spec.url;
    }

    if (stats.expected_count && *stats.expected_count != stats.records && !stats.more_pending)
        stats.warning = "the ERP announced " + std::to_string(*stats.expected_count) +
                        " records and the run read " + std::to_string(stats.records) +
                        "; records may have changed while the pages were read";
}

std::string
summary_json(const std::string &connector, long run_id, const std::string &status,
             const RunStats &stats, const std::string &error)
{
    nlohmann::json counts = nlohmann::json::parse(counts_json(stats.counts));
    nlohmann::json doc = {{"connector", connector},
                          {"run_id", run_id},
                          {"status", status},
                          {"pages", stats.pages},
                          {"records", stats.records},
                          {"vin_count", stats.vins.size()},
                          {"counts", counts}};
    doc["expected_count"] =
        stats.expected_count ? nlohmann::json(*stats.expected_count) : nlohmann::json(nullptr);
    if (!stats.warning.empty())
        doc["warning"] = stats.warning;
    if (!error.empty())
        doc["error"] = error;
    return doc.dump();
}

/* Record the end of a run in sync_runs and connector_state. */
void
finish_run(const std::string &connector, long run_id, const RunStats &stats, bool succeeded,
           const std::string &error, bool contact_failed, int poll_interval_seconds,
           const std::string &summary)
{
    Value watermark_modified;
    if (succeeded && stats.max_modified)
        watermark_modified = micros_to_timestamptz_text(*stats.max_modified);
    execute("UPDATE stocktech_sync.sync_runs SET finished_at = pg_catalog.clock_timestamp(), "
            "status = $2, pages = $3::integer, records = $4::integer, "
            "vin_count = $5::integer, expected_count = $6::bigint, summary = $7::jsonb, "
            "error = $8 WHERE id = $1::bigint",
            {std::to_string(run_id), std::string(succeeded ? "succeeded" : "failed"),
             std::to_string(stats.pages), std::to_string(stats.records),
             std::to_string(stats.vins.size()),
             stats.expected_count ? Value(std::to_string(*stats.expected_count)) : Value(),
             summary, error.empty() ? Value() : Value(error)});
    execute("INSERT INTO stocktech_sync.connector_state AS s (connector) VALUES ($1) "
            "ON CONFLICT (connector) DO NOTHING",
            {connector});
    if (succeeded)
        execute("UPDATE stocktech_sync.connector_state SET "
                "watermark_modified = CASE WHEN $2::timestamptz IS NOT NULL AND "
                "  (watermark_modified IS NULL OR $2::timestamptz > watermark_modified OR "
                "   ($2::timestamptz = watermark_modified AND $3 > coalesce(watermark_key, '')))"
                "  THEN $2::timestamptz ELSE watermark_modified END, "
                "watermark_key = CASE WHEN $2::timestamptz IS NOT NULL AND "
                "  (watermark_modified IS NULL OR $2::timestamptz > watermark_modified OR "
                "   ($2::timestamptz = watermark_modified AND $3 > coalesce(watermark_key, '')))"
                "  THEN $3 ELSE watermark_key END, "
                "connected = true, last_contact_at = pg_catalog.clock_timestamp(), "
                "last_error = NULL, last_sync_at = pg_catalog.clock_timestamp(), "
                "last_run_id = $4::bigint, vin_count = $5::integer, "
                "next_run_at = pg_catalog.clock_timestamp() + make_interval(secs => $6::integer), "
                "delta_link = coalesce($7, delta_link) "
                "WHERE connector = $1",
                {connector, watermark_modified, stats.max_key, std::to_string(run_id),
                 std::to_string(stats.vins.size()),
                 std::to_string(stats.more_pending ? 0 : poll_interval_seconds),
                 stats.delta_link.empty() ? Value() : Value(stats.delta_link)});
    else
        execute("UPDATE stocktech_sync.connector_state SET "
                "connected = CASE WHEN $3::boolean THEN false ELSE connected END, "
                "last_contact_at = CASE WHEN $3::boolean THEN last_contact_at "
                "  ELSE pg_catalog.clock_timestamp() END, "
                "last_error = $2, last_error_at = pg_catalog.clock_timestamp(), "
                "last_run_id = $4::bigint, "
                "next_run_at = pg_catalog.clock_timestamp() + make_interval(secs => $5::integer) "
                "WHERE connector = $1",
                {connector, error, std::string(contact_failed ? "true" : "false"),
                 std::to_string(run_id), std::to_string(poll_interval_seconds)});
}

}  // namespace

void
load_current_profile(const std::string &connector, ConnectorProfile &profile, int &version)
{
    auto rows = query_rows(
        "SELECT c.current_version::text, p.profile::text FROM stocktech_sync.connectors c "
        "JOIN stocktech_sync.connector_profiles p "
        "  ON p.connector = c.name AND p.version = c.current_version WHERE c.name = $1",
        {connector}, true);
    if (rows.empty())
        throw SqlError(ERRCODE_UNDEFINED_OBJECT,
                       "connector \"" + connector + "\" does not exist", {},
                       "Connectors are listed in stocktech_sync.connectors.");
    version = std::stoi(*rows[0][0]);
    std::vector<ProfileError> errors;
    if (!parse_profile(*rows[0][1], profile, errors))
        throw SqlError(ERRCODE_INVALID_PARAMETER_VALUE,
                       "profile version " + *rows[0][0] + " of connector \"" + connector +
                           "\" is invalid",
                       format_profile_errors(errors));
}

std::string
run_sync(const std::string &connector, RunMode mode)
{
    CanonicalDateStyle date_style;
    RunStats stats;
    long run_id = 0;
    int poll_interval = 300;
    const SyncConfig *config = nullptr;
    ConnectorContext context;

    {
        Step step(mode);
        config = &current_config();
        context = load_connector(*config, connector);
        poll_interval = static_cast<int>(context.profile.poll_interval_seconds);
        auto rows = query_rows(
            "INSERT INTO stocktech_sync.sync_runs (connector, profile_version, trigger, "
            "watermark_from) VALUES ($1, $2::integer, $3, $4::timestamptz) RETURNING id::text",
            {connector, std::to_string(context.profile_version),
             std::string(mode == RunMode::Worker ? "worker" : "sync_now"),
             context.watermark.modified_micros
                 ? Value(micros_to_timestamptz_text(*context.watermark.modified_micros))
                 : Value()},
            false);
        run_id = std::stol(*rows[0][0]);
        step.commit();
    }

    std::string error;
    bool contact_failed = false;
    bool succeeded = false;
    try
    {
        apply_pending_pages(*config, context, mode, stats);
        fetch_pages(*config, context, mode, run_id, stats);
        succeeded = true;
    }
    catch (const SyncFailure &failure)
    {
        error = failure.message;
        contact_failed = failure.contact_failed;
    }
    catch (const PgError &failure)
    {
        if (mode != RunMode::Worker)
            throw;
        /* The step's transaction is broken: abort it, then record the error. */
        error = failure.what();
        pg_call([] { AbortCurrentTransaction(); });
    }

    std::string summary =
        summary_json(connector, run_id, succeeded ? "succeeded" : "failed", stats, error);
    {
        Step step(mode);
        finish_run(connector, run_id, stats, succeeded, error, contact_failed, poll_interval,
                   summary);
        step.commit();
    }
    if (!succeeded)
        pg_call([&] {
            ereport(mode == RunMode::Worker ? LOG : WARNING,
                    (errmsg("stocktech_sync connector \"%s\": sync run %ld failed: %s",
                            connector.c_str(), run_id, error.c_str())));
        });
    return summary;
}

}  // namespace stocktech::pg
