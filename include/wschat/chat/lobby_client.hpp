// wschat — a client of chat::lobby's JSON protocol on ws::client: joins rooms, and after a
// reconnection resumes them through the lobby's resume envelope, so that the application
// sees every message once, in order, or is told which room has a gap.
//
// Not in the umbrella header: it needs nlohmann/json (Debian: nlohmann-json3-dev).
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/client.hpp>
#include <wschat/ws/random.hpp>

#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// What a `lobby_client` is told.
struct lobby_client_options {
    /// The connection: `url` names the lobby (a path outside its room prefix, such as "/",
    /// so that no room is joined before the resume). The lobby's "replaced by a resume"
    /// close code, 4001, is added to `reconnect.no_retry_close_codes`: a connection another
    /// one has taken over must not come back and take it over in turn.
    ws::client_options connection;
    /// Rooms joined at the first open (join() adds more later).
    std::vector<std::string> rooms;
    /// Messages said and not yet acknowledged, kept to be sent again after a reconnection
    /// (the lobby acknowledges a retried id again without delivering it twice). Past it,
    /// say() refuses. 1000.
    std::size_t max_unacknowledged = 1000;
};

/// A chat message as a `lobby_client` delivers it.
struct lobby_message {
    /// The room it was said in.
    std::string room;
    /// The sender's name.
    std::string from;
    /// What was said.
    std::string text;
    /// The room's history epoch (a new one after the lobby lost the room's history).
    std::string epoch;
    /// The message's sequence number in the room's epoch.
    std::uint64_t seq = 0;
};

/// A client of `chat::lobby` (see <wschat/chat/lobby.hpp> for the protocol) on
/// `ws::client<Transport>`.
///
/// At the first open it joins `rooms`. Every message it delivers advances that room's
/// position (epoch, sequence). When the connection comes back it sends, before anything
/// else, `resume` with its token and positions; the lobby answers with what was missed in
/// each room (delivered like any message), or says why it cannot (`epoch_changed`,
/// `too_old`, `too_many`, or the token is unknown, as after a server restart: the client
/// then joins its rooms afresh). Either way the application hears it through `on_resumed` or
/// `on_not_resumed`, and never gets a message twice: one at or before a room's position is
/// dropped. Messages said while disconnected, or not yet acknowledged when the connection
/// was lost, are sent again once the rooms are back, under the same id.
///
/// Thread safety: as ws::client (the io_context's thread, or its strand).
template <class Transport = ws::asio_tcp>
class lobby_client {
public:
    /// The lobby's envelopes.
    using json = nlohmann::json;

    /// A client of the lobby at `options.connection.url`, on `io`; nothing happens until
    /// connect().
    lobby_client(asio::io_context& io, lobby_client_options options)
        : options_(std::move(options)), client_(io, with_replaced_code(options_.connection)),
          id_prefix_(ws::random_hex(4)) {
        for (const std::string& room : options_.rooms)
            rooms_[room];
        client_.before_open([this](const ws::client_open&) { opened(); });
        client_.on_message([this](const ws::message& msg) {
            if (msg.is_text())
                received(msg.data);
        });
    }

    /// Starts connecting (see ws::client::connect).
    void connect() { client_.connect(); }
    /// Closes and stops (see ws::client::close).
    void close() { client_.close(); }

    /// Joins `room` (now when ready, otherwise once the connection is back).
    void join(const std::string& room) {
        if (rooms_.count(room) != 0)
            return;
        rooms_[room];
        if (ready_ && client_.is_open())
            send({{"type", "join"}, {"room", room}});
    }

    /// Says `text` in `room`; false when `max_unacknowledged` messages wait already. The
    /// message is sent now when connected, else once the rooms are back; on_ack follows.
    bool say(const std::string& room, const std::string& text) {
        if (unacknowledged_.size() >= options_.max_unacknowledged)
            return false;
        json envelope = {{"type", "message"},
                         {"room", room},
                         {"text", text},
                         {"id", id_prefix_ + "-" + std::to_string(++last_id_)}};
        unacknowledged_.push_back(envelope);
        // Not through the connection's offline queue: what waits is sent again, once, when
        // the rooms are back.
        if (ready_ && client_.is_open())
            send(envelope);
        return true;
    }

    /// The name the lobby gave this member (empty before the first welcome).
    const std::string& name() const noexcept { return name_; }
    /// Where the client stands in `room`: the epoch and sequence of the last message seen.
    std::optional<std::pair<std::string, std::uint64_t>> position(const std::string& room) const {
        const auto at = rooms_.find(room);
        if (at == rooms_.end() || !at->second.known)
            return std::nullopt;
        return std::make_pair(at->second.epoch, at->second.seq);
    }
    /// Messages said and not yet acknowledged.
    std::size_t unacknowledged() const noexcept { return unacknowledged_.size(); }

    /// The connection underneath, for its on_connecting, on_close and on_error (its
    /// before_open and on_message are this client's).
    ws::client<Transport>& connection() noexcept { return client_; }

    /// The lobby welcomed this member: with its name, and whether a resume kept it.
    std::function<void(const std::string& name, bool resumed)> on_welcome;
    /// A room was joined (its position is the room's latest message).
    std::function<void(const std::string& room)> on_joined;
    /// A message, once, in order.
    std::function<void(const lobby_message&)> on_message;
    /// A room was resumed: `missed` messages follow (and are delivered by on_message).
    std::function<void(const std::string& room, std::size_t missed)> on_resumed;
    /// A room could not be resumed: messages sent meanwhile are lost to this client
    /// (`reason`: epoch_changed, too_old, too_many, unknown_position, bad_token).
    std::function<void(const std::string& room, const std::string& reason)> on_not_resumed;
    /// A message said was acknowledged with its sequence number.
    std::function<void(const std::string& room, const std::string& id, std::uint64_t seq)> on_ack;
    /// The lobby refused something (`code` as in its error envelopes).
    std::function<void(const std::string& code, const std::string& message,
                       const std::string& room)>
        on_lobby_error;

private:
    struct room_state {
        std::string epoch;
        std::uint64_t seq = 0;
        bool known = false; // a position was learnt (joined, a message, resumed)
    };

    static ws::client_options with_replaced_code(ws::client_options options) {
        options.reconnect.no_retry_close_codes.push_back(4001);
        return options;
    }

    void send(const json& envelope) { client_.send_text(envelope.dump()); }

    /// Before anything waiting goes out: the resume request after a reconnection, or the
    /// joins of the first connection.
    void opened() {
        ready_ = false;
        provisional_.reset();
        if (token_.empty()) {
            for (const auto& entry : rooms_)
                send({{"type", "join"}, {"room", entry.first}});
            return become_ready();
        }
        json rooms = json::array();
        for (const auto& [room, state] : rooms_) {
            json item = {{"room", room}};
            if (state.known) {
                item["epoch"] = state.epoch;
                item["seq"] = state.seq;
            }
            rooms.push_back(item);
        }
        resuming_ = true;
        send({{"type", "resume"}, {"token", token_}, {"rooms", rooms}});
    }

    /// The rooms are back (joined or resumed): what was said meanwhile goes out, in order.
    void become_ready() {
        ready_ = true;
        for (const json& envelope : unacknowledged_)
            send(envelope);
    }

    void received(std::string_view text) {
        const json envelope = json::parse(text, nullptr, false);
        if (!envelope.is_object())
            return;
        const std::string type = field(envelope, "type");
        if (type == "welcome")
            return welcome(envelope);
        if (type == "message")
            return message(envelope);
        if (type == "joined")
            return joined(envelope);
        if (type == "resumed")
            return resumed(envelope);
        if (type == "ack")
            return acknowledged(envelope);
        if (type == "error")
            return refused(envelope);
    }

    void welcome(const json& envelope) {
        const bool resumed = envelope.value("resumed", false);
        if (resuming_ && !resumed) {
            // The provisional member this connection is until the resume is answered.
            provisional_ = std::make_pair(field(envelope, "token"), field(envelope, "name"));
            return;
        }
        token_ = field(envelope, "token");
        name_ = field(envelope, "name");
        if (resumed) {
            resuming_ = false;
            become_ready();
        }
        if (on_welcome)
            on_welcome(name_, resumed);
    }

    void message(const json& envelope) {
        const auto room = rooms_.find(field(envelope, "room"));
        const auto seq = envelope.find("seq");
        if (room == rooms_.end() || seq == envelope.end() || !seq->is_number_unsigned())
            return;
        lobby_message msg{room->first, field(envelope, "from"), field(envelope, "text"),
                          field(envelope, "epoch"), seq->get<std::uint64_t>()};
        room_state& state = room->second;
        if (state.known && state.epoch == msg.epoch && msg.seq <= state.seq)
            return; // seen already (a replay overlapping what arrived live)
        state = {msg.epoch, msg.seq, true};
        if (on_message)
            on_message(msg);
    }

    void joined(const json& envelope) {
        const std::string room = field(envelope, "room");
        if (!learn_position(room, envelope))
            return;
        if (on_joined)
            on_joined(room);
    }

    void resumed(const json& envelope) {
        const std::string room = field(envelope, "room");
        const bool recovered = envelope.value("recovered", false);
        if (!recovered) {
            // The gap cannot be filled: go on from the room's position now.
            learn_position(room, envelope);
            if (on_not_resumed)
                on_not_resumed(room, field(envelope, "reason"));
            return;
        }
        if (on_resumed)
            on_resumed(room, envelope.value("missed", std::size_t{0}));
    }

    void acknowledged(const json& envelope) {
        const std::string id = field(envelope, "id");
        for (auto it = unacknowledged_.begin(); it != unacknowledged_.end(); ++it)
            if (field(*it, "id") == id) {
                unacknowledged_.erase(it);
                break;
            }
        if (on_ack)
            on_ack(field(envelope, "room"), id, envelope.value("seq", std::uint64_t{0}));
    }

    void refused(const json& envelope) {
        const std::string code = field(envelope, "code");
        if (code == "bad_token" && resuming_ && provisional_) {
            // The lobby no longer knows this member (it restarted, or the token expired):
            // this connection stays the new member it was welcomed as, which joins afresh.
            resuming_ = false;
            token_ = provisional_->first;
            name_ = provisional_->second;
            for (auto& [room, state] : rooms_) {
                state = room_state{};
                if (on_not_resumed)
                    on_not_resumed(room, "bad_token");
                send({{"type", "join"}, {"room", room}});
            }
            if (on_welcome)
                on_welcome(name_, false);
            return become_ready();
        }
        if (on_lobby_error)
            on_lobby_error(code, field(envelope, "message"), field(envelope, "room"));
    }

    /// Takes a room's position from a joined or resumed envelope; false for a room not
    /// asked for.
    bool learn_position(const std::string& room, const json& envelope) {
        const auto at = rooms_.find(room);
        const auto seq = envelope.find("seq");
        if (at == rooms_.end() || seq == envelope.end() || !seq->is_number_unsigned())
            return false;
        at->second = {field(envelope, "epoch"), seq->get<std::uint64_t>(), true};
        return true;
    }

    static std::string field(const json& envelope, const char* name) {
        const auto at = envelope.find(name);
        return at != envelope.end() && at->is_string() ? at->get<std::string>() : std::string{};
    }

    lobby_client_options options_;
    ws::client<Transport> client_;
    std::map<std::string, room_state> rooms_;
    std::deque<json> unacknowledged_;
    std::string token_;
    std::string name_;
    std::optional<std::pair<std::string, std::string>> provisional_; // token, name
    std::string id_prefix_;
    std::uint64_t last_id_ = 0;
    bool resuming_ = false;
    bool ready_ = false; // the rooms are joined or resumed on the current connection
};

WSCHAT_END_NAMESPACE
