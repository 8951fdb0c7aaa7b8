/*
 * http_client.hpp
 *    HTTP client for the sync workers: transfers through the libcurl multi
 *    interface, Retry-After parsing, backoff delays, the failure class of a
 *    response, Basic authorization and redaction of secrets for logs.
 *
 * Invariants:
 *  - http_perform and http_perform_many never throw: out of memory and
 *    other internal failures are reported as HttpError::Other.  The
 *    helpers that return strings throw only std::bad_alloc.
 *  - Transfers run in the calling thread, which drives libcurl between
 *    calls to HttpOptions::should_abort.  libcurl never installs signal
 *    handlers (CURLOPT_NOSIGNAL), because PostgreSQL owns SIGALRM.
 *  - Only http and https URLs are fetched, redirects are never followed,
 *    proxies come only from HttpOptions::proxy (never from the
 *    environment), and TLS peers are verified unless verify_tls is false.
 *  - A response body never grows past HttpOptions::max_response_bytes.
 *
 * This file includes no PostgreSQL header.
 */
#ifndef STOCKTECH_CORE_HTTP_CLIENT_HPP
#define STOCKTECH_CORE_HTTP_CLIENT_HPP

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stocktech {

/* HTTP header fields as (name, value) pairs, in the order they were sent. */
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/* Transport-level outcome of a transfer.  None means that a complete
 * response arrived, whatever its status code. */
enum class HttpError
{
    None,
    Timeout,        /* connect or total timeout expired */
    Connection,     /* connection refused, reset, or closed before the response ended */
    Resolve,        /* host name (or proxy name) could not be resolved */
    TooLarge,       /* body or announced Content-Length above max_response_bytes */
    Aborted,        /* should_abort returned true */
    Tls,            /* certificate verification failed or TLS was misconfigured */
    Protocol,       /* malformed HTTP reply or content encoding */
    InvalidUrl,     /* not an absolute http or https URL; nothing was sent */
    InvalidRequest, /* invalid method, header, cookie or option; nothing was sent */
    Other,          /* out of memory or an unexpected libcurl error */
};

/* The enumerator name of error, such as "Timeout", for logs. */
const char *http_error_name(HttpError error);

struct HttpRequest
{
    /* Request method token: GET, HEAD, POST, PUT, PATCH, DELETE, MERGE... */
    std::string method = "GET";
    std::string url;
    /* Sent in this order.  A header set here replaces the one libcurl would
     * add (User-Agent, Accept, Content-Type). */
    HttpHeaders headers;
    /* Sent with a Content-Length for every method except GET, HEAD and
     * DELETE, even when empty.  GET and DELETE send it only when it is not
     * empty, and a HEAD request with a body is rejected. */
    std::string body;
};

struct HttpOptions
{
    /* Maximum time for the TCP and TLS handshakes, in milliseconds; > 0. */
    long connect_timeout_ms = 10000;
    /* Maximum time for the whole transfer, in milliseconds; > 0. */
    long total_timeout_ms = 60000;
    /* Maximum size of the decoded response body, in bytes.  A response whose
     * Content-Length is larger fails before its body is read. */
    size_t max_response_bytes = 64 * 1024 * 1024;
    /* PEM file of trusted CA certificates; empty for the system store. */
    std::string ca_file;
    bool verify_tls = true;
    /* Called between polls, at least every poll_interval_ms, in the calling
     * thread.  Returning true ends all transfers with HttpError::Aborted.
     * It must not throw and must not longjmp (no ereport and no
     * CHECK_FOR_INTERRUPTS), or libcurl handles and sockets leak. */
    std::function<bool()> should_abort;
    /* Maximum wait in curl_multi_poll between checks of should_abort, in
     * milliseconds; > 0. */
    long poll_interval_ms = 100;
    /* Cookie header to send, "name=value; name2=value2"; empty for none. */
    std::string cookies;
    /* Proxy URL ("http://proxy:3128"); empty for a direct connection.
     * http_proxy and the other environment variables are ignored. */
    std::string proxy;
};

struct HttpResponse
{
    /* Status code of the final response, 0 when no status line arrived. */
    int status = 0;
    /* Header fields of the final response: names in lower case, values
     * without surrounding whitespace, in the order received. */
    HttpHeaders headers;
    /* Decoded body.  Empty when error is not None. */
    std::string body;
    HttpError error = HttpError::None;
    /* libcurl's description of the error, or ours; empty when error is None. */
    std::string error_message;
    /* Time from the start of this transfer to its end, in milliseconds. */
    long elapsed_ms = 0;

    /* The value of the first header field named name (any case). */
    std::optional<std::string> header(std::string_view name) const;
    /* The values of all Set-Cookie fields, in order. */
    std::vector<std::string> set_cookies() const;
};

/*
 * Performs one request through a libcurl multi handle driven in the
 * calling thread, polling at most poll_interval_ms between calls to
 * should_abort.  A 3xx response is returned as it is.  Never throws.
 *
 * NOTE: every call opens new connections, because the multi handle and its
 * connection cache live only for the call.
 */
HttpResponse http_perform(const HttpRequest &request, const HttpOptions &options);

/*
 * Performs several requests through one multi handle, with at most
 * max_parallel transfers at a time (0 counts as 1), under the same rules as
 * http_perform.  Returns one response per request, in request order.  When
 * should_abort returns true, running and not yet started transfers end with
 * HttpError::Aborted.  Returns an empty vector only if memory for the
 * results cannot be allocated.
 */
std::vector<HttpResponse> http_perform_many(const std::vector<HttpRequest> &requests,
                                            const HttpOptions &options, size_t max_parallel);

/*
 * Parses a Retry-After field value (RFC 9110 section 10.2.3) and returns
 * the delay in seconds from now.  Accepts delta-seconds and the three
 * HTTP-date forms: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the
 * obsolete RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT") and the asctime
 * form ("Sun Nov  6 08:49:37 1994").  A date in the past gives 0.  Month
 * and day names are matched in any case.  Returns nullopt for any other
 * value.  Delays too long for a long saturate at LONG_MAX.
 */
std::optional<long> parse_retry_after(std::string_view value, std::time_t now);

/*
 * Computes the delay before retry number attempt (0 for the first retry)
 * with exponential backoff and full jitter: a value in
 * [0, min(cap_ms, base_ms * 2^attempt)] chosen by random_bits, so that the
 * caller supplies the randomness and tests are deterministic.  Returns 0
 * when base_ms or cap_ms is not positive; a negative attempt counts as 0.
 */
long backoff_delay_ms(int attempt, long base_ms, long cap_ms, uint64_t random_bits);

/* The action that a caller takes after a response. */
enum class FailureClass
{
    Success,       /* use the response */
    Transient,     /* retry with backoff, honouring Retry-After */
    Concurrency,   /* re-read the entity and decide again; never retry with If-Match: * */
    Permanent,     /* move the change to the dead letter with status and ERP message */
    Configuration, /* stop the connector and report: fix its credentials, URL or CA file */
    Aborted,       /* stop at once: the caller asked for it through should_abort */
};

/* The enumerator name of failure_class, such as "Transient", for logs. */
const char *failure_class_name(FailureClass failure_class);

/*
 * Classifies a response of a read (GET of an entity set) or of a write.
 * The transport error is checked first, then the status code:
 *
 *   response                                     read            write
 *   error Aborted                                Aborted         Aborted
 *   error Timeout, Connection, Resolve, Other    Transient       Transient
 *   error TooLarge, Protocol                     Transient       Permanent
 *   error Tls, InvalidUrl, InvalidRequest        Configuration   Configuration
 *   2xx                                          Success         Success
 *   3xx (redirects are never followed)           Configuration   Permanent
 *   401, 407                                     Configuration   Configuration
 *   403 with X-CSRF-Token: Required              Transient       Transient
 *   408, 423, 425, 429, 5xx                      Transient       Transient
 *   412, 428                                     Concurrency     Concurrency
 *   400, 404, 422, other 403 and other 4xx       Configuration   Permanent
 *   1xx, or a status outside 100..599            Transient       Permanent
 *
 * A 403 with X-CSRF-Token: Required is Transient so that the caller fetches
 * a new token and sends the request again, once.  The caller must treat a
 * second such 403 in a row as Permanent; csrf_token_required detects it.
 */
FailureClass classify_response(const HttpResponse &response, bool is_write);

/* Returns whether response is a 403 whose X-CSRF-Token field is "Required",
 * the SAP Gateway reply to a write with a missing or expired token. */
bool csrf_token_required(const HttpResponse &response);

/* Encodes data in base64 with the standard alphabet and '=' padding
 * (RFC 4648 section 4). */
std::string base64_encode(std::string_view data);

/*
 * Builds the Authorization field value for HTTP Basic authentication
 * (RFC 7617): "Basic " and the base64 of "user:password", bytes unchanged
 * (UTF-8 expected).  Returns nullopt when user contains a colon or either
 * part contains a control character, which RFC 7617 forbids.
 */
std::optional<std::string> basic_authorization(std::string_view user, std::string_view password);

/*
 * Returns url with secrets replaced by "***" for logging: the password of
 * the userinfo and the values of query parameters whose names suggest a
 * secret (password, token, secret, key, signature...).  OData system query
 * options such as $skiptoken are kept.  Works on invalid URLs too.
 */
std::string redact_url(std::string_view url);

/*
 * Returns value, or "***" in place of its secret part when name is a field
 * that carries credentials: Authorization and Proxy-Authorization keep
 * their scheme ("Basic ***"); Cookie, Set-Cookie, X-API-Key become "***";
 * X-CSRF-Token becomes "***" except for the keywords Fetch and Required.
 */
std::string redact_header_value(std::string_view name, std::string_view value);

/* Returns headers with each value passed through redact_header_value. */
HttpHeaders redact_headers(const HttpHeaders &headers);

}  // namespace stocktech

#endif
