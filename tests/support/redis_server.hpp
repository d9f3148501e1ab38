// Test support — a real redis-server as a child process on 127.0.0.1 (and optionally a Unix
// socket), started on a free port, restartable on the same port, killed at the end.
#pragma once

#include <wschat/chat/detail/redis_protocol.hpp>
#include <wschat/chat/detail/redis_reply.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace test {

/// What a `redis_server` is started with.
struct redis_server_options {
    /// `requirepass`: clients must AUTH with it. Empty: no password.
    std::string password;
    /// Also listen on a Unix socket (`unix_path()`), in the server's temporary directory.
    bool unix_socket = false;
};

/// A redis-server child process: `redis-server --port P --bind 127.0.0.1 --save ''
/// --appendonly no`, its files in a fresh temporary directory. The binary is
/// $WSCHAT_REDIS_SERVER, else `redis-server` on PATH. The constructor returns once the server
/// answers a PING; the destructor kills it (SIGKILL) and removes the directory.
///
/// ```cpp
/// test::redis_server redis;                    // a free port
/// auto url = redis.url();                      // "redis://127.0.0.1:P"
/// redis.kill();  redis.restart();              // gone, then back on the same port
/// ```
///
/// Not thread-safe: one test thread drives it.
class redis_server {
public:
    explicit redis_server(redis_server_options options = {}) : options_(std::move(options)) {
        char dir[] = "/tmp/wschat-redis-XXXXXX";
        if (!::mkdtemp(dir))
            throw std::runtime_error{"redis_server: mkdtemp failed"};
        dir_ = dir;
        // A free port is found by binding port 0; another process may take it before redis
        // does, so a failed start is retried on a new port.
        for (int attempt = 0;; ++attempt) {
            port_ = free_port();
            if (launch())
                return;
            if (attempt == 4) {
                remove_dir();
                throw std::runtime_error{"redis_server: redis-server did not start (see its log "
                                         "in " +
                                         dir_ + ")"};
            }
        }
    }

    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    ~redis_server() {
        kill();
        remove_dir();
    }

    /// The TCP port.
    std::uint16_t port() const noexcept { return port_; }
    /// The Unix socket's path (with `unix_socket`), else empty.
    std::string unix_path() const { return options_.unix_socket ? dir_ + "/redis.sock" : ""; }
    /// "redis://[:password@]127.0.0.1:P[/db]".
    std::string url(int db = 0) const {
        std::string u = "redis://";
        if (!options_.password.empty())
            u += ":" + options_.password + "@";
        u += "127.0.0.1:" + std::to_string(port_);
        if (db != 0)
            u += "/" + std::to_string(db);
        return u;
    }
    /// "unix:///tmp/.../redis.sock[?password=...]".
    std::string unix_url() const {
        std::string u = "unix://" + unix_path();
        if (!options_.password.empty())
            u += "?password=" + options_.password;
        return u;
    }
    /// True while the process runs (not killed).
    bool running() const noexcept { return pid_ > 0; }

    /// SIGKILL, as a crashed or OOM-killed Redis: connections are reset, nothing is saved.
    void kill() {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGCONT); // a frozen process must be able to die
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }

    /// Kills (if running) and starts a new, empty server on the same port and socket.
    void restart() {
        kill();
        // The old listening socket is gone with the process; redis binds with SO_REUSEADDR,
        // but give the kernel a few tries in case the port is briefly held.
        for (int attempt = 0; attempt < 20; ++attempt) {
            if (launch())
                return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        throw std::runtime_error{"redis_server: restart on port " + std::to_string(port_) +
                                 " failed (see the log in " + dir_ + ")"};
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing (a hung or swapped-out Redis).
    void freeze() {
        if (pid_ > 0)
            ::kill(pid_, SIGSTOP);
    }
    /// SIGCONT after `freeze()`.
    void thaw() {
        if (pid_ > 0)
            ::kill(pid_, SIGCONT);
    }

    /// Sends one command over a fresh blocking TCP connection (with AUTH when there is a
    /// password) and returns the reply: how a test looks at Redis from outside the code
    /// under test. Throws on a connection failure or after 5 s.
    chat::detail::redis_reply query(std::initializer_list<std::string_view> args) const {
        std::vector<std::string_view> argv(args);
        return query(argv);
    }
    chat::detail::redis_reply query(const std::vector<std::string_view>& args) const {
        const int fd = connect_tcp();
        if (fd < 0)
            throw std::runtime_error{"redis_server::query: cannot connect"};
        std::string wire;
        std::size_t replies = 1;
        if (!options_.password.empty()) {
            chat::detail::append_command(
                wire, std::initializer_list<std::string_view>{"AUTH", options_.password});
            ++replies;
        }
        chat::detail::append_command(wire, args);
        std::optional<chat::detail::redis_reply> reply;
        const bool ok = send_all(fd, wire) && read_replies(fd, replies, reply);
        ::close(fd);
        if (!ok || !reply)
            throw std::runtime_error{"redis_server::query: no reply"};
        return *reply;
    }

private:
    static std::string binary() {
        const char* env = std::getenv("WSCHAT_REDIS_SERVER");
        return env && *env ? env : "redis-server";
    }

    static std::uint16_t free_port() {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            if (fd >= 0)
                ::close(fd);
            throw std::runtime_error{"redis_server: no free port"};
        }
        ::close(fd);
        return ntohs(addr.sin_port);
    }

    /// Starts the process and waits until it answers; false (and the process reaped) if it
    /// exits or stays silent for 10 s.
    bool launch() {
        std::vector<std::string> words{binary(),
                                       "--port",
                                       std::to_string(port_),
                                       "--bind",
                                       "127.0.0.1",
                                       "--save",
                                       "",
                                       "--appendonly",
                                       "no",
                                       "--daemonize",
                                       "no",
                                       "--dir",
                                       dir_,
                                       "--logfile",
                                       dir_ + "/redis.log"};
        if (!options_.password.empty())
            words.insert(words.end(), {"--requirepass", options_.password});
        if (options_.unix_socket)
            words.insert(words.end(), {"--unixsocket", unix_path(), "--unixsocketperm", "700"});
        std::vector<char*> argv;
        for (auto& w : words)
            argv.push_back(w.data());
        argv.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        pid_t pid = -1;
        const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0)
            throw std::runtime_error{"redis_server: cannot run " + words[0] +
                                     " (install redis-server or set WSCHAT_REDIS_SERVER)"};
        pid_ = pid;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1; // exited: the port was taken, or a bad option
                return false;
            }
            if (answers())
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        kill();
        return false;
    }

    /// True when a PING gets any reply (+PONG, or -NOAUTH with a password).
    bool answers() const {
        const int fd = connect_tcp();
        if (fd < 0)
            return false;
        std::optional<chat::detail::redis_reply> reply;
        const bool ok = send_all(fd, "PING\r\n") && read_replies(fd, 1, reply);
        ::close(fd);
        return ok && reply && (reply->is_status() || reply->is_error()) &&
               !reply->is_error_code("LOADING");
    }

    int connect_tcp() const {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port_);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }

    static bool send_all(int fd, std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    /// Reads `count` replies within 5 s; keeps the last one in `last`.
    static bool read_replies(int fd, std::size_t count,
                             std::optional<chat::detail::redis_reply>& last) {
        chat::detail::redis_reader reader;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (count > 0) {
            while (count > 0) {
                auto reply = reader.next();
                if (!reply)
                    break;
                last = std::move(reply);
                --count;
            }
            if (count == 0)
                return true;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{fd, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                return false;
            char chunk[4096];
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0)
                return false;
            reader.feed(std::string_view{chunk, static_cast<std::size_t>(n)});
            if (reader.error())
                return false;
        }
        return true;
    }

    void remove_dir() {
        std::error_code ignored;
        if (!dir_.empty())
            std::filesystem::remove_all(dir_, ignored);
    }

    redis_server_options options_;
    std::string dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

} // namespace test
