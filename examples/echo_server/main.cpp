// echo_server — sends every message back with its opcode: the target for conformance tests.
//
//     echo_server --port 9001
#include "../common/cli.hpp"

int main(int argc, char** argv) try {
    ws::server_options opts;
    opts.max_message_size = 16 * 1024 * 1024; // room for the large cases of conformance suites
    opts.max_send_queue_bytes = 64 * 1024 * 1024;
    opts.max_messages_per_second = 0; // throughput suites send as fast as they can
    if (!examples::parse_options(argc, argv, opts))
        return 2;

    asio::io_context io;
    ws::server<ws::asio_tcp> server{io, opts};
    server.on_message([](const auto& conn, const ws::message& msg) {
        conn->send(ws::make_frame(msg.type, msg.data));
    });
    return examples::run(io, server);
} catch (const std::exception& e) {
    std::cerr << "echo_server: " << e.what() << '\n';
    return 1;
}
