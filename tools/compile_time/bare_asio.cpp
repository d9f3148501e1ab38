// The yardstick for tools/compile-time.sh: a plain Asio TCP server of comparable function
// (accepts connections on an io_context, reads from each and writes back what it read),
// with no WebSocket and no wschat.
#include <asio.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <system_error>
#include <utility>

namespace {

class session : public std::enable_shared_from_this<session> {
public:
    explicit session(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

    void read() {
        socket_.async_read_some(asio::buffer(buffer_),
                                [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                    if (!ec)
                                        self->write(n);
                                });
    }

private:
    void write(std::size_t n) {
        asio::async_write(socket_, asio::buffer(buffer_, n),
                          [self = shared_from_this()](std::error_code ec, std::size_t) {
                              if (!ec)
                                  self->read();
                          });
    }

    asio::ip::tcp::socket socket_;
    std::array<char, 16 * 1024> buffer_{};
};

void accept(asio::ip::tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](std::error_code ec, asio::ip::tcp::socket socket) {
        if (!ec)
            std::make_shared<session>(std::move(socket))->read();
        accept(acceptor);
    });
}

} // namespace

int main() {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 8080}};
    accept(acceptor);
    io.run();
}
