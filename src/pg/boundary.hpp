/*
 * boundary.hpp
 *    The boundary between C++ code and PostgreSQL's error handling.
 *
 * PostgreSQL reports errors with longjmp, which skips C++ destructors, and
 * C++ exceptions must never unwind through PostgreSQL's C frames.  Two tools
 * keep them apart:
 *
 *  - pg_call(fn) runs PostgreSQL code that may raise an error from C++ code
 *    that owns resources.  The error is caught in its own PG_TRY frame,
 *    copied, and rethrown as a PgError exception after the frame has ended.
 *  - run_at_boundary(fn) wraps the C++ body of every SQL-callable function,
 *    trigger and worker entry point.  It catches every exception and raises
 *    the matching PostgreSQL error once the C++ frames are gone: a PgError
 *    is rethrown as it was, a SqlError becomes an ereport with its SQLSTATE,
 *    message, detail and hint, std::bad_alloc becomes "out of memory" and
 *    anything else an internal error.
 *
 * Include postgres.h (inside extern "C") before this header.
 */
#ifndef STOCKTECH_PG_BOUNDARY_HPP
#define STOCKTECH_PG_BOUNDARY_HPP

#include <exception>
#include <new>
#include <string>
#include <utility>

/*
 * Declare a SQL-callable function with C linkage and export it: in
 * PostgreSQL 15, PG_FUNCTION_INFO_V1 exports only the info function, and the
 * module is built with -fvisibility=hidden.
 */
#define STOCKTECH_SQL_FUNCTION(name)                                                      \
    extern "C" {                                                                          \
    PG_FUNCTION_INFO_V1(name);                                                            \
    PGDLLEXPORT Datum name(PG_FUNCTION_ARGS);                                             \
    }

namespace stocktech::pg {

/* A PostgreSQL error caught by pg_call(); owns a copy of the ErrorData. */
class PgError : public std::exception
{
  public:
    explicit PgError(ErrorData *data) : data_(data) {}
    const char *what() const noexcept override
    {
        return data_ && data_->message ? data_->message : "PostgreSQL error";
    }
    ErrorData *data() const { return data_; }

  private:
    ErrorData *data_; /* palloc'd in the caller's memory context */
};

/* A user-facing error raised from C++ code: a SQLSTATE and the message parts. */
class SqlError : public std::exception
{
  public:
    SqlError(int sqlstate, std::string message, std::string detail = {},
             std::string hint = {})
        : sqlstate_(sqlstate), message_(std::move(message)), detail_(std::move(detail)),
          hint_(std::move(hint))
    {
    }
    const char *what() const noexcept override { return message_.c_str(); }
    int sqlstate() const { return sqlstate_; }
    const std::string &message() const { return message_; }
    const std::string &detail() const { return detail_; }
    const std::string &hint() const { return hint_; }

  private:
    int sqlstate_;
    std::string message_;
    std::string detail_;
    std::string hint_;
};

/*
 * Run fn, which calls PostgreSQL functions that may raise an error, and turn
 * such an error into a PgError.  fn must not throw and must not own C++
 * objects with destructors of its own.
 */
template <typename Fn>
void
pg_call(Fn &&fn)
{
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData *error = nullptr;

    PG_TRY();
    {
        fn();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        error = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();

    if (error != nullptr)
        throw PgError(error);
}

namespace detail {

/* Message parts copied out of an exception so it can be destroyed first. */
struct CaughtError
{
    ErrorData *pg_error = nullptr;
    int sqlstate = 0;
    char message[1024] = {0};
    char detail[2048] = {0};
    char hint[1024] = {0};
};

void copy_text(char *target, size_t size, const char *source);
[[noreturn]] void raise_caught(const CaughtError &caught);

}  // namespace detail

/*
 * Run fn, the C++ body of an entry point, and convert any exception it lets
 * out into a PostgreSQL error raised after the exception is destroyed.
 */
template <typename Fn>
auto
run_at_boundary(Fn &&fn) -> decltype(fn())
{
    detail::CaughtError caught;

    try
    {
        return fn();
    }
    catch (const PgError &e)
    {
        caught.pg_error = e.data();
    }
    catch (const SqlError &e)
    {
        caught.sqlstate = e.sqlstate();
        detail::copy_text(caught.message, sizeof(caught.message), e.message().c_str());
        detail::copy_text(caught.detail, sizeof(caught.detail), e.detail().c_str());
        detail::copy_text(caught.hint, sizeof(caught.hint), e.hint().c_str());
    }
    catch (const std::bad_alloc &)
    {
        caught.sqlstate = ERRCODE_OUT_OF_MEMORY;
        detail::copy_text(caught.message, sizeof(caught.message), "out of memory");
    }
    catch (const std::exception &e)
    {
        caught.sqlstate = ERRCODE_INTERNAL_ERROR;
        detail::copy_text(caught.message, sizeof(caught.message), e.what());
    }
    catch (...)
    {
        caught.sqlstate = ERRCODE_INTERNAL_ERROR;
        detail::copy_text(caught.message, sizeof(caught.message), "unknown C++ exception");
    }
    detail::raise_caught(caught);
}

}  // namespace stocktech::pg

#endif
