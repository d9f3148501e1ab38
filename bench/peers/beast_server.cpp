// A Boost.Beast chat room written the usual way, as a peer for the benchmark: every session
// has its own queue of shared strings and writes them one async_write per message (the
// pattern of Beast's own websocket chat example); every text message goes to every member,
// sender included; the same welcome line and online count as wschat's text policy.
//
//     beast_server --port 0      prints `listening on ws://127.0.0.1:PORT/`
//
// Needs only the Boost headers (Debian libboost-dev): Beast and Asio are header-only here.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <unordered_set>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

class session;

/// The room: who is in it, and a broadcast that hands each member the same string.
class room {
public:
    void join(session* s);
    void leave(session* s);
    void send(const std::string& text);

private:
    std::unordered_set<session*> members_;
};

class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket socket, room& r) : ws_(std::move(socket)), room_(r) {}
    ~session() {
        if (joined_)
            room_.leave(this);
    }

    void run() {
        // As Node's `ws` and wschat do: a chat line must not wait for the previous one's ACK.
        beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
            if (!ec)
                self->on_accept();
        });
    }

    /// Queues `text`; the queue is written one message per async_write.
    void send(const std::shared_ptr<const std::string>& text) {
        queue_.push_back(text);
        if (queue_.size() > 1)
            return; // a write is in progress; on_write continues with the queue
        write_front();
    }

private:
    void on_accept() {
        ws_.text(true);
        send(std::make_shared<const std::string>("Welcome to the chat room!"));
        joined_ = true;
        room_.join(this);
        read();
    }

    void read() {
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec)
                return;
            self->room_.send(beast::buffers_to_string(self->buffer_.data()));
            self->buffer_.consume(self->buffer_.size());
            self->read();
        });
    }

    void write_front() {
        ws_.async_write(net::buffer(*queue_.front()),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            if (ec)
                                return;
                            self->queue_.pop_front();
                            if (!self->queue_.empty())
                                self->write_front();
                        });
    }

    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
    std::deque<std::shared_ptr<const std::string>> queue_;
    room& room_;
    bool joined_ = false;
};

void room::join(session* s) {
    members_.insert(s);
    send("Online users: " + std::to_string(members_.size()));
}

void room::leave(session* s) {
    members_.erase(s);
    send("Online users: " + std::to_string(members_.size()));
}

void room::send(const std::string& text) {
    const auto shared = std::make_shared<const std::string>(text);
    for (session* s : members_)
        s->send(shared);
}

void accept(tcp::acceptor& acceptor, room& r) {
    acceptor.async_accept([&acceptor, &r](beast::error_code ec, tcp::socket socket) {
        if (!ec)
            std::make_shared<session>(std::move(socket), r)->run();
        accept(acceptor, r);
    });
}

} // namespace

int main(int argc, char** argv) try {
    unsigned short port = 8080;
    std::string address = "127.0.0.1";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--port")
            port = static_cast<unsigned short>(std::stoul(argv[i + 1]));
        else if (flag == "--address")
            address = argv[i + 1];
    }
    net::io_context io{1};
    tcp::acceptor acceptor{io, {net::ip::make_address(address), port}};
    room r;
    accept(acceptor, r);
    net::signal_set signals{io, SIGINT, SIGTERM};
    signals.async_wait([&](beast::error_code, int) { io.stop(); });
    std::cout << "listening on ws://" << address << ':' << acceptor.local_endpoint().port() << '/'
              << std::endl;
    io.run();
    return EXIT_SUCCESS;
} catch (const std::exception& e) {
    std::cerr << "beast_server: " << e.what() << '\n';
    return 1;
}
