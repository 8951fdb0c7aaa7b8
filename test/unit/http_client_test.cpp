/*
 * http_client_test.cpp
 *    Unit tests of the HTTP client (src/core/http_client.cpp): Retry-After
 *    parsing, backoff, failure classes, Basic authorization, redaction, and
 *    real libcurl transfers against TestServer, a small HTTP/1.1 server
 *    that each transfer test starts on 127.0.0.1 with an ephemeral port.
 *
 * The timing checks allow about twice the expected duration, so that a
 * loaded machine does not fail them.  The whole binary ran in 1.4 s on a
 * 2-core machine.
 */
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/http_client.hpp"

namespace stocktech {

/* Print enumerator names in failure messages.  These overloads live in the
 * namespace of the enums, where ADL finds them. */
void
PrintTo(HttpError error, std::ostream *out)
{
    *out << http_error_name(error);
}

void
PrintTo(FailureClass failure_class, std::ostream *out)
{
    *out << failure_class_name(failure_class);
}

namespace {

using Clock = std::chrono::steady_clock;

long
milliseconds_since(Clock::time_point start)
{
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

/* ---------- TestServer ---------- */

/*
 * An HTTP/1.1 server on 127.0.0.1 that responds to one request per connection
 * with a canned response chosen by path, each connection in its own
 * thread.  It records the request targets and the maximum number of
 * connections handled at once.  The destructor stops and joins every
 * thread; handlers check the stop flag at least every 10 ms.
 */
class TestServer
{
  public:
    TestServer()
    {
        listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
        if (listen_fd_ < 0)
            throw std::runtime_error("socket failed");
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = 0;
        socklen_t length = sizeof(address);
        if (bind(listen_fd_, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0 ||
            listen(listen_fd_, 16) != 0 ||
            getsockname(listen_fd_, reinterpret_cast<sockaddr *>(&address), &length) != 0)
        {
            close(listen_fd_);
            throw std::runtime_error("could not listen on 127.0.0.1");
        }
        port_ = ntohs(address.sin_port);
        acceptor_ = std::thread([this] { accept_connections(); });
    }

    ~TestServer()
    {
        stop_ = true;
        acceptor_.join();
        close(listen_fd_);
        std::vector<std::thread> handlers;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            handlers.swap(handlers_);
        }
        for (std::thread &handler : handlers)
            handler.join();
    }

    std::string url(const std::string &target) const
    {
        return "http://127.0.0.1:" + std::to_string(port_) + target;
    }

    int port() const { return port_; }

    std::vector<std::string> request_targets() const
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return targets_;
    }

    int connection_count() const { return connections_; }
    int max_concurrent() const { return max_concurrent_; }

  private:
    struct Request
    {
        std::string method;
        std::string target;
        std::string header_block; /* the lines after the request line */
        std::string body;
    };

    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::atomic<int> active_{0};
    std::atomic<int> max_concurrent_{0};
    static thread_local bool answered_;
    std::thread acceptor_;
    mutable std::mutex mutex_;
    std::vector<std::thread> handlers_;
    std::vector<std::string> targets_;

    void accept_connections()
    {
        while (!stop_)
        {
            pollfd entry{listen_fd_, POLLIN, 0};
            if (poll(&entry, 1, 10) <= 0)
                continue;
            int fd = accept(listen_fd_, nullptr, nullptr);
            if (fd < 0)
                continue;
            connections_++;
            std::lock_guard<std::mutex> lock(mutex_);
            handlers_.emplace_back([this, fd] {
                handle_connection(fd);
                close(fd);
            });
        }
    }

    /* Waits up to milliseconds, returning early (false) when stopping. */
    bool sleep_unless_stopped(long milliseconds)
    {
        Clock::time_point start = Clock::now();
        while (milliseconds_since(start) < milliseconds)
        {
            if (stop_)
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return true;
    }

    /* Sends all of data; false when the client has gone. */
    static bool send_all(int fd, std::string_view data)
    {
        while (!data.empty())
        {
            ssize_t sent = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
            if (sent <= 0)
                return false;
            data.remove_prefix(static_cast<size_t>(sent));
        }
        return true;
    }

    /* Reads one request: header block, then a body of Content-Length bytes. */
    bool read_request(int fd, Request &request)
    {
        std::string data;
        size_t header_end = std::string::npos;
        size_t body_length = 0;
        for (;;)
        {
            if (header_end != std::string::npos && data.size() >= header_end + 4 + body_length)
                break;
            pollfd entry{fd, POLLIN, 0};
            int ready = poll(&entry, 1, 10);
            if (stop_ || ready < 0)
                return false;
            if (ready == 0)
                continue;
            char buffer[4096];
            ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
            if (received <= 0)
                return false;
            data.append(buffer, static_cast<size_t>(received));
            if (header_end == std::string::npos)
            {
                header_end = data.find("\r\n\r\n");
                if (header_end != std::string::npos)
                {
                    std::string lower = data.substr(0, header_end);
                    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
                    size_t field = lower.find("\r\ncontent-length:");
                    if (field != std::string::npos)
                        body_length = std::stoul(lower.substr(field + 17));
                }
            }
        }
        size_t line_end = data.find("\r\n");
        std::string request_line = data.substr(0, line_end);
        size_t first_space = request_line.find(' ');
        size_t second_space = request_line.find(' ', first_space + 1);
        request.method = request_line.substr(0, first_space);
        request.target = request_line.substr(first_space + 1, second_space - first_space - 1);
        request.header_block = data.substr(line_end + 2, header_end - line_end - 2);
        request.body = data.substr(header_end + 4, body_length);
        return true;
    }

    /* Returns the value of the request header field name, or "none". */
    static std::string request_header(const Request &request, const std::string &name)
    {
        std::string lower_block = request.header_block;
        std::transform(lower_block.begin(), lower_block.end(), lower_block.begin(), ::tolower);
        std::string key = "\r\n" + name + ":";
        std::string block = "\r\n" + lower_block;
        size_t start = block.find(key);
        if (start == std::string::npos)
            return "none";
        start += key.size();
        size_t end = block.find("\r\n", start);
        std::string value = ("\r\n" + request.header_block).substr(start, end - start);
        value.erase(0, value.find_first_not_of(' '));
        return value;
    }

    static std::string query_value(const std::string &target, const std::string &name)
    {
        size_t start = target.find(name + "=");
        if (start == std::string::npos)
            return "";
        start += name.size() + 1;
        return target.substr(start, target.find('&', start) - start);
    }

    bool respond(int fd, const Request &request, const std::string &status_line,
                 const std::string &fields, const std::string &body)
    {
        std::string head = "HTTP/1.1 " + status_line + "\r\n" + fields +
                           "Content-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n";
        /* The request stops counting as in flight before the answer goes
         * out: the client may start its next request as soon as it has the
         * answer, before this thread returns. */
        finish_active();
        if (request.method == "HEAD")
            return send_all(fd, head);
        return send_all(fd, head + body);
    }

    void finish_active()
    {
        if (!answered_)
        {
            answered_ = true;
            --active_;
        }
    }

    void handle_connection(int fd)
    {
        answered_ = false;
        int now_active = ++active_;
        int previous = max_concurrent_;
        while (now_active > previous &&
               !max_concurrent_.compare_exchange_weak(previous, now_active))
        {
        }
        Request request;
        if (read_request(fd, request))
        {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                targets_.push_back(request.target);
            }
            dispatch(fd, request);
        }
        finish_active();
    }

    void dispatch(int fd, const Request &request)
    {
        std::string path = request.target.substr(0, request.target.find('?'));
        if (path == "/ok")
        {
            respond(fd, request, "200 OK",
                    "Content-Type: application/json\r\n"
                    "Set-Cookie: SAP_SESSIONID_ERP_100=abc123; path=/; HttpOnly\r\n"
                    "Set-Cookie: sap-usercontext=sap-client=100; path=/\r\n"
                    "X-Folded: first\r\n  second\r\n",
                    kOkBody);
        }
        else if (path == "/slow")
        {
            if (sleep_unless_stopped(3000))
                respond(fd, request, "200 OK", "", "late");
        }
        else if (path == "/delay")
        {
            if (sleep_unless_stopped(std::stol(query_value(request.target, "ms"))))
                respond(fd, request, "200 OK", "", "id=" + query_value(request.target, "id"));
        }
        else if (path == "/big")
        {
            /* No Content-Length: the body ends when the connection closes. */
            std::string head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
            std::string chunk(16 * 1024, 'x');
            if (!send_all(fd, head))
                return;
            for (size_t sent = 0; sent < kBigBodyBytes && !stop_; sent += chunk.size())
                if (!send_all(fd, chunk))
                    return;
        }
        else if (path == "/announce-big")
        {
            std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n"
                               "Connection: close\r\n\r\n";
            if (request.method == "HEAD")
                send_all(fd, head);
            else
                send_all(fd, head + std::string(100, 'x'));
        }
        else if (path == "/retry")
        {
            respond(fd, request, "429 Too Many Requests", "Retry-After: 7\r\n",
                    "{\"error\":\"slow down\"}");
        }
        else if (path == "/redirect")
        {
            respond(fd, request, "302 Found", "Location: /ok\r\n", "moved");
        }
        else if (path == "/csrf")
        {
            respond(fd, request, "403 Forbidden", "X-CSRF-Token: Required\r\n",
                    "CSRF token validation failed");
        }
        else if (path == "/headers")
        {
            respond(fd, request, "200 OK", "Content-Type: text/plain\r\n",
                    request.header_block);
        }
        else if (path == "/post")
        {
            respond(fd, request, "200 OK",
                    "X-Request-Method: " + request.method + "\r\n" +
                        "X-Request-Content-Type: " + request_header(request, "content-type") +
                        "\r\n" + "X-Request-Content-Length: " +
                        request_header(request, "content-length") + "\r\n",
                    request.body);
        }
        else if (path == "/gzip")
        {
            respond(fd, request, "200 OK",
                    "Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
                    std::string(kGzipBody, sizeof(kGzipBody) - 1));
        }
        else if (path == "/close")
        {
            /* No response at all: the handler closes the connection. */
        }
        else
        {
            respond(fd, request, "404 Not Found", "", "not found");
        }
    }

  public:
    static constexpr const char *kOkBody = "{\"value\":[{\"Vin\":\"WVWZZZ1JZXW000001\"}]}";
    static constexpr size_t kBigBodyBytes = 1024 * 1024;
    /* gzip of {"compressed":true}, made by Python's gzip.compress(mtime=0). */
    static constexpr char kGzipBody[] =
        "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\x4a\xce\xcf\x2d\x28\x4a\x2d\x2e"
        "\x4e\x4d\x51\xb2\x2a\x29\x2a\x4d\xad\x05\x00\xf1\xea\x39\x95\x13\x00\x00\x00";
};

/* ---------- parse_retry_after ---------- */

/* Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110. */
constexpr std::time_t kExampleDate = 784111777;

TEST(HttpRetryAfter, DeltaSeconds)
{
    EXPECT_EQ(parse_retry_after("7", kExampleDate), 7L);
    EXPECT_EQ(parse_retry_after("0", kExampleDate), 0L);
    EXPECT_EQ(parse_retry_after(" 120\t", kExampleDate), 120L);
    EXPECT_EQ(parse_retry_after("99999999999999999999999", kExampleDate), LONG_MAX);
}

TEST(HttpRetryAfter, ImfFixdate)
{
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", kExampleDate), 10L);
    EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", kExampleDate), 86400L);
    EXPECT_EQ(parse_retry_after("sun, 06 nov 1994 08:49:47 gmt", kExampleDate), 10L);
    /* 2024 is a leap year. */
    EXPECT_EQ(parse_retry_after("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800 - 60), 60L);
}

TEST(HttpRetryAfter, Rfc850Date)
{
    EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:47 GMT", kExampleDate), 10L);
    /* Now is 2025-01-01: year 26 is 2026, one year ahead. */
    EXPECT_EQ(parse_retry_after("Thursday, 01-Jan-26 00:00:00 GMT", 1735689600),
              1767225600L - 1735689600L);
    /* Now is 2090-01-01: year 05 is 2105, not 2005, which lies 85 years back. */
    EXPECT_EQ(parse_retry_after("Thursday, 01-Mar-05 00:00:00 GMT", 3786912000),
              4265308800L - 3786912000L);
}

TEST(HttpRetryAfter, AsctimeDate)
{
    EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:47 1994", kExampleDate), 10L);
    EXPECT_EQ(parse_retry_after("Wed Nov 16 08:49:37 1994", kExampleDate), 10L * 86400);
}

TEST(HttpRetryAfter, PastDateIsZero)
{
    std::time_t year_2025 = 1735689600;
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", year_2025), 0L);
    EXPECT_EQ(parse_retry_after("Saturday, 01-Jan-94 00:00:00 GMT", year_2025), 0L);
    EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", year_2025), 0L);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kExampleDate), 0L);
}

TEST(HttpRetryAfter, GarbageIsRejected)
{
    const char *values[] = {
        "",
        "   ",
        "soon",
        "-5",
        "+7",
        "7.5",
        "0x10",
        "7 seconds",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Wed, 29 Feb 2023 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Xyz 1994 08:49:37 GMT",
        "Foo, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov  6 08:49:37",
        "Sun Nov  6 08:49:37 1994 GMT",
    };
    for (const char *value : values)
        EXPECT_EQ(parse_retry_after(value, kExampleDate), std::nullopt) << "value: " << value;
}

/* ---------- backoff_delay_ms ---------- */

TEST(HttpBackoff, BoundsAndCapForAttempts)
{
    const long base = 100;
    const long cap = 30000;
    for (int attempt = 0; attempt <= 20; attempt++)
    {
        long ceiling = std::min(cap, base << attempt);
        SCOPED_TRACE("attempt " + std::to_string(attempt));
        EXPECT_EQ(backoff_delay_ms(attempt, base, cap, 0), 0);
        EXPECT_EQ(backoff_delay_ms(attempt, base, cap, static_cast<uint64_t>(ceiling)), ceiling);
        EXPECT_EQ(backoff_delay_ms(attempt, base, cap, static_cast<uint64_t>(ceiling) + 1), 0);
        EXPECT_LE(backoff_delay_ms(attempt, base, cap, UINT64_MAX), ceiling);
        EXPECT_LE(backoff_delay_ms(attempt, base, cap, 0x123456789abcdefULL), ceiling);
    }
    /* 100 ms * 2^9 = 51200 ms, cut to the cap. */
    EXPECT_EQ(backoff_delay_ms(9, base, cap, 30000), 30000);
    EXPECT_EQ(backoff_delay_ms(INT_MAX, base, LONG_MAX, LONG_MAX), LONG_MAX);
}

TEST(HttpBackoff, JitterCoversWholeRange)
{
    std::mt19937_64 random(42);
    const long ceiling = 3200; /* attempt 5 with a base of 100 ms */
    long minimum = LONG_MAX;
    long maximum = 0;
    double sum = 0;
    const int samples = 4000;
    for (int i = 0; i < samples; i++)
    {
        long delay = backoff_delay_ms(5, 100, 60000, random());
        ASSERT_GE(delay, 0);
        ASSERT_LE(delay, ceiling);
        minimum = std::min(minimum, delay);
        maximum = std::max(maximum, delay);
        sum += static_cast<double>(delay);
    }
    EXPECT_LT(minimum, ceiling / 10);
    EXPECT_GT(maximum, ceiling * 9 / 10);
    EXPECT_NEAR(sum / samples, ceiling / 2.0, ceiling * 0.05);
}

TEST(HttpBackoff, EdgeInputs)
{
    EXPECT_EQ(backoff_delay_ms(3, 0, 1000, 12345), 0);
    EXPECT_EQ(backoff_delay_ms(3, 100, 0, 12345), 0);
    EXPECT_EQ(backoff_delay_ms(3, -100, 1000, 12345), 0);
    /* A negative attempt counts as attempt 0. */
    EXPECT_EQ(backoff_delay_ms(-4, 100, 1000, 100), 100);
    EXPECT_EQ(backoff_delay_ms(-4, 100, 1000, 101), 0);
    /* A base above the cap is cut to the cap. */
    EXPECT_EQ(backoff_delay_ms(0, 5000, 1000, 1000), 1000);
    EXPECT_EQ(backoff_delay_ms(0, 5000, 1000, 1001), 0);
}

/* ---------- classify_response ---------- */

HttpResponse
response_with(int status, HttpError error = HttpError::None, HttpHeaders headers = {})
{
    HttpResponse response;
    response.status = status;
    response.error = error;
    response.headers = std::move(headers);
    return response;
}

thread_local bool TestServer::answered_ = false;

struct ClassCase
{
    int status;
    FailureClass read;
    FailureClass write;
};

TEST(HttpClassify, StatusCodes)
{
    using F = FailureClass;
    const ClassCase cases[] = {
        {200, F::Success, F::Success},
        {201, F::Success, F::Success},
        {204, F::Success, F::Success},
        {299, F::Success, F::Success},
        {301, F::Configuration, F::Permanent},
        {302, F::Configuration, F::Permanent},
        {304, F::Configuration, F::Permanent},
        {307, F::Configuration, F::Permanent},
        {308, F::Configuration, F::Permanent},
        {400, F::Configuration, F::Permanent},
        {401, F::Configuration, F::Configuration},
        {403, F::Configuration, F::Permanent},
        {404, F::Configuration, F::Permanent},
        {405, F::Configuration, F::Permanent},
        {407, F::Configuration, F::Configuration},
        {408, F::Transient, F::Transient},
        {409, F::Configuration, F::Permanent},
        {412, F::Concurrency, F::Concurrency},
        {422, F::Configuration, F::Permanent},
        {423, F::Transient, F::Transient},
        {425, F::Transient, F::Transient},
        {428, F::Concurrency, F::Concurrency},
        {429, F::Transient, F::Transient},
        {500, F::Transient, F::Transient},
        {502, F::Transient, F::Transient},
        {503, F::Transient, F::Transient},
        {504, F::Transient, F::Transient},
        {599, F::Transient, F::Transient},
        {100, F::Transient, F::Permanent},
        {0, F::Transient, F::Permanent},
        {600, F::Transient, F::Permanent},
    };
    for (const ClassCase &c : cases)
    {
        SCOPED_TRACE("status " + std::to_string(c.status));
        HttpResponse response = response_with(c.status);
        EXPECT_STREQ(failure_class_name(classify_response(response, false)),
                     failure_class_name(c.read));
        EXPECT_STREQ(failure_class_name(classify_response(response, true)),
                     failure_class_name(c.write));
    }
}

TEST(HttpClassify, TransportErrorsOverrideStatus)
{
    using F = FailureClass;
    struct ErrorCase
    {
        HttpError error;
        FailureClass read;
        FailureClass write;
    };
    const ErrorCase cases[] = {
        {HttpError::Timeout, F::Transient, F::Transient},
        {HttpError::Connection, F::Transient, F::Transient},
        {HttpError::Resolve, F::Transient, F::Transient},
        {HttpError::Other, F::Transient, F::Transient},
        {HttpError::TooLarge, F::Transient, F::Permanent},
        {HttpError::Protocol, F::Transient, F::Permanent},
        {HttpError::Tls, F::Configuration, F::Configuration},
        {HttpError::InvalidUrl, F::Configuration, F::Configuration},
        {HttpError::InvalidRequest, F::Configuration, F::Configuration},
        {HttpError::Aborted, F::Aborted, F::Aborted},
    };
    for (const ErrorCase &c : cases)
    {
        for (int status : {0, 200})
        {
            SCOPED_TRACE(std::string(http_error_name(c.error)) + ", status " +
                         std::to_string(status));
            HttpResponse response = response_with(status, c.error);
            EXPECT_STREQ(failure_class_name(classify_response(response, false)),
                         failure_class_name(c.read));
            EXPECT_STREQ(failure_class_name(classify_response(response, true)),
                         failure_class_name(c.write));
        }
    }
}

TEST(HttpClassify, CsrfTokenRequired)
{
    HttpResponse required = response_with(403, HttpError::None, {{"x-csrf-token", "Required"}});
    EXPECT_TRUE(csrf_token_required(required));
    EXPECT_EQ(classify_response(required, true), FailureClass::Transient);
    EXPECT_EQ(classify_response(required, false), FailureClass::Transient);

    HttpResponse lower_case = response_with(403, HttpError::None, {{"x-csrf-token", "required"}});
    EXPECT_TRUE(csrf_token_required(lower_case));

    HttpResponse other_token = response_with(403, HttpError::None, {{"x-csrf-token", "abc=="}});
    EXPECT_FALSE(csrf_token_required(other_token));
    EXPECT_EQ(classify_response(other_token, true), FailureClass::Permanent);
    EXPECT_EQ(classify_response(other_token, false), FailureClass::Configuration);

    HttpResponse no_token = response_with(403);
    EXPECT_FALSE(csrf_token_required(no_token));
    EXPECT_EQ(classify_response(no_token, true), FailureClass::Permanent);

    HttpResponse not_forbidden =
        response_with(401, HttpError::None, {{"x-csrf-token", "Required"}});
    EXPECT_FALSE(csrf_token_required(not_forbidden));
    EXPECT_EQ(classify_response(not_forbidden, true), FailureClass::Configuration);
}

/* ---------- base64 and Basic authorization ---------- */

TEST(HttpBase64, Rfc4648Vectors)
{
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64_encode(std::string_view("\xff\xfe\x00", 3)), "//4A");
    EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
}

TEST(HttpBase64, BasicAuthorization)
{
    /* The examples of RFC 7617 sections 2 and 2.1. */
    EXPECT_EQ(basic_authorization("Aladdin", "open sesame"),
              "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    EXPECT_EQ(basic_authorization("test", "123\xc2\xa3"), "Basic dGVzdDoxMjPCow==");
    /* Only the user-id may not contain a colon. */
    EXPECT_EQ(basic_authorization("user", "pa:ss"), "Basic " + base64_encode("user:pa:ss"));
    EXPECT_EQ(basic_authorization("us:er", "secret"), std::nullopt);
    EXPECT_EQ(basic_authorization("user", "line\nbreak"), std::nullopt);
    EXPECT_EQ(basic_authorization("us\ter", "secret"), std::nullopt);
}

/* ---------- redaction ---------- */

TEST(HttpRedact, UrlPasswordAndSecretParameters)
{
    EXPECT_EQ(redact_url("https://user:secret@erp.example.com/sap/opu/odata/sap/Z_SRV/"),
              "https://user:***@erp.example.com/sap/opu/odata/sap/Z_SRV/");
    EXPECT_EQ(redact_url("https://user:secret@erp.example.com"),
              "https://user:***@erp.example.com");
    EXPECT_EQ(redact_url("https://h/p?sap-client=100&access_token=abc&$skiptoken=5"
                         "&Password=x&api_key=k#frag"),
              "https://h/p?sap-client=100&access_token=***&$skiptoken=5"
              "&Password=***&api_key=***#frag");
    EXPECT_EQ(redact_url("https://h/p?code=1&key=2&$deltatoken=D1"),
              "https://h/p?code=***&key=***&$deltatoken=D1");
}

TEST(HttpRedact, UrlWithoutSecretsIsUnchanged)
{
    const char *urls[] = {
        "https://erp.example.com/sap/opu/odata/sap/Z_SRV/Vehicles?$top=100&$filter=x",
        "https://user@erp.example.com/",
        "https://erp.example.com/a@b:c",
        "https://erp.example.com/p#user:pw@x",
        "not a url at all",
        "",
        "https://h/p?",
        "https://h/p?flag&token",
    };
    for (const char *url : urls)
        EXPECT_EQ(redact_url(url), url);
}

TEST(HttpRedact, HeaderValues)
{
    EXPECT_EQ(redact_header_value("Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
              "Basic ***");
    EXPECT_EQ(redact_header_value("authorization", "Bearer eyJhbGciOi"), "Bearer ***");
    EXPECT_EQ(redact_header_value("AUTHORIZATION", "opaque-token"), "***");
    EXPECT_EQ(redact_header_value("Proxy-Authorization", "Basic abc"), "Basic ***");
    EXPECT_EQ(redact_header_value("Cookie", "SAP_SESSIONID=abc; sap-usercontext=x"), "***");
    EXPECT_EQ(redact_header_value("set-cookie", "SAP_SESSIONID=abc; path=/"), "***");
    EXPECT_EQ(redact_header_value("X-CSRF-Token", "k8Zx2Q=="), "***");
    EXPECT_EQ(redact_header_value("x-csrf-token", "Fetch"), "Fetch");
    EXPECT_EQ(redact_header_value("x-csrf-token", "Required"), "Required");
    EXPECT_EQ(redact_header_value("X-API-Key", "k"), "***");
    EXPECT_EQ(redact_header_value("Accept", "application/json"), "application/json");
    EXPECT_EQ(redact_header_value("Authorization", ""), "");

    HttpHeaders headers = {{"Accept", "application/json"},
                           {"Authorization", "Basic abc"},
                           {"x-csrf-token", "token"}};
    HttpHeaders expected = {{"Accept", "application/json"},
                            {"Authorization", "Basic ***"},
                            {"x-csrf-token", "***"}};
    EXPECT_EQ(redact_headers(headers), expected);
}

/* ---------- real transfers ---------- */

class HttpTransfer : public ::testing::Test
{
  protected:
    TestServer server;
    HttpOptions options;

    void SetUp() override
    {
        options.connect_timeout_ms = 2000;
        options.total_timeout_ms = 5000;
        options.max_response_bytes = 1024 * 1024;
    }

    HttpResponse get(const std::string &target)
    {
        HttpRequest request;
        request.url = server.url(target);
        return http_perform(request, options);
    }
};

TEST_F(HttpTransfer, GetReturnsBodyAndHeaders)
{
    HttpResponse response = get("/ok");
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, TestServer::kOkBody);
    EXPECT_EQ(response.header("content-type"), "application/json");
    EXPECT_EQ(response.header("Content-Type"), "application/json");
    EXPECT_EQ(response.header("x-missing"), std::nullopt);
    EXPECT_EQ(response.header("x-folded"), "first second");
    for (const auto &field : response.headers)
    {
        bool has_upper = std::any_of(field.first.begin(), field.first.end(),
                                     [](char c) { return c >= 'A' && c <= 'Z'; });
        EXPECT_FALSE(has_upper) << field.first;
    }

    std::vector<std::string> cookies = response.set_cookies();
    ASSERT_EQ(cookies.size(), 2u);
    EXPECT_EQ(cookies[0], "SAP_SESSIONID_ERP_100=abc123; path=/; HttpOnly");
    EXPECT_EQ(cookies[1], "sap-usercontext=sap-client=100; path=/");

    EXPECT_GE(response.elapsed_ms, 0);
    EXPECT_LT(response.elapsed_ms, 2000);
    EXPECT_EQ(classify_response(response, false), FailureClass::Success);
}

TEST_F(HttpTransfer, SendsUserAgentCookiesAndHeaders)
{
    HttpRequest request;
    request.url = server.url("/headers");
    request.headers = {{"Accept", "application/json"}, {"X-Custom", "value 1"}, {"X-Empty", ""}};
    options.cookies = "SAP_SESSIONID=abc; sap-usercontext=sap-client=100";
    HttpResponse response = http_perform(request, options);
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    const std::string &sent = response.body;
    EXPECT_NE(sent.find("User-Agent: stocktech_sync\r\n"), std::string::npos) << sent;
    EXPECT_NE(sent.find("Accept: application/json\r\n"), std::string::npos) << sent;
    EXPECT_NE(sent.find("X-Custom: value 1\r\n"), std::string::npos) << sent;
    EXPECT_NE(sent.find("X-Empty:"), std::string::npos) << sent;
    EXPECT_NE(sent.find("Cookie: SAP_SESSIONID=abc; sap-usercontext=sap-client=100\r\n"),
              std::string::npos)
        << sent;
    EXPECT_NE(sent.find("Accept-Encoding: "), std::string::npos) << sent;
    EXPECT_EQ(sent.find("Expect:"), std::string::npos) << sent;
    EXPECT_EQ(sent.find("*/*"), std::string::npos) << sent;
}

TEST_F(HttpTransfer, PatchSendsMethodAndBody)
{
    HttpRequest request;
    request.method = "PATCH";
    request.url = server.url("/post");
    request.headers = {{"Content-Type", "application/json"}, {"If-Match", "W/\"1\""}};
    request.body = "{\"Status\":\"SOLD\"}";
    HttpResponse response = http_perform(request, options);
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, request.body);
    EXPECT_EQ(response.header("x-request-method"), "PATCH");
    EXPECT_EQ(response.header("x-request-content-type"), "application/json");
    EXPECT_EQ(response.header("x-request-content-length"), "17");
}

TEST_F(HttpTransfer, BodyWithoutContentTypeGetsNone)
{
    HttpRequest request;
    request.method = "POST";
    request.url = server.url("/post");
    request.body = "a=1";
    HttpResponse response = http_perform(request, options);
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    EXPECT_EQ(response.body, "a=1");
    EXPECT_EQ(response.header("x-request-method"), "POST");
    EXPECT_EQ(response.header("x-request-content-type"), "none");
}

TEST_F(HttpTransfer, EmptyBodyByMethod)
{
    HttpRequest request;
    request.url = server.url("/post");

    request.method = "DELETE";
    HttpResponse deleted = http_perform(request, options);
    ASSERT_EQ(deleted.error, HttpError::None) << deleted.error_message;
    EXPECT_EQ(deleted.header("x-request-method"), "DELETE");
    EXPECT_EQ(deleted.header("x-request-content-length"), "none");

    request.method = "PUT";
    HttpResponse put = http_perform(request, options);
    ASSERT_EQ(put.error, HttpError::None) << put.error_message;
    EXPECT_EQ(put.header("x-request-method"), "PUT");
    EXPECT_EQ(put.header("x-request-content-length"), "0");
}

TEST_F(HttpTransfer, GzipBodyIsDecoded)
{
    HttpResponse response = get("/gzip");
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    EXPECT_EQ(response.body, "{\"compressed\":true}");
    EXPECT_EQ(response.header("content-encoding"), "gzip");
}

TEST_F(HttpTransfer, TooManyRequestsHasRetryAfter)
{
    HttpResponse response = get("/retry");
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    EXPECT_EQ(response.status, 429);
    EXPECT_EQ(response.body, "{\"error\":\"slow down\"}");
    ASSERT_TRUE(response.header("retry-after").has_value());
    EXPECT_EQ(parse_retry_after(*response.header("retry-after"), std::time(nullptr)), 7L);
    EXPECT_EQ(classify_response(response, true), FailureClass::Transient);
}

TEST_F(HttpTransfer, RedirectIsNotFollowed)
{
    HttpResponse response = get("/redirect");
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    EXPECT_EQ(response.status, 302);
    EXPECT_EQ(response.header("location"), "/ok");
    EXPECT_EQ(response.body, "moved");
    EXPECT_EQ(server.request_targets(), std::vector<std::string>{"/redirect"});
    EXPECT_EQ(classify_response(response, true), FailureClass::Permanent);
    EXPECT_EQ(classify_response(response, false), FailureClass::Configuration);
}

TEST_F(HttpTransfer, CsrfRequiredResponse)
{
    HttpResponse response = get("/csrf");
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    EXPECT_EQ(response.status, 403);
    EXPECT_TRUE(csrf_token_required(response));
    EXPECT_EQ(classify_response(response, true), FailureClass::Transient);
}

TEST_F(HttpTransfer, TotalTimeoutExpires)
{
    options.total_timeout_ms = 300;
    HttpResponse response = get("/slow");
    EXPECT_EQ(response.error, HttpError::Timeout) << response.error_message;
    EXPECT_TRUE(response.body.empty());
    EXPECT_GE(response.elapsed_ms, 250);
    EXPECT_LT(response.elapsed_ms, 2000);
    EXPECT_EQ(classify_response(response, false), FailureClass::Transient);
}

TEST_F(HttpTransfer, BodyOverCapIsTooLarge)
{
    options.max_response_bytes = TestServer::kBigBodyBytes - 1;
    HttpResponse response = get("/big");
    EXPECT_EQ(response.error, HttpError::TooLarge) << response.error_message;
    EXPECT_EQ(response.status, 200);
    EXPECT_TRUE(response.body.empty());
    EXPECT_NE(response.error_message.find("max_response_bytes"), std::string::npos)
        << response.error_message;
    EXPECT_EQ(classify_response(response, true), FailureClass::Permanent);
    EXPECT_EQ(classify_response(response, false), FailureClass::Transient);
}

TEST_F(HttpTransfer, BodyAtCapIsAccepted)
{
    options.max_response_bytes = TestServer::kBigBodyBytes;
    HttpResponse response = get("/big");
    ASSERT_EQ(response.error, HttpError::None) << response.error_message;
    EXPECT_EQ(response.body.size(), TestServer::kBigBodyBytes);

    options.max_response_bytes = std::strlen(TestServer::kOkBody);
    EXPECT_EQ(get("/ok").error, HttpError::None);
    options.max_response_bytes = std::strlen(TestServer::kOkBody) - 1;
    EXPECT_EQ(get("/ok").error, HttpError::TooLarge);
}

TEST_F(HttpTransfer, AnnouncedContentLengthIsTooLarge)
{
    HttpResponse response = get("/announce-big");
    EXPECT_EQ(response.error, HttpError::TooLarge) << response.error_message;
    EXPECT_NE(response.error_message.find("Content-Length 10000000000"), std::string::npos)
        << response.error_message;
    EXPECT_TRUE(response.body.empty());

    HttpRequest head;
    head.method = "HEAD";
    head.url = server.url("/announce-big");
    HttpResponse head_response = http_perform(head, options);
    EXPECT_EQ(head_response.error, HttpError::None) << head_response.error_message;
    EXPECT_EQ(head_response.status, 200);
    EXPECT_EQ(head_response.header("content-length"), "10000000000");
}

TEST_F(HttpTransfer, ShouldAbortStopsSlowTransfer)
{
    options.total_timeout_ms = 10000;
    options.poll_interval_ms = 100;
    Clock::time_point start = Clock::now();
    int calls = 0;
    options.should_abort = [&] {
        calls++;
        return milliseconds_since(start) >= 100;
    };
    HttpResponse response = get("/slow");
    long elapsed = milliseconds_since(start);
    EXPECT_EQ(response.error, HttpError::Aborted) << response.error_message;
    EXPECT_TRUE(response.body.empty());
    /* Expected about 200 ms: the abort at 100 ms plus at most one poll. */
    EXPECT_LT(elapsed, 500);
    EXPECT_GE(calls, 2);
    EXPECT_EQ(classify_response(response, true), FailureClass::Aborted);
}

TEST_F(HttpTransfer, NonHttpUrlsAreRejectedUnsent)
{
    std::string port = std::to_string(server.port());
    std::vector<std::string> urls = {
        "file:///etc/passwd",
        "ftp://127.0.0.1:" + port + "/file",
        "gopher://127.0.0.1:" + port + "/",
        "dict://127.0.0.1:" + port + "/",
        "127.0.0.1:" + port + "/ok",
        "http://127.0.0.1:" + port + "/o k",
        "http://127.0.0.1:" + port + "/ok\r\nX-Injected: 1",
        "http:///ok",
        "",
    };
    for (const std::string &url : urls)
    {
        HttpRequest request;
        request.url = url;
        HttpResponse response = http_perform(request, options);
        EXPECT_EQ(response.error, HttpError::InvalidUrl)
            << "url: " << url << ", error: " << http_error_name(response.error) << ", "
            << response.error_message;
        EXPECT_EQ(response.status, 0) << url;
        EXPECT_FALSE(response.error_message.empty()) << url;
        EXPECT_EQ(classify_response(response, false), FailureClass::Configuration) << url;
    }
    HttpRequest with_nul;
    with_nul.url = "http://127.0.0.1:" + port + "/ok";
    with_nul.url.push_back('\0');
    with_nul.url += "/x";
    EXPECT_EQ(http_perform(with_nul, options).error, HttpError::InvalidUrl);

    /* Give a connection that was opened anyway the time to show up. */
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(server.connection_count(), 0);
}

TEST_F(HttpTransfer, InvalidRequestsAreRejectedUnsent)
{
    HttpRequest injected;
    injected.url = server.url("/headers");
    injected.headers = {{"X-Value", "a\r\nX-Injected: 1"}};
    EXPECT_EQ(http_perform(injected, options).error, HttpError::InvalidRequest);

    HttpRequest bad_name;
    bad_name.url = server.url("/headers");
    bad_name.headers = {{"Bad Name", "x"}};
    EXPECT_EQ(http_perform(bad_name, options).error, HttpError::InvalidRequest);

    HttpRequest bad_method;
    bad_method.method = "GE T";
    bad_method.url = server.url("/ok");
    EXPECT_EQ(http_perform(bad_method, options).error, HttpError::InvalidRequest);

    HttpRequest head_with_body;
    head_with_body.method = "HEAD";
    head_with_body.url = server.url("/ok");
    head_with_body.body = "x";
    EXPECT_EQ(http_perform(head_with_body, options).error, HttpError::InvalidRequest);

    HttpRequest plain;
    plain.url = server.url("/ok");
    HttpOptions bad_cookies = options;
    bad_cookies.cookies = "a=1\r\nX-Injected: 1";
    EXPECT_EQ(http_perform(plain, bad_cookies).error, HttpError::InvalidRequest);

    HttpOptions no_timeout = options;
    no_timeout.total_timeout_ms = 0;
    HttpResponse response = http_perform(plain, no_timeout);
    EXPECT_EQ(response.error, HttpError::InvalidRequest);
    EXPECT_NE(response.error_message.find("total_timeout_ms"), std::string::npos)
        << response.error_message;

    HttpOptions no_poll_interval = options;
    no_poll_interval.poll_interval_ms = 0;
    EXPECT_EQ(http_perform(plain, no_poll_interval).error, HttpError::InvalidRequest);

    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(server.connection_count(), 0);
}

TEST_F(HttpTransfer, ClosedConnectionIsConnectionError)
{
    HttpResponse response = get("/close");
    EXPECT_EQ(response.error, HttpError::Connection) << response.error_message;
    EXPECT_EQ(response.status, 0);
    EXPECT_EQ(classify_response(response, true), FailureClass::Transient);
}

TEST_F(HttpTransfer, RefusedConnectionIsConnectionError)
{
    /* A bound socket that does not listen: connecting to it is refused, and
     * no other process can take the port meanwhile. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)), 0);
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length), 0);

    HttpRequest request;
    request.url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/ok";
    HttpResponse response = http_perform(request, options);
    close(fd);
    EXPECT_EQ(response.error, HttpError::Connection) << response.error_message;
    EXPECT_EQ(classify_response(response, false), FailureClass::Transient);
}

TEST_F(HttpTransfer, PerformManyKeepsOrderAndParallelLimit)
{
    std::vector<HttpRequest> requests(5);
    for (size_t i = 0; i < requests.size(); i++)
        requests[i].url = server.url("/delay?ms=300&id=" + std::to_string(i));
    Clock::time_point start = Clock::now();
    std::vector<HttpResponse> responses = http_perform_many(requests, options, 3);
    long elapsed = milliseconds_since(start);

    ASSERT_EQ(responses.size(), 5u);
    for (size_t i = 0; i < responses.size(); i++)
    {
        EXPECT_EQ(responses[i].error, HttpError::None) << i << ": " << responses[i].error_message;
        EXPECT_EQ(responses[i].status, 200) << i;
        EXPECT_EQ(responses[i].body, "id=" + std::to_string(i));
    }
    /* Three at once prove the parallelism, at most three the limit; the
     * elapsed time only shows the two rounds, since a loaded machine can
     * stretch it. */
    EXPECT_EQ(server.max_concurrent(), 3);
    EXPECT_GE(elapsed, 550);
}

TEST_F(HttpTransfer, PerformManyReportsEachResult)
{
    std::vector<HttpRequest> requests(4);
    requests[0].url = server.url("/ok");
    requests[1].url = "file:///etc/passwd";
    requests[2].method = "POST";
    requests[2].url = server.url("/post");
    requests[2].body = "payload";
    requests[3].url = server.url("/retry");
    std::vector<HttpResponse> responses = http_perform_many(requests, options, 0);

    ASSERT_EQ(responses.size(), 4u);
    EXPECT_EQ(responses[0].status, 200);
    EXPECT_EQ(responses[0].body, TestServer::kOkBody);
    EXPECT_EQ(responses[1].error, HttpError::InvalidUrl);
    EXPECT_EQ(responses[2].status, 200);
    EXPECT_EQ(responses[2].body, "payload");
    EXPECT_EQ(responses[3].status, 429);
    EXPECT_EQ(server.max_concurrent(), 1);

    EXPECT_TRUE(http_perform_many({}, options, 3).empty());
}

TEST_F(HttpTransfer, PerformManyAbortEndsAllTransfers)
{
    std::vector<HttpRequest> requests(4);
    for (HttpRequest &request : requests)
        request.url = server.url("/slow");
    options.total_timeout_ms = 10000;
    Clock::time_point start = Clock::now();
    options.should_abort = [&] { return milliseconds_since(start) >= 100; };
    std::vector<HttpResponse> responses = http_perform_many(requests, options, 2);
    long elapsed = milliseconds_since(start);

    ASSERT_EQ(responses.size(), 4u);
    for (size_t i = 0; i < responses.size(); i++)
        EXPECT_EQ(responses[i].error, HttpError::Aborted) << i;
    EXPECT_LT(elapsed, 500);
    EXPECT_LE(server.max_concurrent(), 2);
}

}  // namespace
}  // namespace stocktech
