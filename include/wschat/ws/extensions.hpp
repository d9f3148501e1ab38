// wschat — the Sec-WebSocket-Extensions header (RFC 6455 §9.1), parsed strictly.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/http.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// One parameter of an extension: `name` alone, or `name=value`.
struct extension_param {
    /// The parameter's name, a token.
    std::string name;
    /// The value with any quoting removed (always a token), or none when no `=` was sent.
    std::optional<std::string> value;
};

/// One element of a Sec-WebSocket-Extensions header: an extension and its parameters, in
/// the order sent. In a request each element is an offer, in order of preference.
struct extension_element {
    /// The extension's name, a token such as "permessage-deflate".
    std::string name;
    /// Its parameters, in the order sent (duplicates kept: what they mean is the
    /// extension's business).
    std::vector<extension_param> params;
};

namespace detail {

/// A cursor over a header value that skips the optional whitespace RFC 6455 §9.1 implies
/// between tokens and separators.
class extension_reader {
public:
    explicit extension_reader(std::string_view text) noexcept : text_(text) {}

    bool at_end() noexcept {
        skip_ows();
        return pos_ == text_.size();
    }

    /// Consumes `c` (after whitespace) when it comes next.
    bool take(char c) noexcept {
        skip_ows();
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }

    /// The token that comes next, or an empty view when none does.
    std::string_view token() noexcept {
        skip_ows();
        const std::size_t start = pos_;
        while (pos_ < text_.size() && is_token_char(text_[pos_]))
            ++pos_;
        return text_.substr(start, pos_ - start);
    }

    /// A token or a quoted string whose unescaped content is a token; nullopt otherwise.
    std::optional<std::string> value() {
        skip_ows();
        if (pos_ >= text_.size() || text_[pos_] != '"') {
            const std::string_view plain = token();
            if (plain.empty())
                return std::nullopt;
            return std::string{plain};
        }
        ++pos_;
        std::string unquoted;
        while (pos_ < text_.size() && text_[pos_] != '"') {
            if (text_[pos_] == '\\' && ++pos_ == text_.size())
                return std::nullopt;
            unquoted += text_[pos_++];
        }
        if (pos_ == text_.size())
            return std::nullopt; // no closing quote
        ++pos_;
        if (unquoted.empty())
            return std::nullopt;
        for (const char c : unquoted)
            if (!is_token_char(c))
                return std::nullopt;
        return unquoted;
    }

private:
    void skip_ows() noexcept {
        while (pos_ < text_.size() && is_ows(text_[pos_]))
            ++pos_;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

} // namespace detail

/// Parses a Sec-WebSocket-Extensions value (several header lines joined with ", ", as
/// `http_request::header_list` does) into its elements.
///
/// Follows the ABNF of RFC 6455 §9.1: `1#( token *( ";" token [ "=" ( token |
/// quoted-string ) ] ) )`, where a quoted value must unescape to a token. Empty list
/// elements (`a, , b`) are allowed, as in every HTTP list. Returns nullopt for a value that
/// does not conform, which the RFC answers by failing the connection (a server refuses the
/// handshake with 400, a client closes). Names and values are returned as sent; extension
/// and parameter names are compared case-sensitively by the extensions themselves.
inline std::optional<std::vector<extension_element>> parse_extensions(std::string_view value) {
    std::vector<extension_element> elements;
    detail::extension_reader in{value};
    do {
        if (in.at_end() || in.take(','))
            continue; // an empty list element
        extension_element element;
        element.name = std::string{in.token()};
        if (element.name.empty())
            return std::nullopt;
        while (in.take(';')) {
            extension_param param;
            param.name = std::string{in.token()};
            if (param.name.empty())
                return std::nullopt;
            if (in.take('=')) {
                param.value = in.value();
                if (!param.value)
                    return std::nullopt;
            }
            element.params.push_back(std::move(param));
        }
        elements.push_back(std::move(element));
        if (!in.at_end() && !in.take(','))
            return std::nullopt;
    } while (!in.at_end());
    if (elements.empty())
        return std::nullopt;
    return elements;
}

WSCHAT_END_NAMESPACE
