// The Redis connection through the installed wschat::redis (hiredis found again by the package).
#include <wschat/chat/detail/redis_connection.hpp>

int main() {
    asio::io_context io;
    chat::detail::redis_options opts;
    opts.endpoint = chat::detail::parse_redis_url("redis://127.0.0.1:1");
    auto redis = chat::detail::redis_connection::create(io, opts);
    redis->start();
    redis->command({"PING"}, [](std::error_code, chat::detail::redis_reply) {});
    redis->stop();
    io.poll(); // builds and links hiredis; a consumer test does not talk to Redis
}
