// Test support for tests/conformance.cpp — the echo_server example as a child process, and a
// reader of the messages a server sends (reassembled, checked for interleaving), on top of
// test_client.hpp's strict frames (frame_decoder.hpp).
#pragma once

#include "test_client.hpp"
#if WSCHAT_TEST_TLS
#include "dev_cert.hpp"
#endif

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace conformance {

using namespace std::chrono_literals;

/// A child process running `path args...` with its stdout on a pipe. The destructor kills
/// (SIGKILL) and reaps it unless `terminate()` has already done so.
class child_process {
public:
    child_process(const std::string& path, const std::vector<std::string>& args) {
        std::vector<std::string> words{path};
        words.insert(words.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& word : words)
            argv.push_back(word.data());
        argv.push_back(nullptr);

        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw std::runtime_error{"pipe2() failed"};
        pid_ = ::fork();
        if (pid_ < 0) {
            ::close(fds[0]);
            ::close(fds[1]);
            throw std::runtime_error{"fork() failed"};
        }
        if (pid_ == 0) {
            // Only async-signal-safe calls between fork and exec (the parent has threads).
            ::dup2(fds[1], STDOUT_FILENO); // the duplicate does not inherit O_CLOEXEC
            for (int fd = 3; fd < 1024; ++fd)
                ::close(fd); // no sockets of other tests leak into the server
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out_ = fds[0];
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
        if (out_ >= 0)
            ::close(out_);
    }

    /// The next line the child prints (without the newline), or nothing on timeout or EOF.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::size_t end;
        while ((end = buffer_.find('\n')) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{out_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                return std::nullopt;
            char chunk[512];
            const ssize_t n = ::read(out_, chunk, sizeof chunk);
            if (n <= 0)
                return std::nullopt;
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
    }

    /// Sends SIGTERM and reaps the child: its exit status, 128 + N when signal N killed it,
    /// or -1 when it had not exited within `timeout` (it is then killed with SIGKILL).
    int terminate(std::chrono::milliseconds timeout = 10s) {
        if (pid_ <= 0)
            return -1;
        ::kill(pid_, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        int status = 0;
        for (;;) {
            const pid_t done = ::waitpid(pid_, &status, WNOHANG);
            if (done == pid_)
                break;
            if (done < 0 && errno != EINTR) {
                pid_ = -1;
                return -1;
            }
            if (std::chrono::steady_clock::now() >= deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                pid_ = -1;
                return -1;
            }
            std::this_thread::sleep_for(10ms);
        }
        pid_ = -1;
        if (WIFEXITED(status))
            return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
            return 128 + WTERMSIG(status);
        return -1;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_;
};

/// The transports the conformance suite runs over: the same cases, the same expectations.
struct tcp {
    static constexpr const char* scheme = "ws";
};
struct tls {
    static constexpr const char* scheme = "wss";
};

/// The echo_server example ($WSCHAT_ECHO_SERVER, set by ctest and meson) on 127.0.0.1 and a
/// port the OS picks, over `Transport` (`tcp`, or `tls` with a certificate made for the
/// occasion); throws when the variable is unset or the server does not announce itself with
/// `listening on ws://HOST:PORT/` (`wss://` over TLS) within 10 s.
template <class Transport = tcp>
class echo_server {
public:
    echo_server() : process_(path(), arguments()) {
        const auto line = process_.read_line(10s);
        const std::string prefix = std::string{"listening on "} + Transport::scheme + "://";
        if (!line || line->rfind(prefix, 0) != 0 || line->back() != '/')
            throw std::runtime_error{"echo_server did not announce itself: " +
                                     line.value_or("(no line within 10 s)")};
        const std::size_t colon = line->rfind(':');
        const unsigned long port = std::stoul(line->substr(colon + 1));
        if (port == 0 || port > 65535)
            throw std::runtime_error{"echo_server announced a bad port: " + *line};
        peer_.port = static_cast<std::uint16_t>(port);
#if WSCHAT_TEST_TLS
        if constexpr (std::is_same_v<Transport, tls>)
            peer_.tls = test::tls_settings{cert_dir_->path() / "cert.pem"};
#endif
    }

    static std::string path() {
        const char* p = std::getenv("WSCHAT_ECHO_SERVER");
        if (p == nullptr || *p == '\0')
            throw std::runtime_error{"WSCHAT_ECHO_SERVER is not set: run the tests through "
                                     "ctest or meson test, or point it at examples' echo_server"};
        return p;
    }

    std::uint16_t port() const {
        return peer_.port;
    }
    /// How a client reaches it (with the TLS settings that trust its certificate).
    const test::peer& peer() const {
        return peer_;
    }

    /// Stops the server with SIGTERM: its exit status (0 for a clean stop), see
    /// `child_process::terminate`.
    int stop(std::chrono::milliseconds timeout = 10s) {
        return process_.terminate(timeout);
    }

private:
    std::vector<std::string> arguments() {
        std::vector<std::string> args{"--address", "127.0.0.1", "--port", "0"};
#if WSCHAT_TEST_TLS
        if constexpr (std::is_same_v<Transport, tls>) {
            cert_dir_ = std::make_unique<test::temp_dir>();
            const auto cert = test::dev_cert::make();
            args.insert(args.end(), {"--tls-cert", cert_dir_->write("cert.pem", cert.cert_pem),
                                     "--tls-key", cert_dir_->write("key.pem", cert.key_pem)});
        }
#endif
        return args;
    }

#if WSCHAT_TEST_TLS
    std::unique_ptr<test::temp_dir> cert_dir_; // before process_: made by arguments()
#endif
    child_process process_;
    test::peer peer_;
};

/// Bounds blocking sends on `socket`, so a server that stops reading fails a test instead of
/// hanging it.
inline void bound_sends(test::socket_client& socket, std::chrono::seconds timeout) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count());
    ::setsockopt(socket.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/// The next message (data frames reassembled) or control frame from the server; its pings
/// are answered and skipped, as a browser does. Nothing on timeout or EOF; throws
/// std::runtime_error on a framing error by the server.
inline std::optional<test::frame> read_message(test::ws_client& client,
                                               std::chrono::milliseconds timeout) {
    std::optional<test::frame> message;
    for (;;) {
        auto f = client.socket().read_frame(timeout);
        if (!f)
            return std::nullopt;
        if (f->opcode >= test::op_close) {
            if (message)
                throw std::runtime_error{"the server interleaved a control frame in its message"};
            if (f->opcode == test::op_ping) {
                client.send(test::op_pong, f->payload);
                continue;
            }
            return f;
        }
        const bool last = f->fin;
        if (f->opcode == test::op_continuation) {
            if (!message)
                throw std::runtime_error{"the server sent a continuation with no message"};
            message->payload += f->payload;
        } else {
            if (message)
                throw std::runtime_error{"the server started a message inside another"};
            message = std::move(f);
        }
        if (last) {
            message->fin = true;
            return message;
        }
    }
}

} // namespace conformance
