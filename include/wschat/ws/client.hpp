// wschat — ws::client: a WebSocket client on the application's io_context, with reconnection.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/client_error.hpp>
#include <wschat/ws/client_events.hpp>
#include <wschat/ws/client_options.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/detail/client_core.hpp>
#include <wschat/ws/detail/client_transport.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/transport.hpp>

#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A WebSocket client on the application's `asio::io_context`, with no thread of its own.
///
/// `Transport` picks how it reaches the server: `ws::asio_tcp` for `ws://` (the default),
/// `ws::asio_tls` for `wss://` (include <wschat/ws/client_tls.hpp>, link OpenSSL),
/// `ws::asio_local` for `ws+unix://`.
///
/// ```cpp
/// asio::io_context io;
/// ws::client_options opts;
/// opts.url = "ws://127.0.0.1:8080/rooms/lobby";
/// ws::client<> client{io, opts};
/// client.on_open([&](const ws::client_open&) { client.send_text("hello"); });
/// client.on_message([](const ws::message& msg) { std::cout << msg.data << '\n'; });
/// client.on_close([](const ws::client_closed& c) {
///     if (!c.will_retry) std::cerr << "stopped: " << c.stop_reason << '\n';
/// });
/// client.connect();
/// io.run();
/// ```
///
/// It resolves the host, connects (through an HTTP proxy when asked), runs TLS with
/// certificate and host-name verification, sends the upgrade and verifies the answer
/// completely (status 101, Sec-WebSocket-Accept, no subprotocol or extension it did not
/// offer), masks every frame, enforces the same limits as the server (message size, bounded
/// send queue, a send rate), pings, and closes with a code and a reason.
///
/// When the connection is lost or an attempt fails it reconnects after a capped
/// exponential backoff with full jitter, unless the server said not to (a 4xx answer, a
/// close code in `no_retry_close_codes`). Messages sent while disconnected wait in a bounded
/// offline queue and leave, in order, once the connection opens (after `before_open`).
///
/// Thread safety: none of its own. Call its members from the thread that runs the
/// io_context, or, with several threads, from work posted to `get_executor()` (a strand,
/// on which every handler runs).
template <class Transport = asio_tcp>
class client {
    static_assert(detail::client_transport<Transport>::supported,
                  "ws::client: no client side for this Transport (asio_tcp, asio_local; "
                  "asio_tls needs <wschat/ws/client_tls.hpp>)");

public:
    /// How the client reaches the server.
    using transport_type = Transport;
    /// Where the client stands.
    using state = client_state;

    /// A client with `options`; nothing happens until connect().
    explicit client(asio::io_context& io, client_options options = {})
        : core_(std::make_shared<detail::client_core<Transport>>(io, std::move(options))) {}

    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Cuts the connection without a close handshake and calls no handler any more. Prefer
    /// close() and running the io_context until on_close says the client stopped.
    ~client() { core_->detach(); }

    /// Starts connecting (the first attempt runs from the io_context, never inside this
    /// call). Throws std::system_error when the options cannot work: a URL that does not
    /// parse or needs another transport, a bad proxy, an invalid offer, an unreadable CA
    /// file. On a stopped client, starts again; otherwise does nothing.
    void connect() {
        std::error_code ec;
        connect(ec);
        if (ec)
            throw std::system_error{ec, "ws::client::connect"};
    }
    /// As above, reporting failure in `ec`.
    void connect(std::error_code& ec) { core_->connect(ec); }

    /// Sends a text message (`text` must be UTF-8): see send_status for what became of it.
    send_status send_text(std::string_view text) { return core_->send(opcode::text, text); }
    /// Sends a binary message.
    send_status send_binary(std::string_view bytes) { return core_->send(opcode::binary, bytes); }

    /// Closes with `code` and `reason` (at most 123 bytes of UTF-8) and stops: no
    /// reconnection. The offline queue is dropped. on_close follows (from the io_context, not
    /// inside this call) with `will_retry` false.
    void close(close_code code = close_code::normal, std::string_view reason = {}) {
        core_->close(static_cast<std::uint16_t>(code), reason);
    }
    /// Closes with an application code (3000–4999).
    void close(std::uint16_t code, std::string_view reason) { core_->close(code, reason); }

    /// Called when an attempt begins.
    client& on_connecting(std::function<void(const client_connecting&)> handler) {
        core_->handlers.on_connecting = std::move(handler);
        return *this;
    }
    /// Called first when a connection opens, before the offline queue is flushed and before
    /// on_open: what is sent here goes out ahead of what waited offline (a chat layer's
    /// resume request).
    client& before_open(std::function<void(const client_open&)> handler) {
        core_->handlers.before_open = std::move(handler);
        return *this;
    }
    /// Called when a connection opens (after before_open and the offline queue's flush).
    client& on_open(std::function<void(const client_open&)> handler) {
        core_->handlers.on_open = std::move(handler);
        return *this;
    }
    /// Called for every whole message from the server (text already validated as UTF-8).
    /// `msg.data` is valid during the call only.
    client& on_message(std::function<void(const message&)> handler) {
        core_->handlers.on_message = std::move(handler);
        return *this;
    }
    /// Called when an attempt fails or a connection ends, with whether and when the client
    /// tries again.
    client& on_close(std::function<void(const client_closed&)> handler) {
        core_->handlers.on_close = std::move(handler);
        return *this;
    }
    /// Called for problems that do not end the connection themselves: a message dropped
    /// from a full offline queue, TLS verification turned off (at every attempt), giving up.
    client& on_error(std::function<void(std::error_code, std::string_view detail)> handler) {
        core_->handlers.on_error = std::move(handler);
        return *this;
    }

    /// Where the client stands.
    state current_state() const noexcept { return core_->current(); }
    /// True while the connection is open.
    bool is_open() const noexcept { return current_state() == state::open; }
    /// Messages waiting in the offline queue.
    std::size_t offline_count() const noexcept { return core_->offline_count(); }
    /// Bytes queued on the open connection and not yet written.
    std::size_t queued_bytes() const { return core_->queued_bytes(); }
    /// The options the client was made with.
    const client_options& options() const noexcept { return core_->options(); }
    /// The strand every handler runs on.
    asio::strand<asio::io_context::executor_type> get_executor() const noexcept {
        return core_->get_executor();
    }

private:
    std::shared_ptr<detail::client_core<Transport>> core_;
};

WSCHAT_END_NAMESPACE
