// echo_server — sends every message back with its opcode: the target for conformance tests.
//
//     echo_server --port 9001
//     echo_server --port 9443 --tls-cert cert.pem --tls-key key.pem     (wss://)
//     echo_server --unix /tmp/echo.sock                                  (Unix domain socket)
#include "../common/cli.hpp"

int main(int argc, char** argv) try {
    examples::listen_options opts;
    opts.server.max_message_size = 16 * 1024 * 1024; // room for conformance suites' large cases
    opts.server.max_send_queue_bytes = 64 * 1024 * 1024;
    opts.server.max_messages_per_second = 0; // throughput suites send as fast as they can
    const examples::program about{
        "sends every message back with its opcode: the target for conformance suites", {}};
    if (const auto exit_status = examples::parse_options(argc, argv, opts, about))
        return *exit_status;
    return examples::serve(opts, [](auto& server) {
        server.on_message([](const auto& conn, const ws::message& msg) {
            conn->send(ws::make_frame(msg.type, msg.data));
        });
    });
} catch (const std::exception& e) {
    std::cerr << "echo_server: " << e.what() << '\n';
    return 1;
}
