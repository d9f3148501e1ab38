// wschat examples — `--redis URL`: a lobby whose rooms span every server on the same Redis
// (chat::redis_bus), for chat_server and the benchmark's lobby_server.
//
//     examples::redis_flags redis;                        // its flags join the program's own
//     ... examples::redis_bus_flags(redis) ...
//     return examples::serve(opts, [&](auto& server, asio::io_context& io) {
//         examples::cluster_bus bus{io, redis, options};  // none without --redis
//         chat::lobby<T> lobby{options, {}, bus.get()};
//     });
#pragma once

#include "cli.hpp"

#include <wschat/chat/lobby.hpp>
#include <wschat/chat/prometheus.hpp>

// The Redis bus is available when the build links hiredis into the examples (it defines this
// macro).
#if defined(WSCHAT_EXAMPLES_REDIS)
#include <wschat/chat/redis_bus.hpp>

#include <asio/signal_set.hpp>
#endif

#include <chrono>
#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace examples {

/// What the Redis flags say.
struct redis_flags {
    std::string url; ///< --redis: redis://host:port/db or unix:///path; empty: no bus
    /// --presence-ttl-ms: a node that dies is gone from the others' counts within this.
    std::chrono::milliseconds presence_ttl{15000};
};

/// The flags `--redis URL` and `--presence-ttl-ms N`, stored into `into`.
inline std::vector<flag> redis_bus_flags(redis_flags& into) {
    return {
        {"--redis", "URL",
         "share the rooms with every server on this Redis (redis://host:port/db, unix:///path)",
         [&into](const std::string& url) -> std::string {
#if defined(WSCHAT_EXAMPLES_REDIS)
             std::error_code ec;
             std::string why;
             chat::detail::parse_redis_url(url, ec, why);
             if (ec)
                 return why;
             into.url = url;
             return {};
#else
             (void)into;
             return "this build has no Redis bus (install libhiredis-dev and rebuild), so '" + url +
                    "' is not used";
#endif
         }},
        {"--presence-ttl-ms", "N",
         "with --redis: a server that dies leaves the others' presence counts within N ms "
         "(default " +
             std::to_string(into.presence_ttl.count()) + ")",
         [&into](const std::string& value) {
             std::string problem = store_milliseconds(into.presence_ttl)(value);
             if (problem.empty() && into.presence_ttl < std::chrono::milliseconds{300})
                 problem = "needs at least 300 (the bus refreshes its presence every third)";
             return problem;
         }},
    };
}

#if defined(WSCHAT_EXAMPLES_REDIS)

/// The Redis bus the flags ask for (none without --redis), its history and resume window
/// matched to the lobby's. It is stopped on SIGINT and SIGTERM, as the server is (cli.hpp's
/// run loop): its connections to Redis would otherwise keep the io_context running after the
/// server has drained.
class cluster_bus {
public:
    cluster_bus(asio::io_context& io, const redis_flags& flags, const chat::lobby_options& lobby) {
        if (flags.url.empty())
            return;
        chat::redis_bus_options options;
        options.history_messages = lobby.history.max_messages;
        options.history_age = lobby.history.max_age;
        options.resume_window = lobby.resume_window;
        options.presence_ttl = flags.presence_ttl;
        bus_ = chat::redis_bus::create(io, flags.url, options);
        stopping_ = std::make_unique<asio::signal_set>(io, SIGINT, SIGTERM);
        stopping_->async_wait([bus = bus_](std::error_code ec, int) {
            if (!ec)
                bus->stop();
        });
        // Where this node's messages go, and its id in Redis (its resume tokens start with it).
        std::cerr << "bus node " << bus_->node() << " on "
                  << chat::detail::parse_redis_url(flags.url).describe() << std::endl;
    }

    /// The bus for the lobby: null without --redis (the lobby's in-process bus).
    std::shared_ptr<chat::bus> get() const { return bus_; }

    /// Adds the bus's figures to a /metrics page (nothing without --redis).
    void append_metrics(chat::prometheus_text& page) const {
        if (!bus_)
            return;
        chat::append_bus(page, bus_->stats());
    }

private:
    std::shared_ptr<chat::redis_bus> bus_;
    std::unique_ptr<asio::signal_set> stopping_;
};

#else

/// Without hiredis there is no bus: --redis is refused when the flags are read.
class cluster_bus {
public:
    cluster_bus(asio::io_context&, const redis_flags&, const chat::lobby_options&) {}
    std::shared_ptr<chat::bus> get() const { return nullptr; }
    void append_metrics(chat::prometheus_text&) const {}
};

#endif

} // namespace examples
