// wschat — what an application answers to an upgrade request (`server::on_upgrade`).
#pragma once

#include <wschat/detail/config.hpp>

#include <any>
#include <string>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)

/// What the application decides about an upgrade request in `on_upgrade`.
struct upgrade_decision {
    /// Accept (the default), optionally selecting one of the client's subprotocols.
    void accept(std::string_view chosen_subprotocol = {}) {
        status = 101;
        subprotocol = std::string{chosen_subprotocol};
    }
    /// Refuse with an HTTP status (401, 403, 503, …) and a short human-readable reason.
    void reject(int http_status, std::string_view why) {
        status = http_status;
        reason = std::string{why};
    }
    /// True while the decision is to accept (status 101).
    bool accepted() const noexcept { return status == 101; }

    /// The client's address, filled in by the server before `on_upgrade` runs: the peer's
    /// own or, behind a proxy listed in `server_options::trusted_proxies`, the client address
    /// the proxy names. Lets an application refuse or rate addresses of its own choosing.
    std::string remote_address;

    /// The HTTP status of the answer: 101 to accept, anything else refuses (see `reject`).
    int status = 101;
    std::string subprotocol; ///< pre-filled with the server's choice from its options
    /// The reason sent with a refusal, as the response's body.
    std::string reason;
    /// Anything the application wants to keep with the connection (a user name, an id, a
    /// session): it becomes `connection::user_data()` when the upgrade is accepted.
    std::any user_data;
};

WSCHAT_END_NAMESPACE
