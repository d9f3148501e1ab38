// wschat — HTTP/1.1 for the opening handshake and plain requests: request and response heads
// parsed incrementally by one core, responses serialized.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/error.hpp>

#include <array>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {

/// ASCII-only lower-casing: header names and tokens are ASCII, and the C locale must
/// not influence protocol decisions.
constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Case-insensitive ASCII comparison, as HTTP header names and tokens require.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

/// Builds the RFC 7230 §3.2.6 tchar set: the characters of methods and header names.
constexpr std::array<bool, 256> make_token_chars() noexcept {
    std::array<bool, 256> table{};
    for (unsigned char c = '0'; c <= '9'; ++c)
        table[c] = true;
    for (unsigned char c = 'a'; c <= 'z'; ++c) {
        table[c] = true;
        table[static_cast<unsigned char>(c - 'a' + 'A')] = true;
    }
    for (char c : std::string_view{"!#$%&'*+-.^_`|~"})
        table[static_cast<unsigned char>(c)] = true;
    return table;
}

/// Byte → whether it is a tchar; a table because every header name byte is checked.
inline constexpr std::array<bool, 256> token_chars = make_token_chars();

/// True for a RFC 7230 §3.2.6 tchar.
constexpr bool is_token_char(char c) noexcept {
    return token_chars[static_cast<unsigned char>(c)];
}

/// True for a control character (C0 or DEL); header values may contain none but HTAB.
constexpr bool is_control_char(char c) noexcept {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7F;
}

/// True for the optional whitespace (OWS) of RFC 7230: space or horizontal tab.
constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

/// `text` without leading and trailing OWS.
constexpr std::string_view trim_ows(std::string_view text) noexcept {
    while (!text.empty() && is_ows(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && is_ows(text.back()))
        text.remove_suffix(1);
    return text;
}

/// Calls `visit(element)` for each non-empty element of a comma-separated header value,
/// trimmed of OWS, until `visit` returns true; returns whether it did.
template <class Visitor>
constexpr bool any_list_element(std::string_view list, Visitor&& visit) {
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (!element.empty() && visit(element))
            return true;
        if (comma == std::string_view::npos)
            return false;
        list.remove_prefix(comma + 1);
    }
}

} // namespace detail

/// Decodes `%XX` escapes and `+` (a space in a query string): "a%20b+c" is "a b c";
/// nullopt when an escape is malformed. The result may be any bytes: check it is UTF-8
/// before treating it as text.
inline std::optional<std::string> percent_decode(std::string_view in) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out += ' ';
        } else if (in[i] != '%') {
            out += in[i];
        } else {
            if (i + 2 >= in.size() || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0)
                return std::nullopt;
            out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
            i += 2;
        }
    }
    return out;
}

namespace detail {
/// The value of `key` in a `k=v<sep>k=v` list (a query string with '&', cookies with ';').
inline std::optional<std::string_view> find_pair(std::string_view list, std::string_view key,
                                                 char separator) {
    while (!list.empty()) {
        const std::size_t end = list.find(separator);
        std::string_view pair = list.substr(0, end);
        list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
        while (!pair.empty() && pair.front() == ' ')
            pair.remove_prefix(1);
        const std::size_t eq = pair.find('=');
        if (eq != std::string_view::npos && pair.substr(0, eq) == key)
            return pair.substr(eq + 1);
    }
    return std::nullopt;
}

} // namespace detail

/// One HTTP header field, as received or to be sent.
struct http_header {
    std::string name;  ///< the field name, in the case it was sent
    std::string value; ///< the field value without surrounding whitespace
};

/// True when the header value (a comma-separated list) contains `token`, compared
/// case-insensitively, ignoring optional whitespace around elements. An empty token is
/// never found.
inline bool header_has_token(std::string_view value, std::string_view token) noexcept {
    return !token.empty() && detail::any_list_element(value, [token](std::string_view element) {
        return detail::iequals(element, token);
    });
}

namespace detail {

// Header lookups shared by http_request and http_response (and the handshake checks of
// both roles): names compare case-insensitively, as RFC 9110 §5.1 requires.

/// Value of the first header named `name`, or nullopt; the view points into `headers`.
inline std::optional<std::string_view> find_header(const std::vector<http_header>& headers,
                                                   std::string_view name) noexcept {
    for (const http_header& h : headers)
        if (iequals(h.name, name))
            return std::string_view{h.value};
    return std::nullopt;
}

/// How many headers are named `name`.
inline std::size_t header_count(const std::vector<http_header>& headers,
                                std::string_view name) noexcept {
    std::size_t count = 0;
    for (const http_header& h : headers)
        count += iequals(h.name, name) ? 1 : 0;
    return count;
}

/// The values of every header named `name` joined by ", " (see http_request::header_list).
inline std::string join_headers(const std::vector<http_header>& headers, std::string_view name) {
    std::string joined;
    for (const http_header& h : headers) {
        if (!iequals(h.name, name))
            continue;
        if (!joined.empty())
            joined += ", ";
        joined += h.value;
    }
    return joined;
}

/// True when any header named `name` lists `token` (see header_has_token).
inline bool any_header_has_token(const std::vector<http_header>& headers, std::string_view name,
                                 std::string_view token) noexcept {
    for (const http_header& h : headers)
        if (iequals(h.name, name) && header_has_token(h.value, token))
            return true;
    return false;
}

} // namespace detail

/// A parsed HTTP/1.x request head (the opening handshake or a plain HTTP request).
struct http_request {
    std::string method;               ///< e.g. "GET"
    std::string target;               ///< the request-target as sent, e.g. "/chat?room=1"
    int version_major = 1;            ///< the 1 of HTTP/1.1
    int version_minor = 1;            ///< the second 1 of HTTP/1.1
    std::vector<http_header> headers; ///< in arrival order, names as sent

    /// Value of the first header with this name (case-insensitive), or nullopt. The view
    /// stays valid as long as the request is not modified.
    std::optional<std::string_view> header(std::string_view name) const {
        return detail::find_header(headers, name);
    }

    /// All values of headers with this name joined by ", " (list headers may be sent
    /// several times; RFC 7230 §3.2.2 makes that equivalent to one comma-joined header).
    std::string header_list(std::string_view name) const {
        return detail::join_headers(headers, name);
    }

    /// The target before '?': "/chat" for "/chat?room=1".
    std::string_view path() const {
        const std::string_view whole{target};
        return whole.substr(0, whole.find('?'));
    }

    /// The target after the first '?': "room=1" for "/chat?room=1"; empty when none.
    std::string_view query() const {
        const std::string_view whole{target};
        const std::size_t mark = whole.find('?');
        return mark == std::string_view::npos ? std::string_view{} : whole.substr(mark + 1);
    }

    /// The value of query parameter `key`, percent-decoded: "Bob Li" for `name` in
    /// "/chat?name=Bob%20Li"; nullopt when absent or malformed. The first one counts.
    std::optional<std::string> query_param(std::string_view key) const {
        const auto raw = detail::find_pair(query(), key, '&');
        return raw ? percent_decode(*raw) : std::nullopt;
    }

    /// The value of cookie `name` as sent (not decoded), from the first Cookie header that
    /// has it; nullopt when none has. The view stays valid as long as the request is not
    /// modified.
    std::optional<std::string_view> cookie(std::string_view name) const {
        for (const http_header& h : headers)
            if (detail::iequals(h.name, "Cookie"))
                if (const auto value = detail::find_pair(h.value, name, ';'))
                    return value;
        return std::nullopt;
    }
};

/// Where an incremental HTTP head parser (request_parser, response_parser) stands.
enum class http_parse_state {
    incomplete, ///< more bytes are needed
    done,       ///< the head is complete
    failed,     ///< the bytes are not an acceptable head; the parser's error() says why
};

namespace detail {

/// Parses `HTTP/x.y` (one digit each, RFC 9112 §2.3) into `major` and `minor`.
constexpr bool parse_http_version(std::string_view text, int& major, int& minor) noexcept {
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || !is_digit(text[5]) || text[6] != '.' ||
        !is_digit(text[7]))
        return false;
    major = text[5] - '0';
    minor = text[7] - '0';
    return true;
}

/// The machinery shared by request_parser and response_parser: it splits bytes fed in any
/// pieces into lines (CRLF or a bare LF), bounds the head's size and header count, parses
/// the header lines, and hands the first line to the caller's start-line parser. Keeps at
/// most one partial line. Not thread-safe.
class head_reader {
public:
    /// The most header fields accepted in one head; more is error::header_too_large.
    static constexpr std::size_t max_header_count = 100;

    /// A reader failing with error::header_too_large past `max_header_bytes` (start line,
    /// header lines, blank line and line endings counted) and with `malformed` on a line
    /// that does not parse.
    head_reader(std::size_t max_header_bytes, ws::error malformed) noexcept
        : max_header_bytes_{max_header_bytes}, malformed_{malformed} {}

    /// Consumes bytes up to and including the blank line that ends the head and returns how
    /// many it consumed; 0 once done or failed. Header lines are appended to `headers`; the
    /// first line goes to `parse_start_line(std::string_view) -> bool` (false: malformed).
    template <class StartLineParser>
    std::size_t feed(const char* data, std::size_t size, std::vector<http_header>& headers,
                     StartLineParser&& parse_start_line) {
        std::size_t pos = 0;
        while (current_ == http_parse_state::incomplete && pos < size) {
            const auto* newline =
                static_cast<const char*>(std::memchr(data + pos, '\n', size - pos));
            const std::size_t line_end =
                newline != nullptr ? static_cast<std::size_t>(newline - data) : size;
            const std::size_t taken = line_end - pos + (newline != nullptr ? 1 : 0);
            if (taken > max_header_bytes_ - head_bytes_) {
                fail(ws::error::header_too_large);
                return pos;
            }
            head_bytes_ += taken;
            const std::string_view piece{data + pos, line_end - pos};
            pos += taken;
            if (newline == nullptr) {
                partial_line_.append(piece);
                break;
            }
            // A line wholly inside this feed is parsed where it lies, without a copy.
            std::string_view line = piece;
            if (!partial_line_.empty()) {
                partial_line_.append(piece);
                line = partial_line_;
            }
            if (!line.empty() && line.back() == '\r')
                line.remove_suffix(1);
            parse_line(line, headers, parse_start_line);
            partial_line_.clear();
        }
        if (current_ != http_parse_state::incomplete)
            std::string{}.swap(partial_line_);
        return pos;
    }

    /// Whether the head is complete, incomplete or rejected.
    http_parse_state current() const noexcept { return current_; }

    /// Why the head was rejected, or an empty error_code.
    std::error_code error() const noexcept { return error_; }

    /// Starts over, for the next head (the caller clears what it parsed).
    void reset() noexcept {
        current_ = http_parse_state::incomplete;
        error_ = {};
        started_ = false;
        partial_line_.clear();
        head_bytes_ = 0;
    }

private:
    /// Marks the parse failed with `e`.
    void fail(ws::error e) noexcept {
        current_ = http_parse_state::failed;
        error_ = make_error_code(e);
    }

    /// Handles one complete line, its line ending removed.
    template <class StartLineParser>
    void parse_line(std::string_view line, std::vector<http_header>& headers,
                    StartLineParser& parse_start_line) {
        if (!started_) {
            // RFC 9112 §2.2 lets a recipient skip blank lines before the start line; a peer
            // that sends one is broken enough to refuse, which keeps the parser simpler.
            started_ = true;
            if (!parse_start_line(line))
                fail(malformed_);
        } else if (line.empty()) {
            current_ = http_parse_state::done;
            // A server keeps the request as long as the connection: no spare capacity.
            headers.shrink_to_fit();
        } else if (headers.size() == max_header_count) {
            fail(ws::error::header_too_large);
        } else if (!parse_header_line(line, headers)) {
            fail(malformed_);
        }
    }

    /// Parses `name ":" OWS value OWS` (RFC 7230 §3.2) and appends it to `headers`.
    static bool parse_header_line(std::string_view line, std::vector<http_header>& headers) {
        // A leading space or tab is obs-fold (a continuation of the previous header), which
        // RFC 7230 §3.2.4 lets a server reject; name/value smuggling hides in it. A client
        // refuses it too: no WebSocket server folds its handshake headers.
        const std::size_t colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos)
            return false;
        const std::string_view name = line.substr(0, colon);
        for (char c : name)
            if (!is_token_char(c))
                return false;
        const std::string_view value = trim_ows(line.substr(colon + 1));
        for (char c : value)
            if (is_control_char(c) && c != '\t')
                return false;
        if (headers.empty())
            headers.reserve(typical_header_count);
        headers.push_back({std::string{name}, std::string{value}});
        return true;
    }

    /// Room reserved for headers up front: browsers send about a dozen.
    static constexpr std::size_t typical_header_count = 16;

    std::size_t max_header_bytes_;
    ws::error malformed_;        // the error of a line that does not parse
    std::size_t head_bytes_ = 0; // bytes of the head consumed so far
    bool started_ = false;       // whether the start line has been seen
    http_parse_state current_ = http_parse_state::incomplete;
    std::error_code error_;
    std::string partial_line_; // a line split across feeds, without its line feed yet
};

} // namespace detail

/// Incremental HTTP/1.x request-head parser with a hard size bound.
///
/// Feed it bytes as they arrive; it parses each line as soon as its line feed is in (so a
/// malformed request fails early), keeps at most one partial line, and fails with
/// error::header_too_large once the head exceeds `max_header_bytes` or holds more than
/// max_header_count headers, and with error::bad_request on a malformed line. Lines end in
/// CRLF or a bare LF. Not thread-safe.
///
/// ```
/// ws::request_parser parser;
/// std::size_t used = parser.feed(buffer, n);
/// if (parser.current() == ws::request_parser::state::done)
///     handle(parser.request()); // buffer + used .. buffer + n: bytes sent after the head
/// ```
class request_parser {
public:
    /// Where the parser stands; done means request() holds the whole head.
    using state = http_parse_state;

    /// The most header fields accepted in one request; more is error::header_too_large.
    static constexpr std::size_t max_header_count = detail::head_reader::max_header_count;

    /// A parser accepting request heads of at most `max_header_bytes` bytes, counting the
    /// request line, every header line, the blank line and the line endings.
    explicit request_parser(std::size_t max_header_bytes = 8192) noexcept
        : reader_{max_header_bytes, ws::error::bad_request} {}

    /// Consumes bytes up to and including the blank line that ends the head and returns how
    /// many it consumed: bytes after the head (such as a first WebSocket frame sent right
    /// behind the request) are left for the caller. Returns 0 once done or failed.
    std::size_t feed(const char* data, std::size_t size) {
        return reader_.feed(data, size, request_.headers,
                            [this](std::string_view line) { return parse_request_line(line); });
    }

    /// Whether the head is complete, incomplete or rejected.
    state current() const noexcept { return reader_.current(); }

    /// error::bad_request or error::header_too_large when failed, else an empty error_code.
    std::error_code error() const noexcept { return reader_.error(); }

    /// The request parsed so far (complete once current() is done).
    const http_request& request() const noexcept { return request_; }

    /// The request parsed so far, for moving its parts out.
    http_request& request() noexcept { return request_; }

    /// Forgets the request, to parse the next one on a keep-alive connection.
    void reset() noexcept {
        reader_.reset();
        request_.method.clear();
        request_.target.clear();
        request_.version_major = 1;
        request_.version_minor = 1;
        request_.headers.clear();
    }

private:
    /// Parses `METHOD SP target SP HTTP/x.y` (RFC 7230 §3.1.1) into request_.
    bool parse_request_line(std::string_view line) {
        const std::size_t method_end = line.find(' ');
        if (method_end == 0 || method_end == std::string_view::npos)
            return false;
        const std::string_view method = line.substr(0, method_end);
        for (char c : method)
            if (!detail::is_token_char(c))
                return false;
        line.remove_prefix(method_end + 1);

        const std::size_t target_end = line.find(' ');
        if (target_end == 0 || target_end == std::string_view::npos)
            return false;
        const std::string_view target = line.substr(0, target_end);
        for (char c : target)
            if (detail::is_control_char(c))
                return false;
        line.remove_prefix(target_end + 1);

        if (!detail::parse_http_version(line, request_.version_major, request_.version_minor))
            return false;
        request_.method.assign(method);
        request_.target.assign(target);
        return true;
    }

    detail::head_reader reader_;
    http_request request_;
};

namespace detail {
/// True for text that can be an IPv4 or IPv6 address (digits, hex, dots, colons): enough
/// to refuse a forwarded "address" that is really an injection attempt.
constexpr bool looks_like_ip_address(std::string_view text) noexcept {
    if (text.empty() || text.size() > 45)
        return false;
    for (const char c : text) {
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != '.' && c != ':')
            return false;
    }
    return true;
}
} // namespace detail

/// The client address a reverse proxy reports for `req`: X-Real-IP, else the last entry of
/// X-Forwarded-For (the one the nearest proxy appended; entries before it came from the
/// client and prove nothing). Believe it only when the request came from a trusted proxy.
inline std::optional<std::string> forwarded_client_address(const http_request& req) {
    if (const auto real_ip = req.header("X-Real-IP")) {
        const std::string_view address = detail::trim_ows(*real_ip);
        if (detail::looks_like_ip_address(address))
            return std::string{address};
    }
    const std::string chain = req.header_list("X-Forwarded-For");
    // rfind gives npos without a comma, and npos + 1 is 0: the whole value.
    const std::string_view nearest =
        detail::trim_ows(std::string_view{chain}.substr(chain.rfind(',') + 1));
    if (detail::looks_like_ip_address(nearest))
        return std::string{nearest};
    return std::nullopt;
}

/// The standard reason phrase for an HTTP status (RFC 9110 §15), or "" when unknown.
inline std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

/// An HTTP/1.1 response: status, headers and body; built by a server to send, or parsed by
/// response_parser from what a server sent (the body then stays empty).
struct http_response {
    int status = 200;                 ///< the status code, 100..599
    std::string reason;               ///< empty: reason_phrase(status)
    std::vector<http_header> headers; ///< sent in this order
    std::string body;                 ///< sent after the head

    /// Value of the first header with this name (case-insensitive), or nullopt. The view
    /// stays valid as long as the response is not modified.
    std::optional<std::string_view> header(std::string_view name) const {
        return detail::find_header(headers, name);
    }

    /// All values of headers with this name joined by ", " (see http_request::header_list).
    std::string header_list(std::string_view name) const {
        return detail::join_headers(headers, name);
    }

    /// Replaces the value of the first header with this name (case-insensitive), or adds it.
    void set_header(std::string_view name, std::string_view value) {
        for (http_header& h : headers) {
            if (detail::iequals(h.name, name)) {
                h.value.assign(value);
                return;
            }
        }
        headers.push_back({std::string{name}, std::string{value}});
    }

    /// The status line, the headers, a Content-Length for the body, a blank line and the
    /// body. Content-Length is left out for 1xx, 204 and 304 (RFC 9110 §8.6) and when the
    /// headers already hold one. CR and LF inside names, values and the reason become
    /// spaces, so a value copied from a request cannot inject headers.
    std::string serialize() const {
        std::string out;
        out.reserve(128 + body.size());
        out += "HTTP/1.1 ";
        out += std::to_string(status);
        out += ' ';
        append_safe(out, reason.empty() ? reason_phrase(status) : std::string_view{reason});
        out += "\r\n";
        bool has_content_length = false;
        for (const http_header& h : headers) {
            has_content_length = has_content_length || detail::iequals(h.name, "Content-Length");
            append_safe(out, h.name);
            out += ": ";
            append_safe(out, h.value);
            out += "\r\n";
        }
        const bool body_allowed = status >= 200 && status != 204 && status != 304;
        if (body_allowed && !has_content_length) {
            out += "Content-Length: ";
            out += std::to_string(body.size());
            out += "\r\n";
        }
        out += "\r\n";
        out += body;
        return out;
    }

private:
    /// Appends `text` with CR and LF replaced by spaces.
    static void append_safe(std::string& out, std::string_view text) {
        for (char c : text)
            out += c == '\r' || c == '\n' ? ' ' : c;
    }
};

/// Incremental HTTP/1.x response-head parser with a hard size bound: what a client reads
/// after sending its opening handshake.
///
/// The same machinery as request_parser: each line is parsed as soon as its line feed is
/// in, at most one partial line is kept, lines end in CRLF or a bare LF, and the head fails
/// with error::header_too_large past `max_header_bytes` or max_header_count headers, and
/// with error::bad_response on a malformed status line (anything but
/// `HTTP/1.x SP 3-digit-status [SP reason]`, a status outside 100..599) or header line.
/// The body is not read: feed() stops after the head, because a 101 is followed by frames,
/// and an error body is the caller's to read or not. Not thread-safe.
///
/// ```
/// ws::response_parser parser;
/// std::size_t used = parser.feed(buffer, n);
/// if (parser.current() == ws::response_parser::state::done)
///     check(parser.response()); // buffer + used .. buffer + n: frames already sent
/// ```
class response_parser {
public:
    /// Where the parser stands; done means response() holds the whole head.
    using state = http_parse_state;

    /// The most header fields accepted in one response; more is error::header_too_large.
    static constexpr std::size_t max_header_count = detail::head_reader::max_header_count;

    /// A parser accepting response heads of at most `max_header_bytes` bytes, counting the
    /// status line, every header line, the blank line and the line endings. The default
    /// leaves a server's handshake answer ample room while bounding what a hostile one
    /// can make the client buffer.
    explicit response_parser(std::size_t max_header_bytes = 8192) noexcept
        : reader_{max_header_bytes, ws::error::bad_response} {}

    /// Consumes bytes up to and including the blank line that ends the head and returns how
    /// many it consumed: bytes after the head (WebSocket frames the server sent right
    /// behind its 101, or an error body) are left for the caller. Returns 0 once done or
    /// failed.
    std::size_t feed(const char* data, std::size_t size) {
        return reader_.feed(data, size, response_.headers,
                            [this](std::string_view line) { return parse_status_line(line); });
    }

    /// Whether the head is complete, incomplete or rejected.
    state current() const noexcept { return reader_.current(); }

    /// error::bad_response or error::header_too_large when failed, else an empty error_code.
    std::error_code error() const noexcept { return reader_.error(); }

    /// The response parsed so far (complete once current() is done): status, the reason
    /// as sent, headers in arrival order with names as sent; the body stays empty.
    const http_response& response() const noexcept { return response_; }

    /// The response parsed so far, for moving its parts out.
    http_response& response() noexcept { return response_; }

    /// Forgets the response, to parse another one (after an interim 1xx response, or on a
    /// new connection).
    void reset() noexcept {
        reader_.reset();
        response_.status = 200;
        response_.reason.clear();
        response_.headers.clear();
        response_.body.clear();
    }

private:
    /// Parses `HTTP/1.x SP status SP reason` (RFC 9112 §4) into response_. The reason (and
    /// the space before it, which real servers sometimes leave out) is optional.
    bool parse_status_line(std::string_view line) {
        int major = 0;
        int minor = 0;
        if (line.size() < 12 || !detail::parse_http_version(line.substr(0, 8), major, minor) ||
            major != 1 || line[8] != ' ')
            return false;
        int status = 0;
        for (char c : line.substr(9, 3)) {
            if (c < '0' || c > '9')
                return false;
            status = status * 10 + (c - '0');
        }
        if (status < 100 || status > 599)
            return false;
        std::string_view reason = line.substr(12);
        if (!reason.empty()) {
            if (reason.front() != ' ')
                return false;
            reason.remove_prefix(1);
        }
        for (char c : reason)
            if (detail::is_control_char(c) && c != '\t')
                return false;
        response_.status = status;
        response_.reason.assign(reason);
        return true;
    }

    detail::head_reader reader_;
    http_response response_;
};

/// A failure response with `message` as a text/plain body and `Connection: close`. For 426
/// it adds `Sec-WebSocket-Version: 13` (RFC 6455 §4.4) and `Upgrade: websocket`, and the
/// Connection header also lists `Upgrade`, as RFC 9110 §7.8 requires next to Upgrade.
inline http_response make_error_response(int status, std::string_view message) {
    http_response response;
    response.status = status;
    response.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    if (status == 426) {
        response.headers.push_back({"Connection", "Upgrade, close"});
        response.headers.push_back({"Upgrade", "websocket"});
        response.headers.push_back({"Sec-WebSocket-Version", "13"});
    } else {
        response.headers.push_back({"Connection", "close"});
    }
    response.body.assign(message);
    return response;
}

WSCHAT_END_NAMESPACE
