// chat::prometheus_text and the metrics it writes: the exposition's exact bytes (families
// grouped, escaping, names checked), and what room_counters count.
#include <wschat/chat/prometheus.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

TEST_CASE("prometheus_text: families grouped, HELP and TYPE once each, samples in order",
          "[unit][metrics]") {
    chat::prometheus_text page;
    CHECK(page.str().empty());
    page.counter("app_events_total", "Events.", {{"kind", "a"}}, 1);
    page.gauge("app_open", "Open now.", {}, 7);
    page.counter("app_events_total", "ignored: the first help stays", {{"kind", "b"}}, 2);
    page.counter("app_pairs_total", "Pairs.", {{"x", "1"}, {"y", "2"}}, 18446744073709551615u);
    page.gauge("app_open", "Open now.", {{"where", "there"}}, 0);
    CHECK(page.str() == "# HELP app_events_total Events.\n"
                        "# TYPE app_events_total counter\n"
                        "app_events_total{kind=\"a\"} 1\n"
                        "app_events_total{kind=\"b\"} 2\n"
                        "# HELP app_open Open now.\n"
                        "# TYPE app_open gauge\n"
                        "app_open 7\n"
                        "app_open{where=\"there\"} 0\n"
                        "# HELP app_pairs_total Pairs.\n"
                        "# TYPE app_pairs_total counter\n"
                        "app_pairs_total{x=\"1\",y=\"2\"} 18446744073709551615\n");
    CHECK(chat::prometheus_text::content_type == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("prometheus_text: label values and help texts are escaped", "[unit][metrics]") {
    chat::prometheus_text page;
    page.gauge("app_rooms", "A \"help\" with \\ and\nnewline.",
               {{"room", "a\\b \"quoted\"\nnext line 你好"}}, 1);
    CHECK(page.str() == "# HELP app_rooms A \"help\" with \\\\ and\\nnewline.\n"
                        "# TYPE app_rooms gauge\n"
                        "app_rooms{room=\"a\\\\b \\\"quoted\\\"\\nnext line 你好\"} 1\n");
}

TEST_CASE("prometheus_text: names the format does not allow are refused", "[unit][metrics]") {
    chat::prometheus_text page;
    CHECK_THROWS_AS(page.gauge("1app", "", {}, 0), std::invalid_argument);
    CHECK_THROWS_AS(page.gauge("app-open", "", {}, 0), std::invalid_argument);
    CHECK_THROWS_AS(page.gauge("", "", {}, 0), std::invalid_argument);
    CHECK_THROWS_AS(page.gauge("app_open", "", {{"a:b", "x"}}, 0), std::invalid_argument);
    CHECK_THROWS_AS(page.gauge("app_open", "", {{"__reserved", "x"}}, 0), std::invalid_argument);
    CHECK_THROWS_AS(page.gauge("app_open", "", {{"", "x"}}, 0), std::invalid_argument);
    CHECK_THROWS_AS(page.counter("app_events", "", {}, 0), std::invalid_argument);
    CHECK_THROWS_AS(page.counter("app_total_events", "", {}, 0), std::invalid_argument);
    page.gauge("app:ns_open_2", "Colons and digits are fine.", {{"_x9", "y"}}, 0);
    CHECK_THROWS_AS(page.counter("app:ns_open_2", "", {}, 0), std::invalid_argument);
}

TEST_CASE("room_counters: counts, once per broadcast", "[unit][metrics]") {
    chat::room_counters counters;
    counters.count_join();
    counters.count_join();
    counters.count_leave();
    counters.count_message_in(5);
    counters.count_message_in(7);
    counters.count_sent(3, 100); // one broadcast to 3 members
    counters.count_sent(1, 10);  // one reply
    counters.count_refusal(chat::refusal_reason::rate);
    counters.count_refusal(chat::refusal_reason::rate);
    counters.count_refusal(chat::refusal_reason::bad_message);
    counters.count_resume(chat::recovery_outcome::recovered);
    counters.count_resume(chat::recovery_outcome::too_old);
    const chat::room_stats s = counters.snapshot();
    CHECK(s.joins == 2);
    CHECK(s.leaves == 1);
    CHECK(s.messages_in == 2);
    CHECK(s.bytes_in == 12);
    CHECK(s.messages_out == 4);
    CHECK(s.bytes_out == 310);
    CHECK(s.refused[static_cast<std::size_t>(chat::refusal_reason::rate)] == 2);
    CHECK(s.refused[static_cast<std::size_t>(chat::refusal_reason::bad_message)] == 1);
    CHECK(s.refused[static_cast<std::size_t>(chat::refusal_reason::other)] == 0);
    CHECK(s.resumes[static_cast<std::size_t>(chat::recovery_outcome::recovered)] == 1);
    CHECK(s.resumes[static_cast<std::size_t>(chat::recovery_outcome::too_old)] == 1);
    CHECK(s.resumes[static_cast<std::size_t>(chat::recovery_outcome::too_many)] == 0);
}

TEST_CASE("close codes: each registered code counted on its own, the rest together",
          "[unit][metrics]") {
    CHECK(chat::close_code_slot(1000) == 0);
    CHECK(chat::close_code_slot(1006) == 5);
    CHECK(chat::close_code_slot(1015) == 14);
    for (const std::uint16_t other : {0, 999, 1004, 1016, 2999, 3000, 4001, 65535})
        CHECK(chat::close_code_slot(other) == chat::close_code_slots - 1);
}

TEST_CASE("append_room and append_room_members: the exact exposition", "[unit][metrics]") {
    chat::room_counters lobby;
    lobby.count_join();
    lobby.count_message_in(2);
    lobby.count_sent(2, 6);
    lobby.count_refusal(chat::refusal_reason::too_long);
    lobby.count_resume(chat::recovery_outcome::epoch_changed);
    chat::room_counters quiet;

    chat::prometheus_text page;
    chat::append_room_members(page, "lobby", 1);
    chat::append_room(page, "lobby", lobby.snapshot());
    chat::append_room_members(page, "quiet \"one\"", 0);
    chat::append_room(page, "quiet \"one\"", quiet.snapshot());

    const std::string q = "room=\"quiet \\\"one\\\"\"";
    CHECK(page.str() ==
          "# HELP wschat_room_members Members in the room now.\n"
          "# TYPE wschat_room_members gauge\n"
          "wschat_room_members{room=\"lobby\"} 1\n"
          "wschat_room_members{" +
              q +
              "} 0\n"
              "# HELP wschat_room_joins_total Members who joined the room.\n"
              "# TYPE wschat_room_joins_total counter\n"
              "wschat_room_joins_total{room=\"lobby\"} 1\n"
              "wschat_room_joins_total{" +
              q +
              "} 0\n"
              "# HELP wschat_room_leaves_total Members who left the room.\n"
              "# TYPE wschat_room_leaves_total counter\n"
              "wschat_room_leaves_total{room=\"lobby\"} 0\n"
              "wschat_room_leaves_total{" +
              q +
              "} 0\n"
              "# HELP wschat_room_messages_received_total Messages members sent to the room.\n"
              "# TYPE wschat_room_messages_received_total counter\n"
              "wschat_room_messages_received_total{room=\"lobby\"} 1\n"
              "wschat_room_messages_received_total{" +
              q +
              "} 0\n"
              "# HELP wschat_room_received_bytes_total Payload bytes of the messages members sent "
              "to the room.\n"
              "# TYPE wschat_room_received_bytes_total counter\n"
              "wschat_room_received_bytes_total{room=\"lobby\"} 2\n"
              "wschat_room_received_bytes_total{" +
              q +
              "} 0\n"
              "# HELP wschat_room_messages_sent_total Frames queued for the room's members (a "
              "broadcast to N members counts N).\n"
              "# TYPE wschat_room_messages_sent_total counter\n"
              "wschat_room_messages_sent_total{room=\"lobby\"} 2\n"
              "wschat_room_messages_sent_total{" +
              q +
              "} 0\n"
              "# HELP wschat_room_sent_bytes_total Bytes of the frames queued for the room's "
              "members, frame headers included.\n"
              "# TYPE wschat_room_sent_bytes_total counter\n"
              "wschat_room_sent_bytes_total{room=\"lobby\"} 12\n"
              "wschat_room_sent_bytes_total{" +
              q +
              "} 0\n"
              "# HELP wschat_room_refused_total Messages the room turned away, by reason.\n"
              "# TYPE wschat_room_refused_total counter\n"
              "wschat_room_refused_total{room=\"lobby\",reason=\"bad_message\"} 0\n"
              "wschat_room_refused_total{room=\"lobby\",reason=\"too_long\"} 1\n"
              "wschat_room_refused_total{room=\"lobby\",reason=\"rate\"} 0\n"
              "wschat_room_refused_total{room=\"lobby\",reason=\"not_member\"} 0\n"
              "wschat_room_refused_total{room=\"lobby\",reason=\"other\"} 0\n"
              "wschat_room_refused_total{" +
              q +
              ",reason=\"bad_message\"} 0\n"
              "wschat_room_refused_total{" +
              q +
              ",reason=\"too_long\"} 0\n"
              "wschat_room_refused_total{" +
              q +
              ",reason=\"rate\"} 0\n"
              "wschat_room_refused_total{" +
              q +
              ",reason=\"not_member\"} 0\n"
              "wschat_room_refused_total{" +
              q +
              ",reason=\"other\"} 0\n"
              "# HELP wschat_room_resumes_total Requests to resume after a reconnect, by outcome "
              "(recovered: every missed message was sent).\n"
              "# TYPE wschat_room_resumes_total counter\n"
              "wschat_room_resumes_total{room=\"lobby\",outcome=\"recovered\"} 0\n"
              "wschat_room_resumes_total{room=\"lobby\",outcome=\"epoch_changed\"} 1\n"
              "wschat_room_resumes_total{room=\"lobby\",outcome=\"too_old\"} 0\n"
              "wschat_room_resumes_total{room=\"lobby\",outcome=\"unknown_position\"} 0\n"
              "wschat_room_resumes_total{room=\"lobby\",outcome=\"too_many\"} 0\n"
              "wschat_room_resumes_total{" +
              q +
              ",outcome=\"recovered\"} 0\n"
              "wschat_room_resumes_total{" +
              q +
              ",outcome=\"epoch_changed\"} 0\n"
              "wschat_room_resumes_total{" +
              q +
              ",outcome=\"too_old\"} 0\n"
              "wschat_room_resumes_total{" +
              q +
              ",outcome=\"unknown_position\"} 0\n"
              "wschat_room_resumes_total{" +
              q + ",outcome=\"too_many\"} 0\n");
}

TEST_CASE("append_server: the exact exposition", "[unit][metrics]") {
    chat::server_stats s;
    s.connections_opened = 5;
    s.connections_open = 3;
    s.messages_in = 40;
    s.bytes_in = 1234;
    s.closed[chat::close_code_slot(1000)] = 1;
    s.closed[chat::close_code_slot(4001)] = 1;
    s.limit_hits[static_cast<std::size_t>(ws::limit::message_size)] = 2;
    chat::prometheus_text page;
    chat::append_server(page, s);
    std::string closed;
    for (const char* code : {"1000", "1001", "1002", "1003", "1005", "1006", "1007", "1008", "1009",
                             "1010", "1011", "1012", "1013", "1014", "1015", "other"})
        closed += std::string{"wschat_connections_closed_total{code=\""} + code + "\"} " +
                  (code == std::string{"1000"} || code == std::string{"other"} ? "1" : "0") + "\n";
    std::string limits;
    for (const char* limit : {"header_size", "handshake_time", "message_size", "send_queue",
                              "message_rate", "heartbeat", "idle", "connections", "origin"})
        limits += std::string{"wschat_limit_hits_total{limit=\""} + limit + "\"} " +
                  (limit == std::string{"message_size"} ? "2" : "0") + "\n";
    CHECK(page.str() ==
          "# HELP wschat_connections_opened_total WebSocket connections that completed their "
          "handshake.\n"
          "# TYPE wschat_connections_opened_total counter\n"
          "wschat_connections_opened_total 5\n"
          "# HELP wschat_connections_open WebSocket connections open now.\n"
          "# TYPE wschat_connections_open gauge\n"
          "wschat_connections_open 3\n"
          "# HELP wschat_messages_received_total Messages received from peers.\n"
          "# TYPE wschat_messages_received_total counter\n"
          "wschat_messages_received_total 40\n"
          "# HELP wschat_received_bytes_total Payload bytes of the messages received from "
          "peers.\n"
          "# TYPE wschat_received_bytes_total counter\n"
          "wschat_received_bytes_total 1234\n"
          "# HELP wschat_connections_closed_total Connections ended, by close code (1006: "
          "without a Close frame; other: application and unregistered codes).\n"
          "# TYPE wschat_connections_closed_total counter\n" +
              closed +
              "# HELP wschat_limit_hits_total Times peers ran into a limit of the server "
              "(ws::server_options), by limit.\n"
              "# TYPE wschat_limit_hits_total counter\n" +
              limits);
}
