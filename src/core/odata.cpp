/*
 * odata.cpp
 *    OData page parsing, error summaries, link resolution and page URLs.
 *
 * Response bodies are untrusted: they are parsed with a SAX handler that
 * reports errors instead of throwing, limits nesting depth, and keeps the
 * exact text of non-integer numbers.  Every public function catches all
 * exceptions at its boundary.
 */
#include "core/odata.hpp"

#include <cstdio>

namespace stocktech {

namespace {

using nlohmann::json;

/* Deepest nesting of arrays and objects accepted in a response body.  An
 * OData entity with expanded navigation properties stays far below it. */
constexpr size_t kMaxDepth = 64;

/* Maximum length of ERP text kept in an error summary, in bytes. */
constexpr size_t kMaxErrorText = 500;

/* Number of V4 error "details" entries appended to the summary. */
constexpr size_t kMaxErrorDetails = 3;

/*
 * Builds a json DOM from SAX events.  Numbers with a fraction or exponent
 * are stored as strings holding their source text, so no digit is lost.
 */
class ExactDomBuilder
{
  public:
    json root;
    std::string error;
    size_t error_position = 0;

    bool null() { return add(json(nullptr)); }
    bool boolean(bool value) { return add(json(value)); }
    bool number_integer(json::number_integer_t value) { return add(json(value)); }
    bool number_unsigned(json::number_unsigned_t value) { return add(json(value)); }
    bool number_float(json::number_float_t, const json::string_t &text)
    {
        return add(json(text));
    }
    bool string(json::string_t &value) { return add(json(std::move(value))); }
    bool binary(json::binary_t &) { return fail("binary values are not JSON"); }
    bool key(json::string_t &name)
    {
        key_ = name;
        return true;
    }
    bool start_object(std::size_t) { return open(json::object()); }
    bool start_array(std::size_t) { return open(json::array()); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t position, const std::string &, const json::exception &e)
    {
        error_position = position;
        error = e.what();
        return false;
    }

  private:
    std::vector<json *> stack_;
    std::string key_;

    bool fail(const std::string &message)
    {
        error = message;
        return false;
    }

    json *insert(json &&value)
    {
        if (stack_.empty())
        {
            root = std::move(value);
            return &root;
        }
        json &parent = *stack_.back();
        if (parent.is_array())
        {
            parent.push_back(std::move(value));
            return &parent.back();
        }
        json &slot = parent[key_];
        slot = std::move(value);
        return &slot;
    }

    bool add(json &&value)
    {
        insert(std::move(value));
        return true;
    }

    bool open(json &&container)
    {
        if (stack_.size() >= kMaxDepth)
            return fail("JSON nesting is deeper than " + std::to_string(kMaxDepth) + " levels");
        stack_.push_back(insert(std::move(container)));
        return true;
    }

    bool close()
    {
        stack_.pop_back();
        return true;
    }
};

/* Returns the offset of the first byte that breaks UTF-8, or npos. */
size_t
find_invalid_utf8(std::string_view text)
{
    size_t i = 0;
    while (i < text.size())
    {
        unsigned char c = static_cast<unsigned char>(text[i]);
        size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3
                                                       : (c >> 3) == 0x1E ? 4 : 0;
        if (length == 0 || (length == 2 && c < 0xC2) || i + length > text.size())
            return i;
        for (size_t j = 1; j < length; j++)
        {
            if ((static_cast<unsigned char>(text[i + j]) & 0xC0) != 0x80)
                return i;
        }
        if (length == 3)
        {
            unsigned char next = static_cast<unsigned char>(text[i + 1]);
            if ((c == 0xE0 && next < 0xA0) || (c == 0xED && next >= 0xA0))
                return i; /* overlong form or UTF-16 surrogate */
        }
        if (length == 4)
        {
            unsigned char next = static_cast<unsigned char>(text[i + 1]);
            if ((c == 0xF0 && next < 0x90) || (c == 0xF4 && next >= 0x90) || c > 0xF4)
                return i;
        }
        i += length;
    }
    return std::string_view::npos;
}

/* Parses body.  On failure it sets error, and sets truncated when the input
 * ended before the JSON value was complete. */
bool
parse_json_body(std::string_view body, json &document, std::string &error, bool &truncated)
{
    truncated = false;
    size_t invalid = find_invalid_utf8(body);
    if (invalid != std::string_view::npos)
    {
        error = "the response body is not valid UTF-8 (invalid byte at offset " +
                std::to_string(invalid) + " of " + std::to_string(body.size()) + ")";
        return false;
    }
    ExactDomBuilder builder;
    bool ok = json::sax_parse(body.begin(), body.end(), &builder, json::input_format_t::json,
                              true, false);
    if (!ok)
    {
        truncated = builder.error_position >= body.size();
        if (truncated)
            error = "the response body is truncated JSON (" + std::to_string(body.size()) +
                    " bytes)";
        else
            error = "the response body is not valid JSON: " + builder.error;
        return false;
    }
    document = std::move(builder.root);
    return true;
}

/* Replaces control characters and cuts text to kMaxErrorText bytes at a
 * UTF-8 boundary. */
std::string
clean_text(std::string_view text)
{
    std::string result;
    bool space = false;
    for (char c : text)
    {
        bool is_space = static_cast<unsigned char>(c) < 0x20 || c == 0x7F || c == ' ';
        if (is_space)
        {
            space = !result.empty();
            continue;
        }
        if (space)
            result += ' ';
        space = false;
        result += c;
    }
    if (result.size() > kMaxErrorText)
    {
        size_t cut = kMaxErrorText;
        while (cut > 0 && (static_cast<unsigned char>(result[cut]) & 0xC0) == 0x80)
            cut--;
        result = result.substr(0, cut) + "...";
    }
    return result;
}

std::string
lower_ascii(std::string_view text)
{
    return lower(text);
}

/* Text of an OData error "message": a string (V4) or {"lang", "value"}
 * (V2). */
std::string
error_message_text(const json &message)
{
    if (message.is_string())
        return message.get<std::string>();
    if (message.is_object())
    {
        auto value = message.find("value");
        if (value != message.end() && value->is_string())
            return value->get<std::string>();
    }
    return "";
}

/* Summarises an OData error object: code, message and V4 details. */
std::string
describe_error_object(const std::string &prefix, const json &error_object)
{
    std::string code;
    auto code_it = error_object.find("code");
    if (code_it != error_object.end())
    {
        if (code_it->is_string())
            code = code_it->get<std::string>();
        else if (code_it->is_number())
            code = code_it->dump(); /* SAP Business One writes numbers */
    }
    std::string message;
    auto message_it = error_object.find("message");
    if (message_it != error_object.end())
        message = error_message_text(*message_it);

    std::string details;
    auto details_it = error_object.find("details");
    if (details_it != error_object.end() && details_it->is_array())
    {
        size_t details_shown = 0;
        for (const json &detail : *details_it)
        {
            if (details_shown == kMaxErrorDetails || !detail.is_object())
                break;
            auto detail_message = detail.find("message");
            if (detail_message == detail.end())
                continue;
            std::string text = error_message_text(*detail_message);
            if (text.empty())
                continue;
            details += (details_shown == 0 ? "" : "; ") + text;
            details_shown++;
        }
    }

    std::string summary = prefix;
    if (!code.empty())
        summary += ", error code " + json(clean_text(code)).dump();
    if (message.empty())
        summary += " without an error message";
    else
        summary += ": " + clean_text(message);
    if (!details.empty())
        summary += " (details: " + clean_text(details) + ")";
    return summary;
}

/* Finds the text between <tag ...> and </tag>, ignoring case and
 * namespace prefixes such as <m:message>. */
std::optional<std::string>
find_element_text(std::string_view body, std::string_view tag)
{
    const std::string lowered = lower_ascii(body);
    size_t pos = 0;
    while ((pos = lowered.find('<', pos)) != std::string::npos)
    {
        size_t name_start = pos + 1;
        size_t name_end = lowered.find_first_of(" \t\r\n>/", name_start);
        if (name_end == std::string::npos)
            return std::nullopt;
        std::string_view name(lowered.data() + name_start, name_end - name_start);
        size_t colon = name.find(':');
        std::string_view local = colon == std::string_view::npos ? name : name.substr(colon + 1);
        pos = name_end;
        if (local != tag)
            continue;

        size_t open_end = lowered.find('>', name_end);
        if (open_end == std::string::npos)
            return std::nullopt;
        const std::string closing = "</" + std::string(name) + ">";
        size_t close = lowered.find(closing, open_end + 1);
        if (close == std::string::npos)
            return std::nullopt;
        return std::string(body.substr(open_end + 1, close - open_end - 1));
    }
    return std::nullopt;
}

/* Decodes the few character references an HTML title or XML message
 * usually contains. */
std::string
decode_entities(std::string text)
{
    const std::pair<const char *, const char *> entities[] = {
        {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&apos;", "'"},
        {"&amp;", "&"}};
    for (const auto &[entity, replacement] : entities)
    {
        size_t pos = 0;
        const std::string_view name(entity);
        while ((pos = text.find(name, pos)) != std::string::npos)
        {
            text.replace(pos, name.size(), replacement);
            pos += 1;
        }
    }
    return text;
}

bool
starts_with_ignoring_case(std::string_view text, std::string_view prefix)
{
    return text.size() >= prefix.size() && lower_ascii(text.substr(0, prefix.size())) == prefix;
}

/* Summarises a JSON error body. */
std::string
describe_json_error(const std::string &prefix, std::string_view body)
{
    json document;
    std::string error;
    bool truncated = false;
    if (!parse_json_body(body, document, error, truncated))
    {
        return prefix + (truncated ? " with a truncated JSON body (" : " with an invalid JSON "
                                                                       "body (") +
               std::to_string(body.size()) + " bytes)";
    }
    if (document.is_object())
    {
        auto error_object = document.find("error");
        if (error_object != document.end() && error_object->is_object())
            return describe_error_object(prefix, *error_object);
        /* Some gateways wrap the error in "odata.error" (OData V3 JSON). */
        error_object = document.find("odata.error");
        if (error_object != document.end() && error_object->is_object())
            return describe_error_object(prefix, *error_object);
    }
    return prefix + " with a JSON body without an OData error object: " +
           clean_text(body.substr(0, 200));
}

/* Summarises an XML body: the OData V2 <error> document, or any XML. */
std::string
describe_xml_error(const std::string &prefix, std::string_view body)
{
    std::optional<std::string> message = find_element_text(body, "message");
    std::optional<std::string> code = find_element_text(body, "code");
    if (!message && !code)
        return prefix + " with an XML body without an OData error element";

    std::string summary = prefix;
    if (code)
        summary += ", error code " + json(clean_text(decode_entities(*code))).dump();
    if (message)
        summary += ": " + clean_text(decode_entities(*message));
    else
        summary += " without an error message";
    return summary;
}

/* Parses scheme:// and the authority of text into url. */
bool
parse_authority(std::string_view authority, HttpUrl &url, std::string &error)
{
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos)
    {
        url.userinfo = std::string(authority.substr(0, at));
        authority.remove_prefix(at + 1);
    }

    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority[0] == '[')
    {
        size_t close = authority.find(']');
        if (close == std::string_view::npos)
        {
            error = "unterminated IPv6 address";
            return false;
        }
        host = authority.substr(0, close + 1);
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty() && rest[0] != ':')
        {
            error = "unexpected text after the IPv6 address";
            return false;
        }
        if (!rest.empty())
            port = rest.substr(1);
    }
    else
    {
        size_t colon = authority.rfind(':');
        if (colon != std::string_view::npos)
        {
            host = authority.substr(0, colon);
            port = authority.substr(colon + 1);
        }
    }
    if (host.empty())
    {
        error = "the URL has no host";
        return false;
    }
    url.host = lower_ascii(host);

    if (!port.empty())
    {
        int64_t number = 0;
        std::string port_error;
        if (port.size() > 5 || !parse_integer(port, number, port_error) || number < 1 ||
            number > 65535 || port.find_first_not_of("0123456789") != std::string_view::npos)
        {
            error = "invalid port " + quote_value(port);
            return false;
        }
        bool is_default = (url.scheme == "http" && number == 80) ||
                          (url.scheme == "https" && number == 443);
        if (!is_default)
            url.port = std::to_string(number);
    }
    return true;
}

/* Splits the path, query and fragment of a URL reference. */
void
split_reference(std::string_view text, std::string &path, std::optional<std::string> &query,
                std::optional<std::string> &fragment)
{
    size_t hash = text.find('#');
    if (hash != std::string_view::npos)
    {
        fragment = std::string(text.substr(hash + 1));
        text = text.substr(0, hash);
    }
    size_t question = text.find('?');
    if (question != std::string_view::npos)
    {
        query = std::string(text.substr(question + 1));
        text = text.substr(0, question);
    }
    path = std::string(text);
}

/* RFC 3986 section 5.2.4. */
std::string
remove_dot_segments(std::string input)
{
    std::string output;
    while (!input.empty())
    {
        if (input.rfind("../", 0) == 0)
            input.erase(0, 3);
        else if (input.rfind("./", 0) == 0)
            input.erase(0, 2);
        else if (input.rfind("/./", 0) == 0)
            input.replace(0, 3, "/");
        else if (input == "/.")
            input = "/";
        else if (input.rfind("/../", 0) == 0 || input == "/..")
        {
            input = input == "/.." ? "/" : input.substr(3);
            size_t last = output.rfind('/');
            output.erase(last == std::string::npos ? 0 : last);
        }
        else if (input == "." || input == "..")
            input.clear();
        else
        {
            size_t next = input.find('/', input[0] == '/' ? 1 : 0);
            output += input.substr(0, next);
            input.erase(0, next == std::string::npos ? input.size() : next);
        }
    }
    return output;
}

bool
has_scheme(std::string_view text)
{
    size_t colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0)
        return false;
    for (size_t i = 0; i < colon; i++)
    {
        char c = text[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool other = (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
        if (!letter && (i == 0 || !other))
            return false;
    }
    return true;
}

/*
 * Finds the part of an absolute link's path to keep when re-basing it onto
 * the service root: what follows the service root's path, or else what
 * starts at the entity set's path below the root.
 */
bool
rebase_path(const HttpUrl &root, const HttpUrl &base, const std::string &link_path,
            std::string &relative)
{
    if (link_path.rfind(root.path, 0) == 0)
    {
        relative = link_path.substr(root.path.size());
        return true;
    }

    /* A proxy may publish the service under another prefix: look for the
     * last segment of the root path, then for the entity set. */
    std::string root_dir = root.path.substr(0, root.path.size() - 1);
    std::string last_segment = root_dir.substr(root_dir.rfind('/') + 1);
    if (!last_segment.empty())
    {
        std::string needle = "/" + last_segment + "/";
        size_t pos = link_path.find(needle);
        if (pos != std::string::npos)
        {
            relative = link_path.substr(pos + needle.size());
            return true;
        }
    }
    if (base.path.rfind(root.path, 0) == 0 && base.path.size() > root.path.size())
    {
        std::string entity_set = base.path.substr(root.path.size());
        size_t pos = link_path.find("/" + entity_set);
        if (pos != std::string::npos)
        {
            size_t end = pos + 1 + entity_set.size();
            char next = end < link_path.size() ? link_path[end] : '\0';
            if (next == '\0' || next == '/' || next == '(')
            {
                relative = link_path.substr(pos + 1);
                return true;
            }
        }
    }
    return false;
}

/* The body of resolve_next_link, which may throw std::bad_alloc. */
bool
resolve_next_link_impl(std::string_view service_root, std::string_view entity_set_url,
                       std::string_view next_link, std::string &result, std::string &error)
{
    HttpUrl root;
    HttpUrl base;
    if (!parse_http_url(service_root, root, error) || !parse_http_url(entity_set_url, base, error))
    {
        error = "invalid service root or entity set URL: " + error;
        return false;
    }
    if (root.path.empty() || root.path.back() != '/')
        root.path += '/';

    const std::string link = trim(next_link);
    if (link.empty())
    {
        error = "the next link is empty";
        return false;
    }
    if (link.find_first_of(" \t\r\n") != std::string::npos)
    {
        error = "the next link " + quote_value(link) + " contains whitespace";
        return false;
    }

    std::string path;
    std::optional<std::string> query;
    if (has_scheme(link) || link.rfind("//", 0) == 0)
    {
        /* Absolute: keep path and query, take scheme and host from the root. */
        HttpUrl absolute;
        std::string absolute_text = has_scheme(link) ? link : root.scheme + ":" + link;
        if (!parse_http_url(absolute_text, absolute, error))
        {
            error = "invalid next link " + quote_value(link) + ": " + error;
            return false;
        }
        std::string relative;
        if (!rebase_path(root, base, remove_dot_segments(absolute.path), relative))
        {
            error = "the next link " + quote_value(link) + " is outside the service root " +
                    root.path;
            return false;
        }
        path = root.path + relative;
        query = absolute.query;
    }
    else
    {
        std::optional<std::string> fragment;
        std::string reference_path;
        split_reference(link, reference_path, query, fragment);
        if (reference_path.empty())
        {
            if (!query)
            {
                error = "the next link " + quote_value(link) + " has no path and no query";
                return false;
            }
            path = base.path; /* query-only reference */
        }
        else if (reference_path[0] == '/')
            path = remove_dot_segments(reference_path);
        else
        {
            std::string directory = base.path.substr(0, base.path.rfind('/') + 1);
            path = remove_dot_segments(directory + reference_path);
        }
    }

    if (path.rfind(root.path, 0) != 0)
    {
        error = "the next link " + quote_value(link) + " resolves to " + quote_value(path) +
                ", outside the service root " + root.path;
        return false;
    }
    result = root.origin() + path;
    if (query)
        result += "?" + *query;
    return true;
}

/* A timestamp in ISO 8601 with only the fraction digits needed. */
std::string
iso_without_trailing_zeros(int64_t micros, bool with_zone)
{
    std::string text = format_timestamp(micros); /* ...SS.ffffffZ */
    text.pop_back();                             /* the Z */
    while (text.back() == '0')
        text.pop_back();
    if (text.back() == '.')
        text.pop_back();
    if (with_zone)
        text += 'Z';
    return text;
}

/*
 * The $filter text for the watermark; empty when there is none.
 * NOTE: the key is always written as a string literal, so a key property of
 * a numeric EDM type would be rejected by the server.
 */
std::string
build_filter(const ConnectorProfile &profile, const Watermark &watermark, ODataVersion version)
{
    /* Without a delta property, pages continue after the last key. */
    if (profile.delta.mode == DeltaMode::None)
    {
        if (!watermark.continuation || watermark.key.empty())
            return "";
        return profile.key_property + " gt " + odata_string_literal(watermark.key);
    }
    if (profile.delta.mode != DeltaMode::ModifiedSince || !watermark.modified_micros)
        return "";

    const std::string &property = profile.delta.property;
    const DeltaLiteral literal = profile.delta.literal;
    const bool continuation = watermark.continuation;
    const int64_t overlap = continuation ? 0 : profile.delta.overlap_seconds * 1000000;
    const int64_t since = *watermark.modified_micros - overlap;
    const std::string value = format_delta_literal(since, literal, version);
    const bool day_granularity =
        literal == DeltaLiteral::Date || literal == DeltaLiteral::DateString;

    /* Strictly after (T, K): on continuation, or without overlap for
     * timestamps.  Dates always re-read the whole day otherwise. */
    if (continuation || (!day_granularity && overlap == 0))
    {
        if (watermark.key.empty())
            return property + (day_granularity ? " ge " : " gt ") + value;
        return property + " gt " + value + " or (" + property + " eq " + value + " and " +
               profile.key_property + " gt " + odata_string_literal(watermark.key) + ")";
    }
    return property + " ge " + value;
}

void
append_param(std::string &url, bool &first, const std::string &name, const std::string &value)
{
    url += first ? '?' : '&';
    first = false;
    url += percent_encode_query(name) + "=" + percent_encode_query(value);
}

/* The body of build_query for the OData kinds. */
bool
build_odata_query(const ConnectorProfile &profile, const Watermark &watermark,
                  PageRequest &request, std::string &error)
{
    const ODataVersion version = page_version(profile.kind);
    const std::string page_size = std::to_string(profile.page_size);
    request.prefer = "odata.maxpagesize=" + page_size;

    if (profile.delta.mode == DeltaMode::DeltaLink && !watermark.delta_link.empty())
    {
        return resolve_next_link(profile.service_root, entity_set_url(profile),
                                 watermark.delta_link, request.url, error);
    }

    std::string url = entity_set_url(profile);
    bool first = true;
    if (!profile.select.empty())
    {
        std::string select;
        for (const std::string &property : profile.select)
            select += (select.empty() ? "" : ",") + property;
        append_param(url, first, "$select", select);
    }

    if (profile.delta.mode == DeltaMode::DeltaLink)
        request.prefer = "odata.track-changes, " + request.prefer;
    else
    {
        std::string filter = build_filter(profile, watermark, version);
        if (!filter.empty())
            append_param(url, first, "$filter", filter);
        std::string order;
        if (profile.delta.mode == DeltaMode::ModifiedSince)
            order = profile.delta.property + " asc,";
        append_param(url, first, "$orderby", order + profile.key_property + " asc");
        append_param(url, first, "$top", page_size);
    }

    if (profile.kind == ConnectorKind::ODataV4)
        append_param(url, first, "$count", "true");
    else if (profile.kind == ConnectorKind::ODataV2)
        append_param(url, first, "$inlinecount", "allpages");

    for (const auto &[name, value] : profile.query)
        append_param(url, first, name, value);
    request.url = url;
    return true;
}

/* The body of build_query for rest_json. */
bool
build_rest_query(const ConnectorProfile &profile, const Watermark &watermark,
                 PageRequest &request)
{
    std::string url = entity_set_url(profile);
    bool first = true;
    const RestConfig &rest = profile.rest;
    if (!rest.page_size_param.empty())
        append_param(url, first, rest.page_size_param, std::to_string(profile.page_size));
    if (!rest.modified_since_param.empty() && watermark.modified_micros)
    {
        int64_t overlap = watermark.continuation ? 0 : profile.delta.overlap_seconds * 1000000;
        append_param(url, first, rest.modified_since_param,
                     iso_without_trailing_zeros(*watermark.modified_micros - overlap, true));
    }
    for (const auto &[name, value] : profile.query)
        append_param(url, first, name, value);
    request.url = url;
    request.prefer.clear();
    return true;
}

/* Percent-encodes text, keeping unreserved characters and keep. */
std::string
percent_encode(std::string_view text, std::string_view keep)
{
    static const char kHex[] = "0123456789ABCDEF";
    std::string result;
    for (char c : text)
    {
        unsigned char byte = static_cast<unsigned char>(c);
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved || (byte < 0x80 && keep.find(c) != std::string_view::npos))
            result += c;
        else
        {
            result += '%';
            result += kHex[byte >> 4];
            result += kHex[byte & 0x0F];
        }
    }
    return result;
}

/* Reads an optional string member; false when present with another type. */
bool
read_link(const json &object, std::initializer_list<const char *> names,
          std::optional<std::string> &out, std::string &error)
{
    for (const char *name : names)
    {
        auto it = object.find(name);
        if (it == object.end() || it->is_null())
            continue;
        if (!it->is_string())
        {
            error = std::string("\"") + name + "\" must be a string, got a JSON " +
                    it->type_name();
            return false;
        }
        out = it->get<std::string>();
        return true;
    }
    return true;
}

/* Reads a count given as a number or as a string (V2, IEEE754Compatible). */
bool
read_count(const json &object, std::initializer_list<const char *> names,
           std::optional<int64_t> &out, std::string &error)
{
    for (const char *name : names)
    {
        auto it = object.find(name);
        if (it == object.end() || it->is_null())
            continue;
        int64_t count = 0;
        std::string count_error;
        if (!parse_json_integer(*it, count, count_error) || count < 0)
        {
            error = std::string("invalid \"") + name + "\" " + it->dump() +
                    ": expected a non-negative integer";
            return false;
        }
        out = count;
        return true;
    }
    return true;
}

/* Splits entries into records and V4 delta removals. */
void
collect_records(const json &entries, ODataPage &page)
{
    for (const json &entry : entries)
    {
        bool removed = entry.is_object() &&
                       (entry.contains("@removed") || entry.contains("@odata.removed"));
        (removed ? page.removed : page.records).push_back(entry);
    }
}

bool
parse_v4_page(const json &document, ODataPage &page, std::string &error)
{
    auto value = document.find("value");
    if (value == document.end() || !value->is_array())
    {
        error = "the response has no \"value\" array; is this an OData V4 collection?";
        return false;
    }
    collect_records(*value, page);
    return read_link(document, {"@odata.nextLink", "odata.nextLink"}, page.next_link, error) &&
           read_link(document, {"@odata.deltaLink", "odata.deltaLink"}, page.delta_link,
                     error) &&
           read_count(document, {"@odata.count", "odata.count"}, page.count, error);
}

bool
parse_v2_page(const json &document, ODataPage &page, std::string &error)
{
    auto d = document.find("d");
    if (d == document.end())
    {
        error = "the response has no \"d\" member; is this an OData V2 JSON response?";
        return false;
    }
    if (d->is_array())
    {
        collect_records(*d, page);
        return true;
    }
    if (!d->is_object())
    {
        error = std::string("\"d\" must be an object or an array, got a JSON ") + d->type_name();
        return false;
    }
    auto results = d->find("results");
    if (results == d->end() || !results->is_array())
    {
        error = "\"d\" has no \"results\" array; the response looks like a single entity, "
                "not a collection";
        return false;
    }
    collect_records(*results, page);
    return read_link(*d, {"__next"}, page.next_link, error) &&
           read_link(*d, {"__delta"}, page.delta_link, error) &&
           read_count(*d, {"__count"}, page.count, error);
}

}  // namespace

ODataVersion
page_version(ConnectorKind kind)
{
    return kind == ConnectorKind::ODataV2 ? ODataVersion::V2 : ODataVersion::V4;
}

bool
parse_page(std::string_view body, ODataVersion version, ODataPage &page, std::string &error)
{
    try
    {
        page = ODataPage();
        json document;
        bool truncated = false;
        if (!parse_json_body(body, document, error, truncated))
            return false;
        if (!document.is_object())
        {
            error = std::string("expected a JSON object, got a JSON ") + document.type_name();
            return false;
        }
        auto error_object = document.find("error");
        if (error_object != document.end() && error_object->is_object())
        {
            error = describe_error_object("the response is an OData error", *error_object);
            return false;
        }
        return version == ODataVersion::V4 ? parse_v4_page(document, page, error)
                                           : parse_v2_page(document, page, error);
    }
    catch (const std::exception &e)
    {
        error = std::string("could not parse the response page: ") + e.what();
        return false;
    }
}

bool
parse_rest_page(std::string_view body, const RestConfig &rest, ODataPage &page,
                std::string &error)
{
    try
    {
        page = ODataPage();
        json document;
        bool truncated = false;
        if (!parse_json_body(body, document, error, truncated))
            return false;

        const json::json_pointer records_pointer(rest.records_pointer);
        if (!document.contains(records_pointer) || !document.at(records_pointer).is_array())
        {
            error = "the response has no array at " + quote_value(rest.records_pointer);
            return false;
        }
        collect_records(document.at(records_pointer), page);

        if (rest.next_link_pointer.empty())
            return true;
        const json::json_pointer next_pointer(rest.next_link_pointer);
        if (!document.contains(next_pointer) || document.at(next_pointer).is_null())
            return true;
        const json &next = document.at(next_pointer);
        if (!next.is_string())
        {
            error = "the next link at " + quote_value(rest.next_link_pointer) +
                    " must be a string, got a JSON " + next.type_name();
            return false;
        }
        if (!next.get_ref<const std::string &>().empty())
            page.next_link = next.get<std::string>();
        return true;
    }
    catch (const std::exception &e)
    {
        error = std::string("could not parse the response page: ") + e.what();
        return false;
    }
}

std::string
parse_error_body(int status, std::string_view content_type, std::string_view body)
{
    try
    {
        const std::string prefix = "HTTP " + std::to_string(status);
        const std::string type = lower_ascii(content_type);
        const std::string text = trim(body);
        if (text.empty())
            return prefix + " with an empty body";
        if (find_invalid_utf8(body) != std::string_view::npos)
            return prefix + " with a body that is not valid UTF-8 (" +
                   std::to_string(body.size()) + " bytes)";

        if (type.find("json") != std::string::npos || text[0] == '{' || text[0] == '[')
            return describe_json_error(prefix, text);

        if (type.find("html") != std::string::npos ||
            starts_with_ignoring_case(text, "<!doctype html") ||
            starts_with_ignoring_case(text, "<html"))
        {
            std::optional<std::string> title = find_element_text(text, "title");
            std::string cleaned = title ? clean_text(decode_entities(*title)) : "";
            if (cleaned.empty())
                return prefix + " with an HTML body";
            return prefix + " with an HTML body: " + json(cleaned).dump();
        }
        if (type.find("xml") != std::string::npos || text[0] == '<')
            return describe_xml_error(prefix, text);

        return prefix + ": " + clean_text(text.substr(0, text.find('\n')));
    }
    catch (...)
    {
        return "HTTP " + std::to_string(status) + " (the error body could not be read)";
    }
}

std::string
HttpUrl::origin() const
{
    std::string result = scheme + "://" + host;
    if (!port.empty())
        result += ":" + port;
    return result;
}

bool
parse_http_url(std::string_view text, HttpUrl &url, std::string &error)
{
    try
    {
        url = HttpUrl();
        for (char c : text)
        {
            unsigned char byte = static_cast<unsigned char>(c);
            if (byte <= 0x20 || byte >= 0x7F)
            {
                error = "the URL contains a space, a control character or a non-ASCII "
                        "character; percent-encode it";
                return false;
            }
        }
        size_t colon = text.find(':');
        if (colon == std::string_view::npos || !has_scheme(text))
        {
            error = "the URL has no scheme; expected http:// or https://";
            return false;
        }
        url.scheme = lower_ascii(text.substr(0, colon));
        if (url.scheme != "http" && url.scheme != "https")
        {
            error = "the scheme must be http or https, got " + quote_value(url.scheme);
            return false;
        }
        std::string_view rest = text.substr(colon + 1);
        if (rest.substr(0, 2) != "//")
        {
            error = "expected \"//\" after \"" + url.scheme + ":\"";
            return false;
        }
        rest.remove_prefix(2);

        size_t authority_end = rest.find_first_of("/?#");
        std::string_view authority = rest.substr(0, authority_end);
        if (!parse_authority(authority, url, error))
            return false;

        std::string_view reference =
            authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
        split_reference(reference, url.path, url.query, url.fragment);
        if (url.path.empty())
            url.path = "/";
        return true;
    }
    catch (...)
    {
        error = "out of memory while parsing a URL";
        return false;
    }
}

bool
resolve_next_link(std::string_view service_root, std::string_view entity_set_url,
                  std::string_view next_link, std::string &url, std::string &error)
{
    try
    {
        return resolve_next_link_impl(service_root, entity_set_url, next_link, url, error);
    }
    catch (...)
    {
        error = "out of memory while resolving a next link";
        return false;
    }
}

std::string
entity_set_url(const ConnectorProfile &profile)
{
    try
    {
        std::string root = profile.service_root;
        if (!root.empty() && root.back() != '/')
            root += '/';
        return root + profile.entity_set;
    }
    catch (...)
    {
        return std::string();
    }
}

bool
build_query(const ConnectorProfile &profile, const Watermark &watermark, PageRequest &request,
            std::string &error)
{
    try
    {
        request = PageRequest();
        switch (profile.kind)
        {
            case ConnectorKind::Csv:
                error = "a csv connector reads files and has no query URL";
                return false;
            case ConnectorKind::RestJson:
                return build_rest_query(profile, watermark, request);
            case ConnectorKind::ODataV4:
            case ConnectorKind::ODataV2:
            case ConnectorKind::SapB1ServiceLayer:
                return build_odata_query(profile, watermark, request, error);
        }
        error = "unknown connector kind";
        return false;
    }
    catch (...)
    {
        error = "out of memory while building the query URL";
        return false;
    }
}

std::string
format_delta_literal(int64_t micros, DeltaLiteral literal, ODataVersion version)
{
    try
    {
        const std::string date = format_timestamp(micros).substr(0, 10);
        switch (literal)
        {
            case DeltaLiteral::DateTimeOffset:
            {
                std::string text = iso_without_trailing_zeros(micros, true);
                return version == ODataVersion::V2 ? "datetimeoffset'" + text + "'" : text;
            }
            case DeltaLiteral::DateTime:
                return "datetime'" + iso_without_trailing_zeros(micros, false) + "'";
            case DeltaLiteral::Date:
                /* Edm.Date does not exist in V2; midnight as Edm.DateTime. */
                return version == ODataVersion::V2 ? "datetime'" + date + "T00:00:00'" : date;
            case DeltaLiteral::DateString:
                return "'" + date + "'";
        }
        return "";
    }
    catch (...)
    {
        return std::string();
    }
}

std::string
odata_string_literal(std::string_view text)
{
    try
    {
        std::string result = "'";
        for (char c : text)
        {
            result += c;
            if (c == '\'')
                result += '\'';
        }
        return result + "'";
    }
    catch (...)
    {
        return std::string();
    }
}

std::string
percent_encode_query(std::string_view text)
{
    try
    {
        return percent_encode(text, "!$'()*,:@/?");
    }
    catch (...)
    {
        return std::string();
    }
}

bool
expand_write_url(const ConnectorProfile &profile, std::string_view key, std::string &url,
                 std::string &error)
{
    try
    {
        if (!profile.write_back.enabled || profile.write_back.url_template.empty())
        {
            error = "the profile has no enabled write_back";
            return false;
        }
        if (key.empty())
        {
            error = "cannot build the write-back URL for an empty key";
            return false;
        }
        std::string doubled = odata_string_literal(key);
        doubled = doubled.substr(1, doubled.size() - 2);
        const std::string encoded = percent_encode(doubled, "!$'()*,;:@");

        url = profile.write_back.url_template;
        for (size_t pos = 0; (pos = url.find("{key}", pos)) != std::string::npos;)
        {
            url.replace(pos, 5, encoded);
            pos += encoded.size();
        }
        return true;
    }
    catch (...)
    {
        error = "out of memory while building the write-back URL";
        return false;
    }
}

}  // namespace stocktech
