/*
 * outbound.cpp
 *    Queueing and sending local changes to the ERP (see outbound.hpp).
 *
 * Invariants:
 *  - No transaction is open in Worker mode while requests are in flight:
 *    claiming, sending and recording are separate steps.
 *  - A claimed change holds a lease; a change whose lease expired is
 *    claimed again and resent with the same idempotency key.
 *  - If-Match always carries the ETag as received from the ERP, never "*";
 *    412 and 428 re-read the entity and decide it through the matrix.
 *  - Writes to the queue, the dead letter, the audit log and the vehicle's
 *    ETag and baseline run as the extension owner.
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
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include <algorithm>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/http_client.hpp"
#include "core/mapping.hpp"
#include "core/odata.hpp"
#include "core/profile.hpp"
#include "core/writeback.hpp"
#include "pg/apply.hpp"
#include "pg/boundary.hpp"
#include "pg/config.hpp"
#include "pg/gucs.hpp"
#include "pg/outbound.hpp"
#include "pg/spi_util.hpp"
#include "pg/step.hpp"

namespace stocktech::pg {

namespace {

/* Maximum number of requests in flight at once in one drain round. */
constexpr size_t kParallelRequests = 8;

/* A connector's profile, parsed once per profile version. */
struct CachedProfile
{
    int version = 0;
    ConnectorProfile profile;
};

std::map<std::string, CachedProfile> profiles;

/* CSRF token and session cookies of a connector, kept across drains. */
struct CsrfSession
{
    std::string token;
    std::string cookies;
};

std::map<std::string, CsrfSession> csrf_sessions;

/* Pids of this database's outbound workers, woken at commit. */
List *outbound_pids = NIL;
bool outbound_callback_registered = false;
bool outbound_wake_registered_in_xact = false;

void
wake_outbound_callback(XactEvent event, void *)
{
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
    {
        ListCell *cell;
        foreach (cell, outbound_pids)
        {
            PGPROC *proc = BackendPidGetProc(lfirst_int(cell));
            if (proc != nullptr)
                SetLatch(&proc->procLatch);
        }
    }
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
        event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
    {
        list_free(outbound_pids);
        outbound_pids = NIL;
        outbound_wake_registered_in_xact = false;
    }
}

/* The current profile of a connector, from the cache when its version is known. */
const ConnectorProfile *
profile_of(const std::string &connector, int &version)
{
    ConnectorProfile profile;
    load_current_profile(connector, profile, version);
    CachedProfile &cached = profiles[connector];
    if (cached.version != version)
    {
        cached.version = version;
        cached.profile = std::move(profile);
    }
    return &cached.profile;
}

/* One claimed change. */
struct Claimed
{
    std::string id;
    std::string vin;
    std::string connector;
    nlohmann::json fields;
    Value etag;
    std::string idempotency_key;
    int attempts = 0;
    std::string first_sent_http_date;
    std::string policy_version;
};

/* The request and response of one change in this round. */
struct Result
{
    HttpResponse response;
    bool built = false;
    bool retryable = false; /* the request could not be built for a passing reason */
    std::string build_error;
    HttpRequest request;
};

struct DrainCounts
{
    long claimed = 0, sent = 0, rescheduled = 0, dead_lettered = 0, dropped = 0, resent = 0;
};

std::vector<Claimed>
claim(int limit)
{
    auto rows = query_rows(
        "WITH due AS ("
        "  SELECT q.id FROM stocktech_sync.outbound_queue q"
        "  WHERE ((q.status = 'pending' AND q.next_attempt_at <= pg_catalog.clock_timestamp())"
        "      OR (q.status = 'in_flight' AND q.lease_until < pg_catalog.clock_timestamp()))"
        "    AND q.id = (SELECT min(e.id) FROM stocktech_sync.outbound_queue e"
        "                WHERE e.vin = q.vin AND e.status <> 'done')"
        "  ORDER BY q.id LIMIT $1::integer FOR UPDATE OF q SKIP LOCKED) "
        "UPDATE stocktech_sync.outbound_queue q SET status = 'in_flight', "
        "  lease_until = pg_catalog.clock_timestamp() + make_interval(secs => $2::integer), "
        "  lease_owner = pg_catalog.pg_backend_pid(), attempts = q.attempts + 1, "
        "  first_sent_at = coalesce(q.first_sent_at, pg_catalog.clock_timestamp()) "
        "FROM due WHERE q.id = due.id "
        "RETURNING q.id::text, q.vin, q.connector, q.fields::text, q.etag, "
        "  q.idempotency_key::text, q.attempts::text, "
        "  to_char(q.first_sent_at AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS \"GMT\"'), "
        "  q.policy_version",
        {std::to_string(limit), std::to_string(setting_outbound_lease)}, false);
    std::vector<Claimed> claimed;
    for (auto &row : rows)
    {
        Claimed change;
        change.id = row[0].value_or("");
        change.vin = row[1].value_or("");
        change.connector = row[2].value_or("");
        change.fields = nlohmann::json::parse(row[3].value_or("{}"), nullptr, false);
        change.etag = row[4];
        change.idempotency_key = row[5].value_or("");
        change.attempts = std::stoi(row[6].value_or("1"));
        change.first_sent_http_date = row[7].value_or("");
        change.policy_version = row[8].value_or("");
        claimed.push_back(std::move(change));
    }
    std::sort(claimed.begin(), claimed.end(), [](const Claimed &a, const Claimed &b) {
        return std::stol(a.id) < std::stol(b.id);
    });
    return claimed;
}

HttpOptions
outbound_http_options()
{
    HttpOptions options;
    options.connect_timeout_ms = setting_http_connect_timeout;
    options.total_timeout_ms = setting_http_timeout;
    options.max_response_bytes = static_cast<size_t>(setting_http_max_response_kb) * 1024;
    options.ca_file = setting_http_ca_file ? setting_http_ca_file : "";
    options.should_abort = [] { return QueryCancelPending || ProcDiePending; };
    return options;
}

/* Authentication headers of a connector for writes (basic and bearer). */
void
add_auth(const std::string &connector, const ConnectorProfile &profile, HttpRequest &request,
         const SyncConfig &config)
{
    const AuthConfig &auth = profile.auth;
    if (auth.type == AuthType::None)
        return;
    std::string name = auth.type == AuthType::Basic ? auth.password_secret : auth.token_secret;
    Value value;
    as_extension_owner(config, [&] {
        auto rows = query_rows("SELECT value FROM stocktech_sync.connector_secrets "
                               "WHERE connector = $1 AND name = $2",
                               {connector, name}, true);
        if (!rows.empty())
            value = rows[0][0];
    });
    if (auth.type == AuthType::Basic && value)
    {
        if (auto header = basic_authorization(auth.username, *value))
            request.headers.emplace_back("Authorization", *header);
    }
    else if (auth.type == AuthType::Bearer && value)
        request.headers.emplace_back("Authorization", "Bearer " + *value);
    /* NOTE: OAuth2 and session-login connectors are not yet supported for
     * write-back; their requests go out without credentials and fail with
     * 401, which is retried and dead-lettered. */
}

/* A CSRF session belongs to a connector and its service root, so a profile
 * that moves to another host starts a new session. */
std::string
csrf_key(const std::string &connector, const ConnectorProfile &profile)
{
    return connector + " " + profile.service_root;
}

/* Fetch a CSRF token and session cookies for a connector; auth contains the
 * connector's authentication headers.  Runs with no transaction open. */
bool
fetch_csrf(const std::string &connector, const ConnectorProfile &profile, const HttpHeaders &auth,
           std::string &error)
{
    HttpRequest request;
    request.method = profile.write_back.csrf.head_first ? "HEAD" : "GET";
    request.url = profile.service_root;
    request.headers = {{"X-CSRF-Token", "Fetch"}, {"Accept", "application/json"}};
    request.headers.insert(request.headers.end(), auth.begin(), auth.end());
    HttpResponse response = http_perform(request, outbound_http_options());
    if (response.status == 405 && request.method == "HEAD")
    {
        request.method = "GET";
        response = http_perform(request, outbound_http_options());
    }
    if (response.error == HttpError::Aborted)
        throw SyncInterrupted{};
    auto token = response.header("x-csrf-token");
    if (!token || response.status / 100 != 2)
    {
        error = "could not fetch a CSRF token: " +
                (response.error != HttpError::None
                     ? response.error_message
                     : "HTTP " + std::to_string(response.status) +
                           (token ? "" : " without an x-csrf-token header"));
        return false;
    }
    CsrfSession session;
    session.token = *token;
    for (const std::string &cookie : response.set_cookies())
    {
        if (!session.cookies.empty())
            session.cookies += "; ";
        session.cookies += cookie.substr(0, cookie.find(';'));
    }
    csrf_sessions[csrf_key(connector, profile)] = session;
    return true;
}

/* The request's authentication headers, for a CSRF fetch. */
HttpHeaders
auth_headers(const HttpRequest &request)
{
    HttpHeaders auth;
    for (const auto &header : request.headers)
    {
        if (header.first == "Authorization")
            auth.push_back(header);
    }
    return auth;
}

/* Put the connector's CSRF token and cookies on a request, fetching them
 * first when there are none. */
bool
add_csrf(const std::string &connector, const ConnectorProfile &profile, HttpRequest &request,
         std::string &error)
{
    auto session = csrf_sessions.find(csrf_key(connector, profile));
    if (session == csrf_sessions.end())
    {
        if (!fetch_csrf(connector, profile, auth_headers(request), error))
            return false;
        session = csrf_sessions.find(csrf_key(connector, profile));
    }
    HttpHeaders headers;
    for (const auto &header : request.headers)
    {
        if (header.first != "X-CSRF-Token" && header.first != "Cookie")
            headers.push_back(header);
    }
    headers.emplace_back("X-CSRF-Token", session->second.token);
    if (!session->second.cookies.empty())
        headers.emplace_back("Cookie", session->second.cookies);
    request.headers = headers;
    return true;
}

/* The write request of one change. */
bool
build_request(const Claimed &change, const ConnectorProfile &profile, const SyncConfig &config,
              HttpRequest &request, std::string &error)
{
    if (!profile.write_back.enabled)
    {
        error = "the profile of connector \"" + change.connector + "\" has no enabled write_back";
        return false;
    }
    if (!change.etag && profile.etag == EtagMode::Required)
    {
        error = "no ETag is known for the vehicle, and the profile requires If-Match";
        return false;
    }
    nlohmann::json body;
    if (!build_write_body(profile, change.fields, body, error))
        return false;
    if (!write_url(profile, change.vin, request.url, error))
        return false;

    request.method = profile.write_back.method == WriteMethod::Merge
                         ? "MERGE"
                         : (profile.write_back.method == WriteMethod::Put ? "PUT" : "PATCH");
    request.body = body.dump();
    request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    if (change.etag && profile.etag != EtagMode::Ignore)
        request.headers.emplace_back("If-Match", *change.etag);
    if (profile.write_back.repeatable_requests)
    {
        request.headers.emplace_back("Repeatability-Request-ID", change.idempotency_key);
        request.headers.emplace_back("Repeatability-First-Sent", change.first_sent_http_date);
    }
    add_auth(change.connector, profile, request, config);
    return true;
}

/* The ERP's error code and message from an OData error body. */
void
erp_error(const HttpResponse &response, Value &code, Value &message)
{
    nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, false);
    if (!doc.is_object() || !doc.contains("error") || !doc["error"].is_object())
    {
        message = parse_error_body(response.status,
                                   response.header("content-type").value_or(""), response.body);
        return;
    }
    const nlohmann::json &error = doc["error"];
    if (error.contains("code") && error["code"].is_string())
        code = error["code"].get<std::string>();
    if (error.contains("message"))
    {
        const nlohmann::json &text = error["message"];
        if (text.is_string())
            message = text.get<std::string>();
        else if (text.is_object() && text.contains("value") && text["value"].is_string())
            message = text["value"].get<std::string>();
    }
}

void
audit_result(const SyncConfig &config, const Claimed &change, const std::string &decision,
             const std::string &reason, const nlohmann::json &detail)
{
    nlohmann::json decisions = nlohmann::json::array();
    for (auto it = change.fields.begin(); it != change.fields.end(); ++it)
        decisions.push_back({{"field", it.key()},
                             {"new", it.value()},
                             {"decision", decision},
                             {"reason", reason}});
    as_extension_owner(config, [&] {
        query_rows("INSERT INTO stocktech_sync.audit_log (vin, event, source, policy_version, "
                   "connector, decisions, detail) VALUES ($1, 'outbound_result', 'system', $2, "
                   "$3, $4::jsonb, $5::jsonb)",
                   {change.vin, change.policy_version, change.connector, decisions.dump(),
                    detail.dump()},
                   false);
    });
}

void
dead_letter(const SyncConfig &config, const Claimed &change, const HttpResponse *response,
            const std::string &reason, DrainCounts &counts)
{
    Value code;
    Value message;
    if (response != nullptr && response->error == HttpError::None)
        erp_error(*response, code, message);
    Value status = response != nullptr && response->status > 0
                       ? Value(std::to_string(response->status))
                       : Value();
    as_extension_owner(config, [&] {
        query_rows(
            "WITH moved AS (DELETE FROM stocktech_sync.outbound_queue WHERE id = $1::bigint "
            "  RETURNING *) "
            "INSERT INTO stocktech_sync.outbound_dead_letter (outbound_id, vin, connector, "
            "  fields, etag, idempotency_key, policy_version, queued_at, attempts, http_status, "
            "  erp_code, erp_message, reason) "
            "SELECT id, vin, connector, fields, etag, idempotency_key, policy_version, "
            "  created_at, attempts, $2::integer, $3, $4, $5 FROM moved",
            {change.id, status, code, message, reason}, false);
    });
    audit_result(config, change, "rejected", reason,
                 {{"outbound_id", std::stol(change.id)}, {"dead_letter", true},
                  {"http_status", status ? nlohmann::json(std::stoi(*status))
                                         : nlohmann::json(nullptr)}});
    std::string vin = change.vin;
    pg_call([&] {
        ereport(LOG, (errmsg("stocktech_sync connector \"%s\": outbound change %s of vehicle "
                             "\"%s\" dead-lettered: %s",
                             change.connector.c_str(), change.id.c_str(), vin.c_str(),
                             reason.c_str())));
    });
    counts.dead_lettered++;
}

void
reschedule(const Claimed &change, const SyncConfig &config, long delay_ms,
           const std::string &error, int http_status, DrainCounts &counts)
{
    as_extension_owner(config, [&] {
        query_rows("UPDATE stocktech_sync.outbound_queue SET status = 'pending', "
                   "lease_until = NULL, lease_owner = NULL, "
                   "next_attempt_at = pg_catalog.clock_timestamp() + "
                   "  make_interval(secs => $2::double precision / 1000), "
                   "last_error = $3, last_http_status = $4::integer WHERE id = $1::bigint",
                   {change.id, std::to_string(delay_ms), error,
                    http_status > 0 ? Value(std::to_string(http_status)) : Value()},
                   false);
    });
    counts.rescheduled++;
}

void
mark_sent(const SyncConfig &config, const Claimed &change, const HttpResponse &response,
          DrainCounts &counts)
{
    Value etag = response.header("etag");
    as_extension_owner(config, [&] {
        query_rows("UPDATE stocktech_sync.outbound_queue SET status = 'done', "
                   "done_at = pg_catalog.clock_timestamp(), lease_until = NULL, "
                   "last_http_status = $2::integer, acknowledged_etag = $3, outcome = 'sent', "
                   "last_error = NULL WHERE id = $1::bigint",
                   {change.id, std::to_string(response.status), etag}, false);
    });
    /* The ERP now holds these values: they become the baseline, and its new
     * ETag guards the next write.  The vehicle's next queued change was made
     * against the same ERP state unless an ERP change arrived in between,
     * so it takes the new ETag only when it carries the one just used. */
    acknowledge_outbound(change.vin, change.fields, etag);
    if (etag)
        as_extension_owner(config, [&] {
            query_rows("UPDATE stocktech_sync.outbound_queue SET etag = $3 "
                       "WHERE vin = $1 AND status = 'pending' AND etag IS NOT DISTINCT FROM $2",
                       {change.vin, change.etag, etag}, false);
        });
    audit_result(config, change, "applied",
                 "the ERP accepted the change (HTTP " + std::to_string(response.status) + ")",
                 {{"outbound_id", std::stol(change.id)},
                  {"etag", etag ? nlohmann::json(*etag) : nlohmann::json(nullptr)}});
    counts.sent++;
}

/* The stored canonical texts of the governed fields named in fields, in
 * their order. */
std::vector<Value>
current_texts(const std::string &vin, const nlohmann::json &fields)
{
    std::string columns;
    for (auto it = fields.begin(); it != fields.end(); ++it)
    {
        if (field_index(it.key()) < 0)
            return {};
        columns += (columns.empty() ? "" : ", ") + it.key();
    }
    if (columns.empty())
        return {};
    /* Not read-only: the query must see the re-read the drain just applied. */
    auto rows = query_rows("SELECT " + columns + " FROM stocktech_sync.vin_master WHERE vin = $1",
                           {vin}, false);
    return rows.empty() ? std::vector<Value>() : rows[0];
}

/* 412 or 428: read the entity again, apply it through the matrix, and keep
 * only the fields whose local value still stands. */
void
resolve_concurrency(const SyncConfig &config, const Claimed &change,
                    const ConnectorProfile &profile, int profile_version,
                    const HttpResponse &response, DrainCounts &counts)
{
    HttpRequest read;
    std::string error;
    read.method = "GET";
    if (!write_url(profile, change.vin, read.url, error))
    {
        dead_letter(config, change, &response, error, counts);
        return;
    }
    read.headers = {{"Accept", "application/json"}};
    add_auth(change.connector, profile, read, config);
    HttpResponse entity = http_perform(read, outbound_http_options());
    if (entity.error == HttpError::Aborted)
        throw SyncInterrupted{};
    if (entity.status / 100 != 2)
    {
        reschedule(change, config, setting_http_retry_base_delay,
                   "re-reading the entity after HTTP " + std::to_string(response.status) +
                       " failed: " + (entity.error != HttpError::None
                                          ? entity.error_message
                                          : "HTTP " + std::to_string(entity.status)),
                   response.status, counts);
        return;
    }

    nlohmann::json doc = nlohmann::json::parse(entity.body, nullptr, false);
    if (doc.is_object() && doc.contains("d") && doc["d"].is_object())
        doc = doc["d"]; /* OData V2 wraps a single entity in "d" */
    MappedRecord mapped = map_record(profile, doc);
    if (!mapped.etag)
        mapped.etag = entity.header("etag");
    if (!mapped.ok())
    {
        dead_letter(config, change, &response,
                    "the re-read entity does not map: " + mapping_errors_text(mapped), counts);
        return;
    }
    InboundRecord inbound;
    add_mapped_columns(mapped, inbound);
    inbound.source = Source::Erp;
    inbound.source_ts = mapped.modified ? mapped.modified->micros - INT64CONST(946684800000000)
                                        : GetCurrentTimestamp();
    inbound.connector = change.connector;
    inbound.profile_version = profile_version;
    inbound.source_ref = "re-read after HTTP " + std::to_string(response.status);
    apply_inbound(inbound);

    /* Which of the change's values still stand locally? */
    std::vector<Value> now = current_texts(change.vin, change.fields);
    nlohmann::json keep = nlohmann::json::object();
    nlohmann::json dropped = nlohmann::json::object();
    size_t position = 0;
    for (auto it = change.fields.begin(); it != change.fields.end(); ++it, ++position)
    {
        Value wanted = it.value().is_null() ? Value() : Value(it.value().get<std::string>());
        bool stands = position < now.size() && now[position] == wanted;
        (stands ? keep : dropped)[it.key()] = it.value();
    }

    if (keep.empty())
    {
        as_extension_owner(config, [&] {
            query_rows("UPDATE stocktech_sync.outbound_queue SET status = 'done', "
                       "done_at = pg_catalog.clock_timestamp(), lease_until = NULL, "
                       "last_http_status = $2::integer, outcome = $3 WHERE id = $1::bigint",
                       {change.id, std::to_string(response.status),
                        std::string("dropped: the ERP changed the vehicle and the matrix kept "
                                    "its values")},
                       false);
        });
        audit_result(config, change, "ignored",
                     "not sent: the ERP changed the vehicle (HTTP " +
                         std::to_string(response.status) +
                         ") and the matrix decided for the ERP's values",
                     {{"outbound_id", std::stol(change.id)}, {"dropped", true}});
        counts.dropped++;
        return;
    }

    as_extension_owner(config, [&] {
        query_rows("UPDATE stocktech_sync.outbound_queue SET status = 'pending', "
                   "lease_until = NULL, next_attempt_at = pg_catalog.clock_timestamp(), "
                   "fields = $2::jsonb, etag = $3, last_http_status = $4::integer, "
                   "last_error = $5 WHERE id = $1::bigint",
                   {change.id, keep.dump(), mapped.etag, std::to_string(response.status),
                    std::string("resending with the ETag read after HTTP ") +
                        std::to_string(response.status)},
                   false);
    });
    if (!dropped.empty())
    {
        Claimed partial = change;
        partial.fields = dropped;
        audit_result(config, partial, "ignored",
                     "not sent: the ERP changed these fields and the matrix kept its values",
                     {{"outbound_id", std::stol(change.id)}});
    }
    counts.resent++;
}

long
retry_delay(const Claimed &change, const HttpResponse &response)
{
    static std::mt19937_64 random{std::random_device{}()};
    long delay = backoff_delay_ms(change.attempts - 1, setting_http_retry_base_delay,
                                  setting_http_retry_max_delay, random());
    if (auto retry_after = response.header("retry-after"))
    {
        if (auto seconds = parse_retry_after(*retry_after, std::time(nullptr)))
            delay = std::min<long>(*seconds * 1000L, setting_http_retry_max_delay);
    }
    return delay;
}

/* Record the result of one change. */
void
record_result(const SyncConfig &config, const Claimed &change, const Result &result,
              DrainCounts &counts)
{
    if (!result.built && result.retryable && change.attempts < setting_http_max_attempts)
    {
        HttpResponse none;
        reschedule(change, config, retry_delay(change, none), result.build_error, 0, counts);
        return;
    }
    if (!result.built)
    {
        dead_letter(config, change, nullptr,
                    result.retryable ? "failed after " + std::to_string(change.attempts) +
                                           " attempts: " + result.build_error
                                     : result.build_error,
                    counts);
        return;
    }
    const HttpResponse &response = result.response;
    int version = 0;
    const ConnectorProfile *profile = profile_of(change.connector, version);
    FailureClass failure = classify_response(response, true);
    std::string what = response.error != HttpError::None
                           ? response.error_message
                           : parse_error_body(response.status,
                                              response.header("content-type").value_or(""),
                                              response.body);
    switch (failure)
    {
        case FailureClass::Success:
            mark_sent(config, change, response, counts);
            return;
        case FailureClass::Concurrency:
            if (change.attempts >= setting_http_max_attempts)
                dead_letter(config, change, &response,
                            "the ERP kept reporting concurrent changes: " + what, counts);
            else
                resolve_concurrency(config, change, *profile, version, response, counts);
            return;
        case FailureClass::Transient:
        case FailureClass::Configuration:
            if (change.attempts >= setting_http_max_attempts)
            {
                dead_letter(config, change, &response,
                            "failed after " + std::to_string(change.attempts) +
                                " attempts: " + what,
                            counts);
                return;
            }
            {
                long delay = retry_delay(change, response);
                std::string vin = change.vin;
                pg_call([&] {
                    ereport(LOG, (errmsg("stocktech_sync connector \"%s\": outbound change %s "
                                         "of vehicle \"%s\" failed (%s); retrying in %ld ms",
                                         change.connector.c_str(), change.id.c_str(),
                                         vin.c_str(), what.c_str(), delay)));
                });
                reschedule(change, config, delay, what, response.status, counts);
            }
            return;
        case FailureClass::Permanent:
            dead_letter(config, change, &response, what, counts);
            return;
        case FailureClass::Aborted:
            throw SyncInterrupted{};
    }
}

/* Build the requests of the claimed changes; needs SPI for the profiles
 * and secrets, sends nothing. */
std::vector<Result>
build_all(const SyncConfig &config, const std::vector<Claimed> &claimed,
          std::vector<const ConnectorProfile *> &used_profiles)
{
    std::vector<Result> results(claimed.size());
    used_profiles.assign(claimed.size(), nullptr);
    for (size_t i = 0; i < claimed.size(); i++)
    {
        int version = 0;
        used_profiles[i] = profile_of(claimed[i].connector, version);
        results[i].built = build_request(claimed[i], *used_profiles[i], config,
                                         results[i].request, results[i].build_error);
    }
    return results;
}

/* Send the built requests with no transaction open, adding CSRF tokens and
 * refreshing a token on a 403 that requires one. */
void
send_all(const std::vector<Claimed> &claimed, const std::vector<const ConnectorProfile *> &used,
         std::vector<Result> &results)
{
    std::vector<HttpRequest> requests;
    std::vector<size_t> positions;
    for (size_t i = 0; i < claimed.size(); i++)
    {
        if (!results[i].built)
            continue;
        if (used[i]->write_back.csrf.fetch &&
            !add_csrf(claimed[i].connector, *used[i], results[i].request,
                      results[i].build_error))
        {
            /* The ERP may be down: the token fetch is retried like a write. */
            results[i].built = false;
            results[i].retryable = true;
            continue;
        }
        requests.push_back(results[i].request);
        positions.push_back(i);
    }

    pgstat_report_wait_start(PG_WAIT_EXTENSION);
    std::vector<HttpResponse> responses =
        http_perform_many(requests, outbound_http_options(), kParallelRequests);
    pgstat_report_wait_end();
    for (size_t j = 0; j < positions.size(); j++)
    {
        if (responses[j].error == HttpError::Aborted)
            throw SyncInterrupted{};
        results[positions[j]].response = responses[j];
    }

    /* 403 with "X-CSRF-Token: Required": resend one by one, first with a
     * token another request already fetched, then with one fresh token of
     * its own.  Each change refreshes at most once, so a server that keeps
     * rejecting tokens cannot make the drain loop. */
    for (size_t i = 0; i < claimed.size(); i++)
    {
        if (!results[i].built || !csrf_token_required(results[i].response))
            continue;
        const std::string &connector = claimed[i].connector;
        std::string key = csrf_key(connector, *used[i]);
        std::string error;
        std::string failed_token;
        for (const auto &header : results[i].request.headers)
        {
            if (header.first == "X-CSRF-Token")
                failed_token = header.second;
        }
        auto session = csrf_sessions.find(key);
        bool newer_token = session != csrf_sessions.end() && session->second.token != failed_token;
        if (newer_token && add_csrf(connector, *used[i], results[i].request, error))
        {
            results[i].response = http_perform(results[i].request, outbound_http_options());
            if (results[i].response.error == HttpError::Aborted)
                throw SyncInterrupted{};
            if (!csrf_token_required(results[i].response))
                continue;
        }
        csrf_sessions.erase(key);
        if (!add_csrf(connector, *used[i], results[i].request, error))
            continue;
        results[i].response = http_perform(results[i].request, outbound_http_options());
        if (results[i].response.error == HttpError::Aborted)
            throw SyncInterrupted{};
    }
}

}  // namespace

void
wake_outbound_at_commit()
{
    if (!outbound_callback_registered)
    {
        RegisterXactCallback(wake_outbound_callback, nullptr);
        outbound_callback_registered = true;
    }
    if (outbound_wake_registered_in_xact)
        return;
    outbound_wake_registered_in_xact = true;
    auto rows = query_rows("SELECT pid::text FROM pg_catalog.pg_stat_activity "
                           "WHERE backend_type = 'stocktech_sync outbound' "
                           "AND datname = pg_catalog.current_database()",
                           {}, true);
    pg_call([&] {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        for (const auto &row : rows)
        {
            if (row[0])
                outbound_pids = lappend_int(outbound_pids, atoi(row[0]->c_str()));
        }
        MemoryContextSwitchTo(old);
    });
}

std::string
enqueue_outbound(const SyncConfig &config, const std::string &vin, const Value &connector,
                 const Value &etag, const nlohmann::json &fields, long audit_id)
{
    /* The connector that supplied the vehicle, else the only one that writes back. */
    std::string target;
    if (connector)
        target = *connector;
    else
    {
        auto rows = query_rows(
            "SELECT c.name FROM stocktech_sync.connectors c "
            "JOIN stocktech_sync.connector_profiles p "
            "  ON p.connector = c.name AND p.version = c.current_version "
            "WHERE c.kind <> 'csv' AND (p.profile #>> '{write_back,enabled}')::boolean",
            {}, true);
        if (rows.size() != 1)
            return rows.empty() ? "no connector writes back to the ERP"
                                : "several connectors write back and the vehicle came from none";
        target = *rows[0][0];
    }

    int version = 0;
    const ConnectorProfile *profile = profile_of(target, version);
    if (!profile->write_back.enabled)
        return "connector \"" + target + "\" does not write back";
    nlohmann::json sent = nlohmann::json::object();
    for (auto it = fields.begin(); it != fields.end(); ++it)
    {
        const auto &allowed = profile->write_back.fields;
        if (std::find(allowed.begin(), allowed.end(), it.key()) != allowed.end())
            sent[it.key()] = it.value();
    }
    if (sent.empty())
        return "connector \"" + target + "\" writes none of the changed fields";

    as_extension_owner(config, [&] {
        query_rows("INSERT INTO stocktech_sync.outbound_queue (vin, connector, fields, etag, "
                   "policy_version, audit_id) VALUES ($1, $2, $3::jsonb, $4, $5, $6::bigint)",
                   {vin, target, sent.dump(), etag, config.policy_version,
                    audit_id > 0 ? Value(std::to_string(audit_id)) : Value()},
                   false);
    });
    wake_outbound_at_commit();
    return {};
}

std::string
drain_outbound(int max, RunMode mode)
{
    CanonicalDateStyle date_style;
    DrainCounts counts;

    while (counts.claimed < max)
    {
        /* One round sends at most kParallelRequests changes at once, so a
         * round lasts about one request and stays well inside the lease. */
        int limit = static_cast<int>(std::min<long>(max - counts.claimed, kParallelRequests));
        std::vector<Claimed> claimed;
        const SyncConfig *config = nullptr;
        {
            Step step(mode);
            config = &current_config();
            as_extension_owner(*config, [&] { claimed = claim(limit); });
            step.commit();
        }
        if (claimed.empty())
            break;
        counts.claimed += static_cast<long>(claimed.size());

        std::vector<Result> results;
        std::vector<const ConnectorProfile *> used_profiles;
        {
            Step step(mode);
            config = &current_config();
            results = build_all(*config, claimed, used_profiles);
            step.commit();
        }
        send_all(claimed, used_profiles, results);
        {
            Step step(mode);
            config = &current_config();
            for (size_t i = 0; i < claimed.size(); i++)
            {
                pg_call([] { SPI_connect(); });
                record_result(*config, claimed[i], results[i], counts);
                pg_call([] { SPI_finish(); });
            }
            step.commit();
        }
        if (QueryCancelPending || ProcDiePending)
            throw SyncInterrupted{};
    }

    nlohmann::json doc = {{"claimed", counts.claimed},     {"sent", counts.sent},
                          {"rescheduled", counts.rescheduled},
                          {"dead_lettered", counts.dead_lettered},
                          {"dropped", counts.dropped},     {"resent", counts.resent}};
    return doc.dump();
}

}  // namespace stocktech::pg
