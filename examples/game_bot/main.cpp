// game_bot — bots on ws::client that play a match of examples/game_server and measure it.
//
//     game_bot --url ws://127.0.0.1:9000/match/a --bots 8 --seconds 5
//
// Each bot joins the match, and on every snapshot checks that its tick is the one after the
// previous (no gap, nothing out of order), that its own position is exactly where its inputs
// acknowledged so far put it (the server's movement rule, protocol.hpp), and sends its next
// input. After --seconds it stops sending, waits until its last input is acknowledged and
// closes. The latency of an input is the time from sending it to the first snapshot that
// acknowledges it. One line per bot, then the latency's p50/p99; exit status 0 when every bot
// saw every tick in order and every position matched, 1 otherwise.
//
// Flags:
//   --url URL       the match to join (default ws://127.0.0.1:8080/match/bots)
//   --bots N        how many bots play, all on one io_context (default 4)
//   --seconds S     how long each bot sends inputs (default 5)
#include "../common/cli.hpp"
#include "../game_server/protocol.hpp"

#include <wschat/ws/client.hpp>

#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using clock = std::chrono::steady_clock;

struct bot_options {
    std::string url = "ws://127.0.0.1:8080/match/bots";
    unsigned bots = 4;
    unsigned seconds = 5;
};

/// One player: a ws::client, what it sent, and what it checked.
class bot {
public:
    /// `on_stopped` runs once the bot's client has stopped, whatever the reason.
    bot(asio::io_context& io, unsigned index, const bot_options& options,
        std::vector<double>& latencies_ms, std::function<void()> on_stopped)
        : index_(index), seconds_(options.seconds), latencies_ms_(latencies_ms),
          client_(io, make_options(options)) {
        client_.on_message([this](const ws::message& msg) { received(msg); });
        client_.on_close(
            [this, on_stopped = std::move(on_stopped)](const ws::client_closed& closed) {
                if (!finished_)
                    fail("closed before it finished: " + std::to_string(closed.code) + " " +
                         closed.reason + (closed.error ? " (" + closed.error.message() + ")" : "") +
                         (closed.http_status ? " HTTP " + std::to_string(closed.http_status) : ""));
                stopped_ = true;
                on_stopped();
            });
    }

    void start() { client_.connect(); }
    bool ok() const { return problems_.empty() && finished_; }

    /// Ends a bot that has not finished in time.
    void give_up() {
        if (!stopped_) {
            fail("not finished in time");
            client_.close(ws::close_code::going_away, "out of time");
        }
    }

    /// The bot's line: what it saw and whether all of it was right.
    std::string summary() const {
        std::ostringstream out;
        const game::player_state end = positions_[acked_];
        out << "bot " << index_ << ": player " << player_ << " ticks " << first_tick_ << ".."
            << last_tick_ << " (" << snapshots_ << " snapshots, " << gaps_ << " missing, "
            << out_of_order_ << " out of order) players up to " << most_players_ << " inputs "
            << next_seq_ - 1 << " acked " << acked_ << " final (" << end.x << ", " << end.y
            << ") mismatches " << mismatches_ << (ok() ? " ok" : " FAILED");
        for (const std::string& p : problems_)
            out << "\n  " << p;
        return out.str();
    }

private:
    static ws::client_options make_options(const bot_options& options) {
        ws::client_options opts;
        opts.url = options.url;
        // A bot that reconnected would be a new player: a lost connection is a failure.
        opts.reconnect.enabled = false;
        return opts;
    }

    void fail(std::string problem) {
        if (problems_.size() < 5)
            problems_.push_back(std::move(problem));
    }

    void received(const ws::message& msg) {
        std::string why;
        if (!player_) {
            const auto w = game::decode_welcome(msg.data, why);
            if (!w)
                return fail("first message: " + why);
            player_ = w->player;
            last_tick_ = w->tick;
            started_ = clock::now();
            return;
        }
        const auto s = game::decode_snapshot(msg.data, why);
        if (!s)
            return fail("snapshot: " + why);
        const auto now = clock::now();
        if (!snapshots_++)
            first_tick_ = s->tick;
        if (s->tick > last_tick_ + 1)
            gaps_ += s->tick - last_tick_ - 1;
        else if (s->tick <= last_tick_)
            ++out_of_order_;
        last_tick_ = s->tick;
        most_players_ = std::max(most_players_, s->players.size());
        const auto me =
            std::find_if(s->players.begin(), s->players.end(),
                         [this](const game::player_state& p) { return p.id == player_; });
        if (me == s->players.end())
            return fail("tick " + std::to_string(s->tick) + " without this bot's player");
        if (me->ack < acked_ || me->ack >= next_seq_) {
            fail("tick " + std::to_string(s->tick) + " acknowledges input " +
                 std::to_string(me->ack) + " (sent up to " + std::to_string(next_seq_ - 1) + ")");
            return;
        }
        acked_ = me->ack;
        const game::player_state& expected = positions_[acked_];
        if (me->x != expected.x || me->y != expected.y) {
            if (!mismatches_++)
                fail("tick " + std::to_string(s->tick) + ": at (" + std::to_string(me->x) + ", " +
                     std::to_string(me->y) + "), inputs up to " + std::to_string(acked_) +
                     " lead to (" + std::to_string(expected.x) + ", " + std::to_string(expected.y) +
                     ")");
        }
        while (!in_flight_.empty() && in_flight_.front().first <= acked_) {
            latencies_ms_.push_back(
                std::chrono::duration<double, std::milli>(now - in_flight_.front().second).count());
            in_flight_.pop_front();
        }
        if (now - started_ < std::chrono::seconds{seconds_})
            return send_input(now);
        if (acked_ == next_seq_ - 1 && !finished_) {
            finished_ = true;
            client_.close(ws::close_code::normal, "done");
        }
    }

    /// The next input: steps that sweep -max_step..max_step, different for each bot.
    void send_input(clock::time_point now) {
        game::input in;
        in.last_tick = last_tick_;
        in.seq = next_seq_;
        in.dx =
            static_cast<std::int8_t>((in.seq + index_) % (2 * game::max_step + 1) - game::max_step);
        in.dy = static_cast<std::int8_t>((3 * in.seq + 7 * index_) % (2 * game::max_step + 1) -
                                         game::max_step);
        if (!ws::accepted(client_.send_binary(game::encode_input(in))))
            return fail("input " + std::to_string(in.seq) + " not sent");
        game::player_state next = positions_.back();
        game::move(next, in.dx, in.dy);
        positions_.push_back(next);
        in_flight_.emplace_back(in.seq, now);
        ++next_seq_;
    }

    const unsigned index_;
    const unsigned seconds_;
    std::vector<double>& latencies_ms_;
    ws::client<> client_;
    std::uint32_t player_ = 0;
    std::uint32_t first_tick_ = 0;
    std::uint32_t last_tick_ = 0;
    std::uint64_t snapshots_ = 0;
    std::uint64_t gaps_ = 0;
    std::uint64_t out_of_order_ = 0;
    std::uint64_t mismatches_ = 0;
    std::size_t most_players_ = 0;
    std::uint32_t next_seq_ = 1;
    std::uint32_t acked_ = 0;
    std::vector<game::player_state> positions_{1}; // [seq]: where inputs 1..seq lead
    std::deque<std::pair<std::uint32_t, clock::time_point>> in_flight_; // seq, sent at
    clock::time_point started_;
    bool finished_ = false;
    bool stopped_ = false;
    std::vector<std::string> problems_;
};

/// The `p` quantile (0..1) of `values`, which it sorts.
double quantile(std::vector<double>& values, double p) {
    std::sort(values.begin(), values.end());
    const auto at = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
    return values[at];
}

} // namespace

int main(int argc, char** argv) try {
    bot_options options;
    const examples::program about{
        "bots that play a game_server match and report tick order and input latency",
        {{"--url", "URL", "the match to join (default " + options.url + ")",
          [&options](const std::string& value) {
              options.url = value;
              return std::string{};
          }},
         {"--bots", "N", "how many bots play (default " + std::to_string(options.bots) + ")",
          [&options](const std::string& value) {
              std::string problem = examples::store_number(options.bots, 10000)(value);
              if (problem.empty() && options.bots == 0)
                  problem = "needs at least 1";
              return problem;
          }},
         {"--seconds", "S",
          "how long each bot sends inputs (default " + std::to_string(options.seconds) + ")",
          examples::store_number(options.seconds, 24 * 60 * 60)}}};
    if (const auto exit_status = examples::parse_client_options(argc, argv, about))
        return *exit_status;

    asio::io_context io;
    std::vector<double> latencies_ms;
    std::vector<std::unique_ptr<bot>> bots;
    // Whoever has not finished some time after the inputs end has failed.
    asio::steady_timer deadline{io, std::chrono::seconds{options.seconds + 10}};
    unsigned running = options.bots;
    for (unsigned i = 0; i < options.bots; ++i)
        bots.push_back(std::make_unique<bot>(io, i + 1, options, latencies_ms, [&] {
            if (--running == 0)
                deadline.cancel(); // the last work: io.run() returns
        }));
    deadline.async_wait([&bots](std::error_code ec) {
        if (!ec)
            for (auto& b : bots)
                b->give_up();
    });
    for (auto& b : bots)
        b->start();
    io.run();

    bool all_ok = true;
    for (const auto& b : bots) {
        std::cout << b->summary() << '\n';
        all_ok = all_ok && b->ok();
    }
    if (!latencies_ms.empty()) {
        const double p50 = quantile(latencies_ms, 0.50);
        const double p99 = quantile(latencies_ms, 0.99);
        std::cout << "latency input -> snapshot over " << latencies_ms.size() << " inputs: p50 "
                  << std::fixed << std::setprecision(2) << p50 << " ms, p99 " << p99 << " ms, max "
                  << latencies_ms.back() << " ms\n";
    }
    std::cout << (all_ok ? "all bots ok" : "FAILED") << std::endl;
    return all_ok ? 0 : 1;
} catch (const std::exception& e) {
    std::cerr << "game_bot: " << e.what() << '\n';
    return 1;
}
