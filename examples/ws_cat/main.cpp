// ws_cat — a command-line WebSocket client on ws::client, like Node's wscat: every line read
// from stdin is sent as a text message, every message received is printed, and a lost
// connection comes back by itself (with backoff). End of input closes with 1000.
//
//   build/dev/ws_cat ws://127.0.0.1:8080/
//   build/dev/ws_cat wss://example.com/chat --ca-file ca.pem
//   build/dev/ws_cat ws+unix:///run/chat.sock:/rooms/a
//   build/dev/ws_cat ws://10.0.0.5:8080/ --proxy http://user:pw@proxy:3128
#include <wschat/ws/client.hpp>
#if defined(WSCHAT_EXAMPLES_TLS)
#include <wschat/ws/client_tls.hpp>
#endif

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <istream>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view usage =
    "usage: ws_cat URL [--proxy http://[user:pw@]host:port] [--subprotocol NAME]\n"
    "              [--ca-file FILE] [--insecure] [--no-reconnect]\n"
    "URL: ws://host[:port]/path, wss://... (with OpenSSL), ws+unix:///path.sock:/path\n";

/// Reads stdin line by line on the io_context (no thread) and sends each line.
template <class Client>
class stdin_pump {
public:
    stdin_pump(asio::io_context& io, Client& client)
        : input_(io, ::dup(STDIN_FILENO)), client_(client) {}

    void start() {
        asio::async_read_until(input_, buffer_, '\n', [this](std::error_code ec, std::size_t) {
            if (ec) { // end of input: close politely
                client_.close(ws::close_code::normal, "bye");
                return;
            }
            std::string line;
            std::istream in{&buffer_};
            std::getline(in, line);
            const ws::send_status status = client_.send_text(line);
            if (!ws::accepted(status))
                std::cerr << "! not sent (" << static_cast<int>(status) << ")\n";
            start();
        });
    }

private:
    asio::posix::stream_descriptor input_;
    asio::streambuf buffer_;
    Client& client_;
};

template <class Transport>
int run(ws::client_options options) {
    asio::io_context io;
    ws::client<Transport> client{io, std::move(options)};
    stdin_pump<ws::client<Transport>> pump{io, client};
    client.on_connecting([](const ws::client_connecting& c) {
        std::cerr << "* connecting (attempt " << c.attempt << ")\n";
    });
    client.on_open([](const ws::client_open& o) {
        std::cerr << "* open" << (o.subprotocol.empty() ? "" : " (" + o.subprotocol + ")")
                  << (o.reconnected ? ", reconnected" : "") << '\n';
    });
    client.on_message([](const ws::message& msg) {
        if (msg.is_text())
            std::cout << "< " << msg.data << std::endl;
        else
            std::cout << "< [binary, " << msg.data.size() << " bytes]" << std::endl;
    });
    int status = 0;
    client.on_close([&](const ws::client_closed& c) {
        std::cerr << "* closed: " << c.code << ' ' << c.reason
                  << (c.error ? " (" + c.error.message() + ")" : "");
        if (c.http_status != 0)
            std::cerr << " HTTP " << c.http_status;
        if (c.will_retry) {
            std::cerr << ", retrying in " << c.retry_delay.count() << " ms\n";
            return;
        }
        std::cerr << ", stopped: " << c.stop_reason << '\n';
        status = c.stop_reason == "closed by the application" ? 0 : 1;
        io.stop();
    });
    client.on_error([](std::error_code ec, std::string_view detail) {
        std::cerr << "! " << ec.message() << (detail.empty() ? "" : ": ") << detail << '\n';
    });
    std::error_code ec;
    client.connect(ec);
    if (ec) {
        std::cerr << "ws_cat: " << ec.message() << '\n' << usage;
        return 2;
    }
    pump.start();
    io.run();
    return status;
}

} // namespace

int main(int argc, char** argv) {
    ws::client_options options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--proxy" && has_value) {
            options.proxy = argv[++i];
        } else if (arg == "--subprotocol" && has_value) {
            options.subprotocols.emplace_back(argv[++i]);
        } else if (arg == "--ca-file" && has_value) {
            options.tls.ca_file = argv[++i];
        } else if (arg == "--insecure") {
            options.tls.insecure_skip_verification = true;
        } else if (arg == "--no-reconnect") {
            options.reconnect.enabled = false;
        } else if ((arg == "--help" || arg == "-h")) {
            std::cout << usage;
            return 0;
        } else if (options.url.empty() && arg.substr(0, 2) != "--") {
            options.url = arg;
        } else {
            std::cerr << "ws_cat: unknown argument " << arg << '\n' << usage;
            return 2;
        }
    }
    std::error_code ec;
    const auto url = ws::parse_ws_url(options.url, ec);
    if (!url) {
        std::cerr << "ws_cat: " << ec.message() << '\n' << usage;
        return 2;
    }
    switch (url->scheme) {
    case ws::ws_url::scheme_kind::ws:
        return run<ws::asio_tcp>(std::move(options));
    case ws::ws_url::scheme_kind::ws_unix:
        return run<ws::asio_local>(std::move(options));
    case ws::ws_url::scheme_kind::wss:
#if defined(WSCHAT_EXAMPLES_TLS)
        return run<ws::asio_tls>(std::move(options));
#else
        std::cerr << "ws_cat: built without OpenSSL: no wss://\n";
        return 2;
#endif
    }
    return 2;
}
