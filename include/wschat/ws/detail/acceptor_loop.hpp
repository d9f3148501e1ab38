// wschat — a server's acceptor: listens, accepts one stream at a time on the server's strand,
// backs off after an error, and closes.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/io/plain_socket.hpp>
#include <wschat/ws/detail/steady_timer_on.hpp>
#include <wschat/ws/detail/uncached_allocator.hpp>
#include <wschat/ws/transport.hpp>

#include <asio/bind_allocator.hpp>
#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <string>
#include <system_error>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The acceptor of a server over `Transport`, and the timer of its back-off. Its handlers
/// run on `strand`, the server's, as must its calls.
template <class Transport>
class acceptor_loop {
public:
    using acceptor_type = typename Transport::acceptor_type;
    using strand_type = asio::strand<asio::io_context::executor_type>;

    acceptor_loop(asio::io_context& io, strand_type& strand)
        : strand_(strand), acceptor_(io), retry_timer_(strand) {}

    /// Binds and listens at `address`.
    void listen(const Transport& transport, asio::io_context& io, const listen_address& address,
                std::error_code& ec) {
        acceptor_ = transport.listen(io, address, ec);
    }

    /// Accepts the next stream: `on_accepted(ec, stream)` runs on the strand.
    template <class Handler>
    void accept(const Transport& transport, Handler on_accepted) {
        auto handler = asio::bind_executor(strand_, std::move(on_accepted));
        // The operation's memory must not pass to an idle connection's pending read (see
        // uncached_allocator); plain sockets have none, and skip the allocator's instantiations.
        if constexpr (is_plain_socket<typename Transport::stream_type>::value)
            transport.async_accept(acceptor_, std::move(handler));
        else
            transport.async_accept(
                acceptor_, asio::bind_allocator(uncached_allocator<void>{}, std::move(handler)));
    }

    /// An accept failed (out of file descriptors and similar): `retry(ec)` runs after a brief
    /// back-off instead of spinning.
    template <class Handler>
    void back_off(Handler retry) {
        retry_timer_.expires_after(std::chrono::milliseconds{50});
        retry_timer_.async_wait(std::move(retry));
    }

    /// Stops accepting.
    void close(const Transport& transport) {
        retry_timer_.cancel();
        transport.close_acceptor(acceptor_);
    }

    /// The listening acceptor (for its local endpoint).
    const acceptor_type& acceptor() const noexcept { return acceptor_; }

private:
    strand_type& strand_;
    acceptor_type acceptor_;
    steady_timer_on<strand_type> retry_timer_;
};

} // namespace detail

WSCHAT_END_NAMESPACE
