// Test support — a tiny HTTP CONNECT proxy on 127.0.0.1: reads the CONNECT request, checks
// Proxy-Authorization when told to, opens the tunnel to 127.0.0.1 and relays bytes both ways.
// One tunnel at a time, on its own thread; records the request lines it saw.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace test {

class connect_proxy {
public:
    /// `authorization`: the Proxy-Authorization value required ("Basic ..."); empty: none.
    explicit connect_proxy(std::string authorization = {})
        : authorization_(std::move(authorization)) {
        fd_ = listen_on(0, port_);
        thread_ = std::thread{[this] { serve(); }};
    }
    connect_proxy(const connect_proxy&) = delete;
    connect_proxy& operator=(const connect_proxy&) = delete;
    ~connect_proxy() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }

    std::uint16_t port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    /// The request heads received, in order.
    std::vector<std::string> requests() {
        std::lock_guard<std::mutex> lock{mutex_};
        return requests_;
    }

private:
    static int listen_on(std::uint16_t port, std::uint16_t& bound) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(port);
        socklen_t size = sizeof address;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
            ::listen(fd, 16) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0)
            throw std::runtime_error{"connect_proxy: cannot listen"};
        bound = ntohs(address.sin_port);
        return fd;
    }

    static bool send_all(int fd, const std::string& bytes) {
        return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(bytes.size());
    }

    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0)
                continue;
            const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client >= 0) {
                tunnel(client);
                ::close(client);
            }
        }
    }

    void tunnel(int client) {
        std::string head;
        char chunk[4096];
        while (head.find("\r\n\r\n") == std::string::npos) {
            pollfd p{client, POLLIN, 0};
            if (::poll(&p, 1, 5000) <= 0)
                return;
            const ssize_t n = ::recv(client, chunk, sizeof chunk, 0);
            if (n <= 0)
                return;
            head.append(chunk, static_cast<std::size_t>(n));
        }
        {
            std::lock_guard<std::mutex> lock{mutex_};
            requests_.push_back(head);
        }
        if (!authorization_.empty() &&
            head.find("\r\nProxy-Authorization: " + authorization_ + "\r\n") == std::string::npos) {
            send_all(client,
                     "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        // "CONNECT 127.0.0.1:PORT HTTP/1.1": this proxy only reaches the loopback address.
        const std::string prefix = "CONNECT 127.0.0.1:";
        if (head.rfind(prefix, 0) != 0) {
            send_all(client, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        const int port = std::stoi(head.substr(prefix.size()));
        const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(static_cast<std::uint16_t>(port));
        if (::connect(server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            send_all(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
            ::close(server);
            return;
        }
        send_all(client, "HTTP/1.1 200 Connection established\r\n\r\n");
        relay(client, server);
        ::close(server);
    }

    /// Copies bytes both ways until either side closes or the proxy stops.
    void relay(int a, int b) {
        char chunk[65536];
        while (!stop_) {
            pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
            if (::poll(p, 2, 20) < 0)
                return;
            for (int i = 0; i < 2; ++i) {
                if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
                    continue;
                const ssize_t n = ::recv(p[i].fd, chunk, sizeof chunk, 0);
                if (n <= 0)
                    return;
                if (!send_all(p[1 - i].fd, std::string(chunk, static_cast<std::size_t>(n))))
                    return;
            }
        }
    }

    std::string authorization_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<std::string> requests_;
    std::thread thread_;
};

} // namespace test
