/*
 * http_client.cpp
 *    libcurl transfers driven through the multi interface, collection of
 *    header fields and bodies under a size cap, and the pure helpers of
 *    http_client.hpp (Retry-After, backoff, classification, base64,
 *    redaction).
 *
 * Every libcurl handle is owned by an RAII wrapper, so every return path,
 * abort and exception frees it.  The callbacks that libcurl calls are
 * noexcept: they catch everything and record the failure in their
 * Transfer, because an exception must not unwind through libcurl's C
 * frames.  No function declared in the header lets an exception escape.
 */
#include "core/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>

#if LIBCURL_VERSION_NUM < 0x075500
#error "stocktech_sync needs libcurl 7.85.0 or later (CURLOPT_PROTOCOLS_STR)"
#endif

namespace stocktech {

namespace {

using Clock = std::chrono::steady_clock;

/* Maximum total size of the header lines of one transfer, interim 1xx
 * responses included.  libcurl itself rejects a single line over 100 KiB. */
constexpr size_t kMaxHeaderBytes = 256 * 1024;

const char *const kUserAgent = "stocktech_sync";

/* ---------- RAII owners of libcurl handles ---------- */

struct EasyDeleter
{
    void operator()(CURL *handle) const { curl_easy_cleanup(handle); }
};

struct MultiDeleter
{
    void operator()(CURLM *handle) const { curl_multi_cleanup(handle); }
};

struct SlistDeleter
{
    void operator()(curl_slist *list) const { curl_slist_free_all(list); }
};

struct UrlDeleter
{
    void operator()(CURLU *url) const { curl_url_cleanup(url); }
};

using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using MultiHandle = std::unique_ptr<CURLM, MultiDeleter>;
using SlistHandle = std::unique_ptr<curl_slist, SlistDeleter>;
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

/* Appends line to list.  curl_slist_append returns NULL on failure and
 * leaves the list unchanged, so the owner keeps it either way. */
bool
append_to_slist(SlistHandle &list, const std::string &line)
{
    curl_slist *head = curl_slist_append(list.get(), line.c_str());
    if (head == nullptr)
        return false;
    list.release();
    list.reset(head);
    return true;
}

/* Runs curl_global_init once per process.  C++11 guarantees that the
 * static is initialized exactly once even with concurrent callers.  There
 * is no matching curl_global_cleanup: the state lives until the process
 * exits. */
CURLcode
initialize_curl_once()
{
    static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
    return result;
}

/* ---------- small text helpers ---------- */

char
to_lower_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string
lower_ascii(std::string_view text)
{
    std::string result(text);
    for (char &c : result)
        c = to_lower_ascii(c);
    return result;
}

bool
equals_ignoring_case(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); i++)
        if (to_lower_ascii(a[i]) != to_lower_ascii(b[i]))
            return false;
    return true;
}

bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool
is_control(char c)
{
    unsigned char byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
}

/* Strips spaces, tabs, CR and LF from both ends. */
std::string_view
trim_whitespace(std::string_view text)
{
    const char *whitespace = " \t\r\n";
    size_t first = text.find_first_not_of(whitespace);
    if (first == std::string_view::npos)
        return std::string_view();
    size_t last = text.find_last_not_of(whitespace);
    return text.substr(first, last - first + 1);
}

/* Returns whether text is an RFC 9110 token, the syntax of method names
 * and header field names. */
bool
is_token(std::string_view text)
{
    static const std::string_view kSpecials = "!#$%&'*+-.^_`|~";
    if (text.empty())
        return false;
    for (char c : text)
    {
        bool alphanumeric = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alphanumeric && kSpecials.find(c) == std::string_view::npos)
            return false;
    }
    return true;
}

/* Returns whether text contains CR, LF or NUL, which would end a header
 * line early or cut a C string short. */
bool
contains_line_break_or_nul(std::string_view text)
{
    return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

long
milliseconds_since(Clock::time_point start)
{
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return static_cast<long>(elapsed.count());
}

/* ---------- one transfer ---------- */

/* Reason for which a callback stopped a transfer.  libcurl then reports
 * CURLE_WRITE_ERROR. */
enum class CallbackStop
{
    None,
    BodyTooLarge,
    AnnouncedTooLarge,
    HeadersTooLarge,
    OutOfMemory,
};

/* State of one request while libcurl runs it.  libcurl keeps pointers to
 * it (callbacks, CURLOPT_PRIVATE) and to the request's body, so it must
 * not move while its easy handle is attached to the multi handle. */
struct Transfer
{
    size_t index = 0;
    HttpResponse response;
    EasyHandle easy;
    SlistHandle header_list;
    size_t max_body_bytes = 0;
    bool is_head = false;
    bool attached = false;
    /* Status of the response whose header lines are arriving. */
    int current_status = 0;
    size_t header_bytes = 0;
    CallbackStop stop = CallbackStop::None;
    unsigned long long announced_length = 0;
    char error_buffer[CURL_ERROR_SIZE] = {};
    Clock::time_point start;
};

/* Parses the status code of a status line such as "HTTP/1.1 200 OK" or
 * "HTTP/2 404"; 0 when it has none. */
int
parse_status_code(std::string_view line)
{
    size_t space = line.find(' ');
    if (space == std::string_view::npos || line.size() < space + 4)
        return 0;
    int status = 0;
    for (size_t i = space + 1; i < space + 4; i++)
    {
        if (!is_digit(line[i]))
            return 0;
        status = status * 10 + (line[i] - '0');
    }
    return status;
}

/* Parses a Content-Length value, saturating at ULLONG_MAX.  Returns
 * nullopt unless the value is only decimal digits, and then the body cap
 * in receive_body still applies. */
std::optional<unsigned long long>
parse_content_length(std::string_view value)
{
    if (value.empty())
        return std::nullopt;
    unsigned long long result = 0;
    for (char c : value)
    {
        if (!is_digit(c))
            return std::nullopt;
        unsigned digit = static_cast<unsigned>(c - '0');
        if (result > (ULLONG_MAX - digit) / 10)
            result = ULLONG_MAX;
        else
            result = result * 10 + digit;
    }
    return result;
}

/* Returns whether the response being received will have a body, so that
 * its Content-Length is the size of that body: not for HEAD, 1xx, 204 and
 * 304 (RFC 9110 section 6.4.1). */
bool
expects_body(const Transfer &transfer)
{
    int status = transfer.current_status;
    return !transfer.is_head && status >= 200 && status != 204 && status != 304;
}

/*
 * Stores one header line of the response (CURLOPT_HEADERFUNCTION).  A
 * status line starts a new response, so the fields of an interim 1xx
 * response are dropped.  An obsolete folded line (starting with a space or
 * tab) continues the previous value.  Stops the transfer when the
 * Content-Length announces more than max_body_bytes; with a content
 * encoding that is the encoded size.
 */
size_t
receive_header_line(char *data, size_t size, size_t count, void *userdata) noexcept
{
    Transfer &transfer = *static_cast<Transfer *>(userdata);
    size_t length = size * count;
    try
    {
        transfer.header_bytes += length;
        if (transfer.header_bytes > kMaxHeaderBytes)
        {
            transfer.stop = CallbackStop::HeadersTooLarge;
            return 0;
        }

        std::string_view raw(data, length);
        while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r'))
            raw.remove_suffix(1);
        if (raw.empty())
            return length; /* the blank line that ends the header section */

        HttpHeaders &headers = transfer.response.headers;
        if (raw.substr(0, 5) == "HTTP/")
        {
            headers.clear();
            transfer.current_status = parse_status_code(raw);
            return length;
        }
        if (raw.front() == ' ' || raw.front() == '\t')
        {
            if (!headers.empty())
            {
                std::string_view continuation = trim_whitespace(raw);
                std::string &value = headers.back().second;
                if (!value.empty() && !continuation.empty())
                    value += ' ';
                value += continuation;
            }
            return length;
        }

        size_t colon = raw.find(':');
        if (colon == std::string_view::npos)
            return length; /* not a field line, which libcurl handles itself */
        std::string name = lower_ascii(trim_whitespace(raw.substr(0, colon)));
        std::string_view value = trim_whitespace(raw.substr(colon + 1));

        if (name == "content-length" && expects_body(transfer))
        {
            std::optional<unsigned long long> announced = parse_content_length(value);
            if (announced && *announced > transfer.max_body_bytes)
            {
                transfer.announced_length = *announced;
                transfer.stop = CallbackStop::AnnouncedTooLarge;
                return 0;
            }
        }
        headers.emplace_back(std::move(name), std::string(value));
        return length;
    }
    catch (...)
    {
        transfer.stop = CallbackStop::OutOfMemory;
        return 0;
    }
}

/* Appends a piece of the decoded body (CURLOPT_WRITEFUNCTION), stopping
 * the transfer as soon as the body would pass max_body_bytes. */
size_t
receive_body(char *data, size_t size, size_t count, void *userdata) noexcept
{
    Transfer &transfer = *static_cast<Transfer *>(userdata);
    size_t length = size * count;
    std::string &body = transfer.response.body;
    if (length > transfer.max_body_bytes - body.size())
    {
        transfer.stop = CallbackStop::BodyTooLarge;
        return 0;
    }
    try
    {
        body.append(data, length);
    }
    catch (...)
    {
        transfer.stop = CallbackStop::OutOfMemory;
        return 0;
    }
    return length;
}

void
set_failure(HttpResponse &response, HttpError error, std::string message)
{
    response.error = error;
    response.error_message = std::move(message);
    response.body.clear();
}

/* Checks that url is an absolute http or https URL that libcurl's own
 * parser accepts.  Otherwise sets message and returns false. */
bool
validate_url(const std::string &url, std::string &message)
{
    if (url.find('\0') != std::string::npos)
    {
        message = "invalid URL: it contains a NUL byte";
        return false;
    }
    /* libcurl reads "http:///name" as host "name"; RFC 3986 gives it an
     * empty host, which http and https do not allow. */
    size_t separator = url.find("://");
    if (separator != std::string::npos && url.compare(separator + 3, 1, "/") == 0)
    {
        message = "invalid URL \"" + redact_url(url) + "\": the host is empty";
        return false;
    }
    UrlHandle parsed(curl_url());
    if (!parsed)
        throw std::bad_alloc();
    CURLUcode code = curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0);
    if (code != CURLUE_OK)
    {
        message = "invalid URL \"" + redact_url(url) + "\": " + curl_url_strerror(code);
        return false;
    }

    char *scheme = nullptr;
    code = curl_url_get(parsed.get(), CURLUPART_SCHEME, &scheme, 0);
    bool allowed = false;
    if (code == CURLUE_OK)
    {
        std::string_view view(scheme);
        allowed = view == "http" || view == "https";
    }
    curl_free(scheme);
    if (!allowed)
    {
        message = "invalid URL \"" + redact_url(url) + "\": only http and https are allowed";
        return false;
    }
    return true;
}

/* Checks method, header fields and cookies.  Otherwise sets message and
 * returns false. */
bool
validate_request(const HttpRequest &request, const HttpOptions &options, std::string &message)
{
    if (!is_token(request.method))
    {
        message = "invalid request method \"" + request.method + "\"";
        return false;
    }
    if (request.method == "HEAD" && !request.body.empty())
    {
        message = "invalid request: a HEAD request cannot have a body";
        return false;
    }
    for (const auto &[name, value] : request.headers)
    {
        if (!is_token(name))
        {
            message = "invalid header field name \"" + name + "\"";
            return false;
        }
        if (contains_line_break_or_nul(value))
        {
            message = "invalid value of header field \"" + name +
                      "\": it contains CR, LF or NUL";
            return false;
        }
    }
    if (contains_line_break_or_nul(options.cookies))
    {
        message = "invalid cookies option: it contains CR, LF or NUL";
        return false;
    }
    return true;
}

/* Checks the options shared by every transfer.  Otherwise sets message
 * and returns false. */
bool
validate_options(const HttpOptions &options, std::string &message)
{
    char text[160];
    if (options.connect_timeout_ms <= 0 || options.total_timeout_ms <= 0)
    {
        std::snprintf(text, sizeof(text),
                      "invalid timeouts: connect_timeout_ms (%ld) and total_timeout_ms (%ld) "
                      "must be positive",
                      options.connect_timeout_ms, options.total_timeout_ms);
        message = text;
        return false;
    }
    if (options.poll_interval_ms <= 0)
    {
        std::snprintf(text, sizeof(text), "invalid poll_interval_ms %ld: it must be positive",
                      options.poll_interval_ms);
        message = text;
        return false;
    }
    if (options.ca_file.find('\0') != std::string::npos ||
        options.proxy.find('\0') != std::string::npos)
    {
        message = "invalid ca_file or proxy option: it contains a NUL byte";
        return false;
    }
    return true;
}

/* Returns whether headers contain a field named name (any case). */
bool
has_header(const HttpHeaders &headers, std::string_view name)
{
    for (const auto &field : headers)
        if (equals_ignoring_case(field.first, name))
            return true;
    return false;
}

/* Builds the header list: the caller's fields in order, then empty
 * "Expect:" and "Content-Type:" entries, which stop libcurl from adding
 * Expect: 100-continue (a one-second stall on servers that ignore it) and
 * a form Content-Type to a body, unless the caller set those fields. */
bool
build_header_list(Transfer &transfer, const HttpRequest &request, bool sends_body)
{
    for (const auto &[name, value] : request.headers)
    {
        /* libcurl removes a field given as "Name:" and sends an empty one
         * given as "Name;". */
        std::string line = value.empty() ? name + ";" : name + ": " + value;
        if (!append_to_slist(transfer.header_list, line))
            return false;
    }
    if (!has_header(request.headers, "Expect") &&
        !append_to_slist(transfer.header_list, "Expect:"))
        return false;
    if (sends_body && !has_header(request.headers, "Content-Type") &&
        !append_to_slist(transfer.header_list, "Content-Type:"))
        return false;
    return true;
}

/*
 * Creates the easy handle of transfer and sets every option: the safety
 * rules of the header comment, the method and body, and the callbacks.
 * Returns false with transfer.response.error set when the request is
 * invalid or libcurl rejects an option; nothing is sent in either case.
 */
bool
prepare_transfer(Transfer &transfer, const HttpRequest &request, const HttpOptions &options)
{
    HttpResponse &response = transfer.response;
    std::string message;
    if (!validate_url(request.url, message))
    {
        set_failure(response, HttpError::InvalidUrl, std::move(message));
        return false;
    }
    if (!validate_request(request, options, message))
    {
        set_failure(response, HttpError::InvalidRequest, std::move(message));
        return false;
    }

    transfer.easy.reset(curl_easy_init());
    if (!transfer.easy)
    {
        set_failure(response, HttpError::Other, "curl_easy_init failed");
        return false;
    }
    transfer.max_body_bytes = options.max_response_bytes;
    transfer.is_head = request.method == "HEAD";

    const std::string &method = request.method;
    bool sends_body = !transfer.is_head &&
                      (!request.body.empty() || (method != "GET" && method != "DELETE"));
    if (!build_header_list(transfer, request, sends_body))
        throw std::bad_alloc();

    CURL *easy = transfer.easy.get();
    CURLcode code = CURLE_OK;
    /* Applies one option unless an earlier one failed, so that the first
     * failure is the one reported. */
    auto set = [&](CURLoption option, auto value) {
        if (code == CURLE_OK)
            code = curl_easy_setopt(easy, option, value);
    };

    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_PRIVATE, static_cast<void *>(&transfer));
    set(CURLOPT_ERRORBUFFER, transfer.error_buffer);
    set(CURLOPT_URL, request.url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "http,https");
    set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    set(CURLOPT_FOLLOWLOCATION, 0L);
    set(CURLOPT_CONNECTTIMEOUT_MS, options.connect_timeout_ms);
    set(CURLOPT_TIMEOUT_MS, options.total_timeout_ms);
    set(CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
    set(CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
    if (!options.ca_file.empty())
        set(CURLOPT_CAINFO, options.ca_file.c_str());
    /* An empty string disables proxies, including those named by the
     * http_proxy, https_proxy and all_proxy environment variables.  An
     * empty no-proxy list likewise keeps no_proxy from bypassing a
     * configured proxy. */
    set(CURLOPT_PROXY, options.proxy.c_str());
    set(CURLOPT_NOPROXY, "");
    set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    /* An empty string offers every encoding this libcurl can decode. */
    set(CURLOPT_ACCEPT_ENCODING, "");
    set(CURLOPT_USERAGENT, kUserAgent);
    if (!options.cookies.empty())
        set(CURLOPT_COOKIE, options.cookies.c_str());
    set(CURLOPT_HEADERFUNCTION, &receive_header_line);
    set(CURLOPT_HEADERDATA, static_cast<void *>(&transfer));
    set(CURLOPT_WRITEFUNCTION, &receive_body);
    set(CURLOPT_WRITEDATA, static_cast<void *>(&transfer));
    set(CURLOPT_HTTPHEADER, transfer.header_list.get());

    if (transfer.is_head)
        set(CURLOPT_NOBODY, 1L);
    else if (method == "GET" && !sends_body)
        set(CURLOPT_HTTPGET, 1L);
    else
    {
        if (method != "POST")
            set(CURLOPT_CUSTOMREQUEST, method.c_str());
        if (sends_body)
        {
            /* libcurl does not copy the body: request outlives the transfer. */
            set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
            set(CURLOPT_POSTFIELDS, request.body.data());
        }
    }

    if (code != CURLE_OK)
    {
        set_failure(response, HttpError::Other,
                    std::string("could not set a libcurl option: ") + curl_easy_strerror(code));
        return false;
    }
    return true;
}

/* Maps a libcurl result code to the transport error it stands for. */
HttpError
map_curl_error(CURLcode code)
{
    switch (code)
    {
        case CURLE_OK:
            return HttpError::None;
        case CURLE_OPERATION_TIMEDOUT:
            return HttpError::Timeout;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            return HttpError::Resolve;
        case CURLE_COULDNT_CONNECT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        /* A failed handshake is usually a reset connection; certificate
         * problems have their own codes below. */
        case CURLE_SSL_CONNECT_ERROR:
            return HttpError::Connection;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_USE_SSL_FAILED:
            return HttpError::Tls;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            return HttpError::InvalidUrl;
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
        case CURLE_BAD_CONTENT_ENCODING:
        case CURLE_RANGE_ERROR:
        case CURLE_TOO_MANY_REDIRECTS:
            return HttpError::Protocol;
        case CURLE_FILESIZE_EXCEEDED:
            return HttpError::TooLarge;
        case CURLE_ABORTED_BY_CALLBACK:
            return HttpError::Aborted;
        default:
            return HttpError::Other;
    }
}

/* Fills transfer.response after libcurl reported the transfer done with
 * result.  A stop requested by a callback takes precedence over result,
 * which is then CURLE_WRITE_ERROR. */
void
complete_transfer(Transfer &transfer, CURLcode result)
{
    HttpResponse &response = transfer.response;
    long status = 0;
    if (curl_easy_getinfo(transfer.easy.get(), CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
        response.status = static_cast<int>(status);
    response.elapsed_ms = milliseconds_since(transfer.start);

    char text[200];
    switch (transfer.stop)
    {
        case CallbackStop::BodyTooLarge:
            std::snprintf(text, sizeof(text),
                          "response body exceeds max_response_bytes (%zu bytes)",
                          transfer.max_body_bytes);
            set_failure(response, HttpError::TooLarge, text);
            return;
        case CallbackStop::AnnouncedTooLarge:
            std::snprintf(text, sizeof(text),
                          "Content-Length %llu exceeds max_response_bytes (%zu bytes)",
                          transfer.announced_length, transfer.max_body_bytes);
            set_failure(response, HttpError::TooLarge, text);
            return;
        case CallbackStop::HeadersTooLarge:
            std::snprintf(text, sizeof(text), "response header fields exceed %zu bytes",
                          kMaxHeaderBytes);
            set_failure(response, HttpError::TooLarge, text);
            return;
        case CallbackStop::OutOfMemory:
            set_failure(response, HttpError::Other, "out of memory while receiving the response");
            return;
        case CallbackStop::None:
            break;
    }

    if (result == CURLE_OK)
        return;
    std::string message = curl_easy_strerror(result);
    if (transfer.error_buffer[0] != '\0')
        message += std::string(": ") + transfer.error_buffer;
    set_failure(response, map_curl_error(result), std::move(message));
}

/* Owner of the multi handle and of the transfers attached to it.  The
 * destructor detaches every easy handle before the members free them,
 * as libcurl requires. */
struct TransferBatch
{
    MultiHandle multi;
    std::vector<std::unique_ptr<Transfer>> transfers;

    ~TransferBatch()
    {
        for (auto &transfer : transfers)
            if (transfer && transfer->attached)
                curl_multi_remove_handle(multi.get(), transfer->easy.get());
    }
};

/*
 * Runs count requests through one multi handle, at most max_parallel at a
 * time, and stores the response of requests[i] in responses[i].
 * completed[i] is set once responses[i] is final, so that the caller can
 * fail the others if an exception escapes.
 *
 * The loop starts transfers up to max_parallel, checks should_abort, calls
 * curl_multi_perform, collects finished transfers and then waits in
 * curl_multi_poll for socket activity, at most poll_interval_ms.
 */
void
run_transfers(const HttpRequest *requests, size_t count, const HttpOptions &options,
              size_t max_parallel, HttpResponse *responses, std::vector<char> &completed)
{
    TransferBatch batch;
    batch.multi.reset(curl_multi_init());
    if (!batch.multi)
        throw std::runtime_error("curl_multi_init failed");
    batch.transfers.resize(count);

    int poll_timeout_ms = static_cast<int>(std::min<long>(options.poll_interval_ms, INT_MAX));
    size_t next = 0;
    size_t active = 0;

    auto finish = [&](Transfer &transfer) {
        size_t index = transfer.index;
        if (transfer.attached)
        {
            curl_multi_remove_handle(batch.multi.get(), transfer.easy.get());
            transfer.attached = false;
        }
        responses[index] = std::move(transfer.response);
        completed[index] = 1;
        batch.transfers[index].reset();
    };

    /* Ends every unfinished transfer, started or not, with error. */
    auto fail_unfinished = [&](HttpError error, const std::string &message) {
        for (size_t i = 0; i < count; i++)
        {
            if (completed[i])
                continue;
            if (batch.transfers[i])
            {
                batch.transfers[i]->response.elapsed_ms =
                    milliseconds_since(batch.transfers[i]->start);
                set_failure(batch.transfers[i]->response, error, message);
                finish(*batch.transfers[i]);
            }
            else
            {
                set_failure(responses[i], error, message);
                completed[i] = 1;
            }
        }
    };

    for (;;)
    {
        while (active < max_parallel && next < count)
        {
            size_t index = next++;
            auto transfer = std::make_unique<Transfer>();
            transfer->index = index;
            transfer->start = Clock::now();
            batch.transfers[index] = std::move(transfer);
            Transfer &started = *batch.transfers[index];
            if (!prepare_transfer(started, requests[index], options))
            {
                started.response.elapsed_ms = milliseconds_since(started.start);
                finish(started);
                continue;
            }
            CURLMcode added = curl_multi_add_handle(batch.multi.get(), started.easy.get());
            if (added != CURLM_OK)
            {
                set_failure(started.response, HttpError::Other,
                            std::string("curl_multi_add_handle failed: ") +
                                curl_multi_strerror(added));
                finish(started);
                continue;
            }
            started.attached = true;
            active++;
        }
        if (active == 0)
            break;

        if (options.should_abort && options.should_abort())
        {
            fail_unfinished(HttpError::Aborted, "transfer aborted by the caller");
            break;
        }

        int running = 0;
        CURLMcode multi_code = curl_multi_perform(batch.multi.get(), &running);
        if (multi_code != CURLM_OK)
        {
            fail_unfinished(HttpError::Other, std::string("curl_multi_perform failed: ") +
                                                  curl_multi_strerror(multi_code));
            break;
        }

        int queued = 0;
        while (CURLMsg *message = curl_multi_info_read(batch.multi.get(), &queued))
        {
            if (message->msg != CURLMSG_DONE)
                continue;
            char *pointer = nullptr;
            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &pointer);
            Transfer &done = *reinterpret_cast<Transfer *>(pointer);
            complete_transfer(done, message->data.result);
            finish(done);
            active--;
        }

        /* Start queued transfers now rather than after the next poll. */
        if (active < max_parallel && next < count)
            continue;
        if (active == 0)
            continue;

        multi_code = curl_multi_poll(batch.multi.get(), nullptr, 0, poll_timeout_ms, nullptr);
        if (multi_code != CURLM_OK)
        {
            fail_unfinished(HttpError::Other, std::string("curl_multi_poll failed: ") +
                                                  curl_multi_strerror(multi_code));
            break;
        }
    }
}

/*
 * Validates the options and runs the transfers, turning every exception
 * into HttpError::Other on the responses not yet completed.  The
 * TransferBatch inside run_transfers frees all libcurl handles while the
 * exception unwinds.
 */
void
perform_requests(const HttpRequest *requests, size_t count, const HttpOptions &options,
                 size_t max_parallel, HttpResponse *responses) noexcept
{
    std::vector<char> completed;
    std::string failure;
    try
    {
        completed.assign(count, 0);
        std::string message;
        CURLcode init = initialize_curl_once();
        if (init != CURLE_OK)
        {
            failure = std::string("curl_global_init failed: ") + curl_easy_strerror(init);
        }
        else if (!validate_options(options, message))
        {
            for (size_t i = 0; i < count; i++)
            {
                set_failure(responses[i], HttpError::InvalidRequest, message);
                completed[i] = 1;
            }
        }
        else
        {
            run_transfers(requests, count, options, std::max<size_t>(max_parallel, 1),
                          responses, completed);
        }
    }
    catch (const std::bad_alloc &)
    {
        failure = "out of memory";
    }
    catch (const std::exception &e)
    {
        /* Also reached when should_abort throws. */
        try
        {
            failure = std::string("HTTP transfer failed with an exception: ") + e.what();
        }
        catch (...)
        {
            failure = "HTTP transfer failed with an exception";
        }
    }
    catch (...)
    {
        failure = "HTTP transfer failed with an exception of unknown type";
    }
    if (failure.empty())
        return;

    for (size_t i = 0; i < count; i++)
    {
        if (i < completed.size() && completed[i])
            continue;
        try
        {
            set_failure(responses[i], HttpError::Other, failure);
        }
        catch (...)
        {
            responses[i].error = HttpError::Other;
            responses[i].body.clear();
        }
    }
}

/* ---------- HTTP-date parsing ---------- */

/* Days from 1970-01-01 to the given proleptic Gregorian date, from Howard
 * Hinnant's "chrono-Compatible Low-Level Date Algorithms". */
int64_t
days_from_civil(int64_t year, unsigned month, unsigned day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    unsigned year_of_era = static_cast<unsigned>(year - era * 400);
    unsigned shifted_month = month > 2 ? month - 3 : month + 9; /* March is 0 */
    unsigned day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + static_cast<int64_t>(day_of_era) - 719468;
}

/* The Gregorian year of a day counted from 1970-01-01 (same source). */
int64_t
year_from_days(int64_t days)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned day_of_era = static_cast<unsigned>(days - era * 146097);
    unsigned year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    unsigned month_index = (5 * day_of_year + 2) / 153;
    unsigned month = month_index < 10 ? month_index + 3 : month_index - 9;
    return static_cast<int64_t>(year_of_era) + era * 400 + (month <= 2);
}

unsigned
days_in_month(int64_t year, unsigned month)
{
    static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : kDays[month - 1];
}

/* Reads an HTTP-date from left to right; every method consumes its
 * element or returns false. */
class DateReader
{
  public:
    explicit DateReader(std::string_view text) : text_(text) {}

    bool at_end() const { return position_ == text_.size(); }
    bool peek(char c) const { return position_ < text_.size() && text_[position_] == c; }

    bool literal(std::string_view expected)
    {
        if (!equals_ignoring_case(text_.substr(position_, expected.size()), expected))
            return false;
        position_ += expected.size();
        return true;
    }

    /* Reads between min_digits and max_digits decimal digits. */
    bool number(size_t min_digits, size_t max_digits, int &value)
    {
        size_t digits = 0;
        value = 0;
        while (digits < max_digits && position_ < text_.size() && is_digit(text_[position_]))
        {
            value = value * 10 + (text_[position_] - '0');
            position_++;
            digits++;
        }
        return digits >= min_digits;
    }

    /* Reads a run of ASCII letters. */
    std::string_view word()
    {
        size_t start = position_;
        while (position_ < text_.size() &&
               ((text_[position_] >= 'a' && text_[position_] <= 'z') ||
                (text_[position_] >= 'A' && text_[position_] <= 'Z')))
            position_++;
        return text_.substr(start, position_ - start);
    }

    /* Reads a three-letter month name; month is 1..12. */
    bool month(unsigned &month)
    {
        static const char *const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        std::string_view name = word();
        for (unsigned i = 0; i < 12; i++)
        {
            if (equals_ignoring_case(name, kMonths[i]))
            {
                month = i + 1;
                return true;
            }
        }
        return false;
    }

    /* Reads hour ":" minute ":" second; 23:59:60 (a leap second) is valid. */
    bool time_of_day(int &seconds_of_day)
    {
        int hour = 0;
        int minute = 0;
        int second = 0;
        if (!number(2, 2, hour) || !literal(":") || !number(2, 2, minute) || !literal(":") ||
            !number(2, 2, second))
            return false;
        if (hour > 23 || minute > 59 || second > 60)
            return false;
        seconds_of_day = hour * 3600 + minute * 60 + second;
        return true;
    }

  private:
    std::string_view text_;
    size_t position_ = 0;
};

bool
is_short_day_name(std::string_view name)
{
    for (const char *day : {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})
        if (equals_ignoring_case(name, day))
            return true;
    return false;
}

bool
is_long_day_name(std::string_view name)
{
    for (const char *day :
         {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"})
        if (equals_ignoring_case(name, day))
            return true;
    return false;
}

/* Maps the two-digit year of an RFC 850 date to the year with the same
 * last two digits that lies at most 50 years after now_year and less than
 * 50 years before it (RFC 9110 section 5.6.7). */
int64_t
expand_two_digit_year(int two_digits, int64_t now_year)
{
    int64_t year = now_year - now_year % 100 + two_digits;
    if (year > now_year + 50)
        year -= 100;
    else if (year <= now_year - 50)
        year += 100;
    return year;
}

/* Parses the three HTTP-date forms into seconds since 1970-01-01 UTC.  The
 * day name must be valid but need not match the date. */
std::optional<int64_t>
parse_http_date(std::string_view text, std::time_t now)
{
    DateReader reader(text);
    std::string_view day_name = reader.word();
    int day = 0;
    unsigned month = 0;
    int year_digits = 0;
    int64_t year = 0;
    int seconds_of_day = 0;

    if (is_short_day_name(day_name) && reader.literal(", "))
    {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (!reader.number(1, 2, day) || !reader.literal(" ") || !reader.month(month) ||
            !reader.literal(" ") || !reader.number(4, 4, year_digits) || !reader.literal(" ") ||
            !reader.time_of_day(seconds_of_day) || !reader.literal(" GMT"))
            return std::nullopt;
        year = year_digits;
    }
    else if (is_long_day_name(day_name) && reader.literal(", "))
    {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        if (!reader.number(1, 2, day) || !reader.literal("-") || !reader.month(month) ||
            !reader.literal("-") || !reader.number(2, 2, year_digits) || !reader.literal(" ") ||
            !reader.time_of_day(seconds_of_day) || !reader.literal(" GMT"))
            return std::nullopt;
        int64_t now_days = static_cast<int64_t>(now) / 86400 - (now < 0 && now % 86400 != 0);
        year = expand_two_digit_year(year_digits, year_from_days(now_days));
    }
    else if (is_short_day_name(day_name) && reader.literal(" "))
    {
        /* asctime: Sun Nov  6 08:49:37 1994 (the day is padded with a space) */
        if (!reader.month(month) || !reader.literal(" "))
            return std::nullopt;
        reader.literal(" ");
        if (!reader.number(1, 2, day) || !reader.literal(" ") ||
            !reader.time_of_day(seconds_of_day) || !reader.literal(" ") ||
            !reader.number(4, 4, year_digits))
            return std::nullopt;
        year = year_digits;
    }
    else
        return std::nullopt;

    if (!reader.at_end() || day < 1 || static_cast<unsigned>(day) > days_in_month(year, month))
        return std::nullopt;
    return days_from_civil(year, month, static_cast<unsigned>(day)) * 86400 + seconds_of_day;
}

/* Returns whether a query parameter named name (any case) carries a secret. */
bool
is_secret_parameter(std::string_view name)
{
    if (!name.empty() && name.front() == '$')
        return false; /* OData system query options: $skiptoken, $deltatoken, $filter... */
    std::string lower = lower_ascii(name);
    for (const char *part : {"password", "passwd", "secret", "token", "apikey", "api_key",
                             "api-key", "signature", "credential", "session"})
        if (lower.find(part) != std::string::npos)
            return true;
    for (const char *exact : {"pwd", "key", "sig", "code", "auth", "authorization"})
        if (lower == exact)
            return true;
    return false;
}

/* Returns query ("a=1&b=2", without '?') with the values of secret
 * parameters replaced by "***". */
std::string
redact_query(std::string_view query)
{
    std::string result;
    size_t start = 0;
    while (start <= query.size())
    {
        size_t end = query.find('&', start);
        if (end == std::string_view::npos)
            end = query.size();
        std::string_view parameter = query.substr(start, end - start);
        size_t equals = parameter.find('=');
        if (equals != std::string_view::npos && is_secret_parameter(parameter.substr(0, equals)))
        {
            result += parameter.substr(0, equals + 1);
            result += "***";
        }
        else
            result += parameter;
        if (end == query.size())
            break;
        result += '&';
        start = end + 1;
    }
    return result;
}

}  // namespace

/* ---------- public functions ---------- */

const char *
http_error_name(HttpError error)
{
    switch (error)
    {
        case HttpError::None:
            return "None";
        case HttpError::Timeout:
            return "Timeout";
        case HttpError::Connection:
            return "Connection";
        case HttpError::Resolve:
            return "Resolve";
        case HttpError::TooLarge:
            return "TooLarge";
        case HttpError::Aborted:
            return "Aborted";
        case HttpError::Tls:
            return "Tls";
        case HttpError::Protocol:
            return "Protocol";
        case HttpError::InvalidUrl:
            return "InvalidUrl";
        case HttpError::InvalidRequest:
            return "InvalidRequest";
        case HttpError::Other:
            return "Other";
    }
    return "unknown";
}

std::optional<std::string>
HttpResponse::header(std::string_view name) const
{
    for (const auto &field : headers)
        if (equals_ignoring_case(field.first, name))
            return field.second;
    return std::nullopt;
}

std::vector<std::string>
HttpResponse::set_cookies() const
{
    std::vector<std::string> cookies;
    for (const auto &field : headers)
        if (field.first == "set-cookie")
            cookies.push_back(field.second);
    return cookies;
}

HttpResponse
http_perform(const HttpRequest &request, const HttpOptions &options)
{
    HttpResponse response;
    perform_requests(&request, 1, options, 1, &response);
    return response;
}

std::vector<HttpResponse>
http_perform_many(const std::vector<HttpRequest> &requests, const HttpOptions &options,
                  size_t max_parallel)
{
    std::vector<HttpResponse> responses;
    try
    {
        responses.resize(requests.size());
    }
    catch (...)
    {
        return {};
    }
    perform_requests(requests.data(), requests.size(), options, max_parallel, responses.data());
    return responses;
}

std::optional<long>
parse_retry_after(std::string_view value, std::time_t now)
{
    std::string_view text = trim_whitespace(value);
    if (text.empty())
        return std::nullopt;

    if (std::all_of(text.begin(), text.end(), is_digit))
    {
        long seconds = 0;
        for (char c : text)
        {
            long digit = c - '0';
            if (seconds > (LONG_MAX - digit) / 10)
                return LONG_MAX;
            seconds = seconds * 10 + digit;
        }
        return seconds;
    }

    std::optional<int64_t> date = parse_http_date(text, now);
    if (!date)
        return std::nullopt;
    int64_t delay = *date - static_cast<int64_t>(now);
    if (delay <= 0)
        return 0L;
    return static_cast<long>(std::min<int64_t>(delay, LONG_MAX));
}

long
backoff_delay_ms(int attempt, long base_ms, long cap_ms, uint64_t random_bits)
{
    if (base_ms <= 0 || cap_ms <= 0)
        return 0;
    /* Compute min(cap_ms, base_ms * 2^attempt) by doubling step by step, so
     * that it cannot overflow.  The loop stops within 63 steps, because the
     * ceiling then reaches the cap. */
    long ceiling = std::min(base_ms, cap_ms);
    for (int step = 0; step < attempt && ceiling < cap_ms; step++)
        ceiling = ceiling > cap_ms / 2 ? cap_ms : ceiling * 2;
    /* The modulo bias is below 2^-32 for any ceiling under 2^31 ms. */
    return static_cast<long>(random_bits % (static_cast<uint64_t>(ceiling) + 1));
}

const char *
failure_class_name(FailureClass failure_class)
{
    switch (failure_class)
    {
        case FailureClass::Success:
            return "Success";
        case FailureClass::Transient:
            return "Transient";
        case FailureClass::Concurrency:
            return "Concurrency";
        case FailureClass::Permanent:
            return "Permanent";
        case FailureClass::Configuration:
            return "Configuration";
        case FailureClass::Aborted:
            return "Aborted";
    }
    return "unknown";
}

bool
csrf_token_required(const HttpResponse &response)
{
    if (response.error != HttpError::None || response.status != 403)
        return false;
    /* The first X-CSRF-Token field decides, as in HttpResponse::header,
     * which this loop repeats without copying the value. */
    for (const auto &field : response.headers)
        if (equals_ignoring_case(field.first, "X-CSRF-Token"))
            return equals_ignoring_case(field.second, "Required");
    return false;
}

/*
 * The table is in the header.  Choices the table does not explain:
 *  - TooLarge and Protocol are Transient for reads.  A reply garbled by a
 *    proxy, or a page that is large only during a bulk change, can succeed
 *    on the next attempt, and a read that keeps failing ends when its
 *    attempts are exhausted.  For writes they are Permanent, because the
 *    ERP may have applied the change and a retry would most likely get the
 *    same reply.  The dead letter keeps the change for an operator.
 *  - 401, 407, Tls, InvalidUrl and InvalidRequest are Configuration for
 *    writes too: the credentials, URL template and CA file come from the
 *    connector, so dead-lettering would fail every queued change alike.
 *  - A 3xx on a read means that the endpoint is wrong (http instead of
 *    https, or a login page); a write must never be replayed elsewhere.
 *  - 408, 423 (a lock held by another session), 425 and 429 ask the client
 *    to try again later.
 */
FailureClass
classify_response(const HttpResponse &response, bool is_write)
{
    switch (response.error)
    {
        case HttpError::None:
            break;
        case HttpError::Aborted:
            return FailureClass::Aborted;
        case HttpError::Timeout:
        case HttpError::Connection:
        case HttpError::Resolve:
        case HttpError::Other:
            return FailureClass::Transient;
        case HttpError::TooLarge:
        case HttpError::Protocol:
            return is_write ? FailureClass::Permanent : FailureClass::Transient;
        case HttpError::Tls:
        case HttpError::InvalidUrl:
        case HttpError::InvalidRequest:
            return FailureClass::Configuration;
    }

    int status = response.status;
    FailureClass client_error = is_write ? FailureClass::Permanent : FailureClass::Configuration;
    if (status >= 200 && status <= 299)
        return FailureClass::Success;
    if (status >= 300 && status <= 399)
        return is_write ? FailureClass::Permanent : FailureClass::Configuration;
    if (status >= 500 && status <= 599)
        return FailureClass::Transient;
    switch (status)
    {
        case 401:
        case 407:
            return FailureClass::Configuration;
        case 403:
            return csrf_token_required(response) ? FailureClass::Transient : client_error;
        case 408:
        case 423:
        case 425:
        case 429:
            return FailureClass::Transient;
        case 412:
        case 428:
            return FailureClass::Concurrency;
        default:
            break;
    }
    if (status >= 400 && status <= 499)
        return client_error;
    /* 1xx as a final status, or no valid status at all: a protocol error. */
    return is_write ? FailureClass::Permanent : FailureClass::Transient;
}

std::string
base64_encode(std::string_view data)
{
    static const char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string result;
    result.reserve((data.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= data.size(); i += 3)
    {
        uint32_t group = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16 |
                         static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8 |
                         static_cast<uint32_t>(static_cast<unsigned char>(data[i + 2]));
        result += kAlphabet[(group >> 18) & 63];
        result += kAlphabet[(group >> 12) & 63];
        result += kAlphabet[(group >> 6) & 63];
        result += kAlphabet[group & 63];
    }
    size_t remaining = data.size() - i;
    if (remaining > 0)
    {
        uint32_t group = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16;
        if (remaining == 2)
            group |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
        result += kAlphabet[(group >> 18) & 63];
        result += kAlphabet[(group >> 12) & 63];
        result += remaining == 2 ? kAlphabet[(group >> 6) & 63] : '=';
        result += '=';
    }
    return result;
}

std::optional<std::string>
basic_authorization(std::string_view user, std::string_view password)
{
    if (user.find(':') != std::string_view::npos)
        return std::nullopt;
    if (std::any_of(user.begin(), user.end(), is_control) ||
        std::any_of(password.begin(), password.end(), is_control))
        return std::nullopt;
    std::string credentials;
    credentials.reserve(user.size() + 1 + password.size());
    credentials += user;
    credentials += ':';
    credentials += password;
    return "Basic " + base64_encode(credentials);
}

std::string
redact_url(std::string_view url)
{
    size_t fragment_start = url.find('#');
    std::string_view before_fragment = url.substr(0, fragment_start);
    size_t query_start = before_fragment.find('?');
    std::string_view before_query = before_fragment.substr(0, query_start);

    std::string result;
    size_t scheme_end = before_query.find("://");
    size_t authority_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    size_t authority_end = before_query.find('/', authority_start);
    if (authority_end == std::string_view::npos)
        authority_end = before_query.size();
    std::string_view authority =
        before_query.substr(authority_start, authority_end - authority_start);
    size_t at = authority.rfind('@');
    size_t colon = authority.substr(0, at == std::string_view::npos ? 0 : at).find(':');
    if (scheme_end != std::string_view::npos && at != std::string_view::npos &&
        colon != std::string_view::npos)
    {
        /* scheme://user:password@host... */
        result += before_query.substr(0, authority_start + colon + 1);
        result += "***";
        result += before_query.substr(authority_start + at);
    }
    else
        result += before_query;

    if (query_start != std::string_view::npos)
    {
        result += '?';
        result += redact_query(before_fragment.substr(query_start + 1));
    }
    if (fragment_start != std::string_view::npos)
        result += url.substr(fragment_start);
    return result;
}

std::string
redact_header_value(std::string_view name, std::string_view value)
{
    if (value.empty())
        return std::string();
    if (equals_ignoring_case(name, "Authorization") ||
        equals_ignoring_case(name, "Proxy-Authorization"))
    {
        /* Keep the scheme ("Basic", "Bearer"): it is no secret, and it shows
         * which authentication was used. */
        size_t space = value.find(' ');
        if (space == std::string_view::npos || space == 0)
            return "***";
        return std::string(value.substr(0, space)) + " ***";
    }
    if (equals_ignoring_case(name, "Cookie") || equals_ignoring_case(name, "Set-Cookie") ||
        equals_ignoring_case(name, "X-API-Key") || equals_ignoring_case(name, "APIKey"))
        return "***";
    if (equals_ignoring_case(name, "X-CSRF-Token"))
    {
        if (equals_ignoring_case(value, "Fetch") || equals_ignoring_case(value, "Required"))
            return std::string(value);
        return "***";
    }
    return std::string(value);
}

HttpHeaders
redact_headers(const HttpHeaders &headers)
{
    HttpHeaders result;
    result.reserve(headers.size());
    for (const auto &[name, value] : headers)
        result.emplace_back(name, redact_header_value(name, value));
    return result;
}

}  // namespace stocktech
