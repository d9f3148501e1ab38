// wschat — the server's side of the opening handshake, without I/O: a parsed request, the
// options and the application's decision in; the HTTP answer (a 101 or a refusal) out.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/compression.hpp>
#include <wschat/ws/error.hpp>
#include <wschat/ws/handshake.hpp>
#include <wschat/ws/http.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/upgrade_decision.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The application's part in the negotiation (the server implements it with its handlers).
class upgrade_decider {
public:
    /// Answers a plain HTTP request (one that asks for no upgrade).
    virtual void answer_http(const http_request& request, http_response& response) = 0;
    /// Accepts or refuses a valid upgrade request, and may choose the subprotocol.
    virtual void decide_upgrade(const http_request& request, upgrade_decision& decision) = 0;

protected:
    ~upgrade_decider() = default;
};

/// What the server answers to one request: the result of negotiate_upgrade().
struct upgrade_answer {
    /// True when the connection opens: `response` is the 101, and `decision` holds the
    /// subprotocol and the user data. Otherwise `response` is sent and the connection closes.
    bool opens = false;
    http_response response;
    /// A refusal by a check or a limit: why (a limit hit, and the connection's
    /// `close_info::error`). Empty for a 101, a plain HTTP answer or the application's refusal.
    std::error_code refused_for;
    upgrade_decision decision;
    /// The compression extension agreed on (`server_options::compression`), or null.
    std::unique_ptr<message_compression> compression;
};

/// The refusal of a request that fails a check or a limit (`why`): its HTTP status
/// (`http_status_for`) with the error's message as the body.
inline upgrade_answer refusal(std::error_code why) {
    upgrade_answer answer;
    answer.response = make_error_response(http_status_for(why), why.message());
    answer.refused_for = why;
    return answer;
}

/// The first of `ours` (the server's subprotocols, in its order of preference) that the
/// client offers, or empty.
inline std::string select_subprotocol(const http_request& req,
                                      const std::vector<std::string>& ours) {
    const auto wanted = requested_subprotocols(req);
    for (const std::string& mine : ours)
        for (std::string_view theirs : wanted)
            if (theirs == mine)
                return mine;
    return {};
}

/// True when the client offered `subprotocol`.
inline bool offered(const http_request& req, std::string_view subprotocol) {
    for (std::string_view theirs : requested_subprotocols(req))
        if (theirs == subprotocol)
            return true;
    return false;
}

/// The server's answer to the complete request `req` from `remote_address` (the client's,
/// after any trusted proxy). In order: a peer over a connection limit (`over_limit`) gets
/// 503 whatever it asked; a plain HTTP request gets the decider's answer, with `Connection:
/// close`; an invalid upgrade its check's status, as does a malformed Sec-WebSocket-Extensions
/// when the server negotiates compression (RFC 6455 §9.1); a valid one the decider's refusal,
/// or a 500 when the decider chose a subprotocol the client did not offer, or the 101 (with
/// the agreed extension, if any).
inline upgrade_answer negotiate_upgrade(const http_request& req, std::string_view remote_address,
                                        bool over_limit, const server_options& options,
                                        upgrade_decider& decider) {
    if (over_limit)
        return refusal(error::server_busy);
    upgrade_answer answer;
    if (!is_websocket_request(req)) {
        decider.answer_http(req, answer.response);
        answer.response.set_header("Connection", "close");
        return answer;
    }
    if (const std::error_code invalid = validate_upgrade(req))
        return refusal(invalid);
    compression_negotiator::result extension;
    if (options.compression) {
        extension = options.compression->negotiate(
            req.header_list("Sec-WebSocket-Extensions"),
            options.slow_reader_action == server_options::overflow_action::drop_oldest);
        if (extension.error)
            return refusal(extension.error);
    }
    upgrade_decision& decision = answer.decision;
    decision.remote_address = std::string{remote_address};
    decision.subprotocol = select_subprotocol(req, options.subprotocols);
    decider.decide_upgrade(req, decision);
    if (!decision.accepted())
        answer.response = make_error_response(decision.status, decision.reason);
    else if (!decision.subprotocol.empty() && !offered(req, decision.subprotocol))
        answer.response = make_error_response(500, "server chose a subprotocol not offered");
    else {
        answer.response = make_upgrade_response(req, decision.subprotocol);
        if (extension.compression) {
            answer.response.set_header("Sec-WebSocket-Extensions", extension.response);
            answer.compression = std::move(extension.compression);
        }
        answer.opens = true;
    }
    return answer;
}

} // namespace detail

WSCHAT_END_NAMESPACE
