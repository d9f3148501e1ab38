// wschat — a lobby: many named rooms on one server, with history, acknowledgements and resume
// after a reconnect, spoken in JSON envelopes.
//
// Not in the umbrella header: it needs nlohmann/json (Debian: nlohmann-json3-dev).
#pragma once

#include <wschat/chat/bus.hpp>
#include <wschat/chat/detail/lobby_envelopes.hpp>
#include <wschat/chat/detail/presence_window.hpp>
#include <wschat/chat/history.hpp>
#include <wschat/chat/json_policy.hpp>
#include <wschat/chat/lobby_options.hpp>
#include <wschat/chat/metrics.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/connection.hpp>
#include <wschat/ws/cork.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/random.hpp>
#include <wschat/ws/server.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/transport.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/io_context.hpp>
#include <asio/wait_traits.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

/// Many named rooms on one server, for the browser chat and its kin: rooms created on first
/// join and removed when empty (once their history expires), per-room presence, history with
/// sequence numbers and an epoch, acknowledgements of client message ids, and resume after a
/// reconnect without loss or duplicates. The protocol is JSON envelopes (`json_policy`'s
/// names and text rules); the README lists them.
///
/// ```cpp
/// ws::server<> server{io, opts};
/// chat::lobby<> lobby;
/// lobby.attach(server);   // ws://host/rooms/general joins "general"; envelopes do the rest
/// ```
///
/// Thread safety: every member function may be called from any thread; the lobby's state is
/// under one mutex, and sends only queue frames under it.
template <class Transport = ws::asio_tcp>
class lobby {
public:
    /// A member's connection, as the server's handlers hand it over.
    using connection_ptr = std::shared_ptr<ws::connection<Transport>>;

    /// A lobby with `options`; names and text follow `policy` (json_policy's settings).
    /// Without `cluster`, the lobby numbers and delivers its rooms' messages itself (the
    /// in-process bus); with one (`chat::redis_bus`), it publishes them through it and
    /// delivers what it hears from it, so that its rooms span every lobby on that bus.
    explicit lobby(lobby_options options = {}, json_policy policy = {},
                   std::shared_ptr<bus> cluster = nullptr)
        : state_(
              std::make_shared<state>(std::move(options), std::move(policy), std::move(cluster))) {
        if (state_->cluster)
            state_->cluster->listen(state_);
    }

    /// Makes every connection of `server` that opens from now on a lobby member. May be called
    /// from any thread, also while the io_context runs; a second attach to the same server
    /// does nothing.
    void attach(ws::server<Transport>& server) {
        std::lock_guard<std::mutex> lock{state_->mutex};
        if (!state_->executor)
            state_->executor = server.get_executor();
        if (state_->attached.count(&server))
            return;
        std::weak_ptr<state> weak = state_;
        state_->attached[&server] = server.add_handlers({
            [weak](const connection_ptr& conn) {
                if (auto s = weak.lock())
                    s->opened(conn);
            },
            [weak](const connection_ptr& conn, const ws::message& msg) {
                if (auto s = weak.lock())
                    s->received(conn, msg);
            },
            [weak](const connection_ptr& conn, const ws::close_info&) {
                if (auto s = weak.lock())
                    s->closed(conn);
            },
        });
    }

    /// Stops hearing `server`; its connections stay open but leave every room.
    void detach(ws::server<Transport>& server) {
        std::vector<connection_ptr> leaving;
        {
            std::lock_guard<std::mutex> lock{state_->mutex};
            const auto at = state_->attached.find(&server);
            if (at == state_->attached.end())
                return;
            server.remove_handlers(at->second);
            state_->attached.erase(at);
            for (const auto& entry : state_->by_connection)
                if (const connection_ptr& conn = entry.second->conn; conn && server.serves(*conn))
                    leaving.push_back(conn);
        }
        for (const connection_ptr& conn : leaving)
            state_->closed(conn);
    }

    /// Sends `text` to room `room` as from `from` (a system announcement, a bot): numbered,
    /// stored and delivered like a member's message (with a bus: once the bus numbered it,
    /// and not at all when the bus is away). False when the room does not exist here.
    bool publish(std::string_view room, std::string_view from, std::string_view text) {
        std::lock_guard<std::mutex> lock{state_->mutex};
        room_state* r = state_->find_room(room);
        if (!r)
            return false;
        if (state_->cluster)
            state_->publish_on_bus(nullptr, r->name, from, text, std::nullopt);
        else
            state_->publish(*r, from, text, nullptr);
        return true;
    }

    /// What on_join and on_leave are given: the room's name and the member's.
    using membership_handler =
        std::function<void(const std::string& room, const std::string& name)>;

    /// Calls `handler` after a member joined a room (by URL path, envelope, or a resume
    /// that brought it back), outside the lobby's lock, on the thread that made the change
    /// (a connection's strand, or the caller of kick()). Replaces the previous handler; may
    /// be called from any thread at any time.
    void on_join(membership_handler handler) {
        std::lock_guard<std::mutex> lock{state_->mutex};
        state_->on_join = std::move(handler);
    }
    /// Calls `handler` after a member left a room (by envelope, kick, ban, or its connection
    /// closing), as on_join. A connection replaced by a resume does not leave.
    void on_leave(membership_handler handler) {
        std::lock_guard<std::mutex> lock{state_->mutex};
        state_->on_leave = std::move(handler);
    }

    /// Removes member `name` from `room`, telling it why (`kicked`); it may join again.
    /// False when no such member is in the room.
    bool kick(std::string_view room, std::string_view name, std::string_view reason = {}) {
        bool kicked = false;
        state_->locked([&] { kicked = state_->kick(room, name, reason); });
        return kicked;
    }

    /// Kicks member `name` from `room` and refuses its joins there (`banned`) for `duration`.
    /// The ban holds also when no such member is present now.
    void ban(std::string_view room, std::string_view name, std::chrono::seconds duration,
             std::string_view reason = {}) {
        state_->locked([&] {
            state_->bans[{std::string{room}, std::string{name}}] =
                std::chrono::steady_clock::now() + duration;
            state_->kick(room, name, reason);
        });
    }

    /// Rooms that exist now (with members, or empty with history held).
    std::size_t room_count() const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        return state_->rooms.size();
    }

    /// Members of `room` now (0 when it does not exist).
    std::size_t member_count(std::string_view room) const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        const room_state* r = state_->find_room(room);
        return r ? r->members.size() : 0;
    }

    /// Members of `room` now on every node of the lobby's bus (this one's alone without a
    /// bus): the count its `presence` envelopes carry.
    std::size_t online(std::string_view room) const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        const room_state* r = state_->find_room(room);
        return r ? r->members.size() + r->remote_count : 0;
    }

    /// The names in `room` now, in join order.
    std::vector<std::string> member_names(std::string_view room) const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        std::vector<std::string> names;
        if (const room_state* r = state_->find_room(room))
            for (const member* m : r->members)
                names.push_back(m->name);
        return names;
    }

    /// Where `room`'s message stream is (epoch and last sequence number), if it exists.
    std::optional<stream_position> position(std::string_view room) const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        const room_state* r = state_->find_room(room);
        return r ? std::optional<stream_position>{r->messages.position()} : std::nullopt;
    }

    /// One room's figures, as `rooms_stats()` reads them.
    struct room_figures {
        std::string name;                 ///< the room's name
        std::size_t members = 0;          ///< members now
        std::size_t history_messages = 0; ///< messages its history holds now
        std::size_t history_bytes = 0;    ///< bytes of those frames
        room_stats counts;                ///< what it did since it was created
    };

    /// The figures of every room that exists now, in name order (for a metrics endpoint:
    /// `chat::append_room` and `append_room_members` write them in Prometheus' format).
    std::vector<room_figures> rooms_stats() const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        std::vector<room_figures> all;
        for (const auto& [name, r] : state_->rooms)
            all.push_back({name, r.members.size(), r.messages.size(), r.messages.bytes(),
                           r.counts.snapshot()});
        return all;
    }

    /// What every room did together since the lobby was made, rooms removed since included,
    /// and the envelopes turned away before they named a room (bad JSON, an unknown type, a
    /// bad token: `refused`).
    room_stats totals() const { return state_->totals.snapshot(); }

    /// The name member `conn` has now, if it is a member.
    std::optional<std::string> name_of(const connection_ptr& conn) const {
        std::lock_guard<std::mutex> lock{state_->mutex};
        const auto at = state_->by_connection.find(conn.get());
        return at == state_->by_connection.end() ? std::nullopt
                                                 : std::optional<std::string>{at->second->name};
    }

private:
    using clock = std::chrono::steady_clock;
    using json = nlohmann::ordered_json;
    // On the io_context's concrete executor (see room.hpp).
    using timer_type = asio::basic_waitable_timer<clock, asio::wait_traits<clock>,
                                                  asio::io_context::executor_type>;
    struct room_state;

    /// A join or a leave, for the application's handlers.
    struct membership_change {
        bool joined;
        std::string room;
        std::string name;
    };

    /// One participant: its identity outlives a connection, for resume.
    struct member {
        std::string name;               // unique in the lobby while the member exists
        std::string id;                 // public: others may see it
        std::string token;              // secret: resumes this member; new at every resume
        connection_ptr conn;            // while connected
        std::vector<std::string> rooms; // joined, in join order
        // Client message ids already delivered: (room, id) -> sequence, oldest first.
        std::deque<std::pair<std::pair<std::string, std::string>, std::uint64_t>> delivered;
        clock::time_point left_at{}; // when its connection closed (resumable until + window)
    };

    struct room_state {
        room_state(std::string n, const history_options& h) : name(std::move(n)), messages(h) {}
        std::string name;
        history messages;
        std::vector<member*> members; // in join order
        // Coalesced presence: who came and went since the last announcement.
        std::vector<std::string> joined, left;
        bool window_open = false;
        bool changed_in_window = false;
        room_counters counts; // the lobby's totals are counted beside (see count())
        // With a bus: whether `messages` follows the bus's stream (synced since subscribed);
        // replies that show the room's stream wait in `waiting` until it does.
        bool ready = true;
        std::vector<std::function<void()>> waiting;
        // With a bus: the names other nodes have here, by node.
        std::map<std::string, std::vector<std::string>, std::less<>> remote;
        std::size_t remote_count = 0;
    };

    struct state final : std::enable_shared_from_this<state>,
                         bus_listener,
                         detail::lobby_envelopes {
        state(lobby_options o, json_policy p, std::shared_ptr<bus> b)
            : options(std::move(o)), policy(std::move(p)), cluster(std::move(b)) {}

        // --- connections --------------------------------------------------------------

        void opened(const connection_ptr& conn) {
            locked([&] { admit(conn); });
        }
        void closed(const connection_ptr& conn) {
            locked([&] { release(conn); });
        }
        void received(const connection_ptr& conn, const ws::message& msg) {
            locked([&] { handle(conn, msg); });
        }

        /// Runs `work` under the lobby's lock, then tells the application's on_join and
        /// on_leave what changed, outside it (a handler may call back into the lobby).
        template <class Work>
        void locked(Work&& work) {
            std::vector<membership_change> told;
            membership_handler join_handler, leave_handler;
            {
                std::lock_guard<std::mutex> lock{mutex};
                work();
                if (changes.empty())
                    return;
                told.swap(changes);
                join_handler = on_join;
                leave_handler = on_leave;
            }
            for (const membership_change& change : told)
                if (const membership_handler& tell = change.joined ? join_handler : leave_handler)
                    tell(change.room, change.name);
        }

        void admit(const connection_ptr& conn) {
            forget_expired(clock::now());
            const std::string* chosen = conn->template user_data_as<std::string>();
            auto who = std::make_shared<member>();
            who->name = unique_name(
                policy.clean_name(chosen ? *chosen : json_policy::requested_name(conn->request())));
            who->id = ws::random_hex(8);
            who->conn = conn;
            names[who->name] = who.get();
            issue_token(who);
            by_connection[conn.get()] = who;
            conn->send(welcome(*who, false));
            const std::string_view path = conn->request().path();
            const std::string_view prefix = options.room_path_prefix;
            // `?resume=1` says a resume follows: joining now would show the room a provisional
            // member that the resume then takes away again.
            if (!prefix.empty() && path.substr(0, prefix.size()) == prefix &&
                !conn->request().query_param("resume"))
                join(*conn, *who, std::string{path.substr(prefix.size())}, 0);
        }

        void release(const connection_ptr& conn) {
            const auto at = by_connection.find(conn.get());
            if (at == by_connection.end())
                return;
            const std::shared_ptr<member> who = at->second;
            by_connection.erase(at);
            for (const std::string& room : who->rooms)
                if (room_state* r = find_room(room))
                    remove_member(*r, *who);
            // Its rooms stay listed: a resume rejoins them.
            who->conn = nullptr;
            who->left_at = clock::now();
            resumable.push_back(who);
            while (resumable.size() > options.max_resumable)
                forget(resumable.front());
        }

        void handle(const connection_ptr& conn, const ws::message& msg) {
            const auto at = by_connection.find(conn.get());
            if (at == by_connection.end())
                return;
            member& who = *at->second;
            if (!msg.is_text())
                return refuse(*conn, nullptr, refusal_reason::bad_message,
                              error("not_text", "envelopes are JSON text frames"));
            const json envelope = json::parse(msg.data, nullptr, false);
            if (envelope.is_discarded() || !envelope.is_object())
                return refuse(*conn, nullptr, refusal_reason::bad_message,
                              error("bad_json", "not a JSON object"));
            const std::string type = string_field(envelope, "type");
            if (type == "message")
                return say(*conn, who, envelope);
            if (type == "join")
                return join_request(*conn, who, envelope);
            if (type == "leave")
                return leave_request(*conn, who, envelope);
            if (type == "resume")
                return resume(conn, at->second, envelope);
            if (type == "roster")
                return roster_request(*conn, who, envelope);
            if (type == "typing")
                return typing(*conn, who, envelope);
            if (type == "direct")
                return direct(*conn, who, envelope);
            if (type == "ping")
                return conn->send(frame({{"type", "pong"}, {"time", detail::now_ms()}}));
            refuse(*conn, nullptr, refusal_reason::bad_message,
                   error(type.empty() ? "bad_json" : "unknown_type",
                         type.empty() ? "no \"type\"" : "unknown type"));
        }

        // --- the envelopes ------------------------------------------------------------

        void say(ws::connection<Transport>& conn, member& who, const json& envelope) {
            const std::optional<std::string> client_id = optional_string(envelope, "id");
            if (client_id &&
                (client_id->empty() || client_id->size() > options.max_client_id_length))
                return conn.send(error("bad_id", "an id is 1 to " +
                                                     std::to_string(options.max_client_id_length) +
                                                     " bytes"));
            room_state* r = room_of_message(conn, who, envelope, client_id);
            if (!r)
                return;
            const auto text = envelope.find("text");
            if (text == envelope.end() || !text->is_string())
                return refuse(conn, r, refusal_reason::bad_message,
                              error("bad_json", "a message needs a \"text\" string", client_id));
            const auto& words = text->get_ref<const std::string&>();
            count(r, [&](room_counters& c) { c.count_message_in(words.size()); });
            if (words.find_first_not_of(" \t\r\n") == std::string::npos)
                return refuse(conn, r, refusal_reason::bad_message,
                              error("empty_text", "nothing to send", client_id));
            if (detail::code_points(words) > policy.max_text_length)
                return refuse(
                    conn, r, refusal_reason::too_long,
                    error("text_too_long",
                          "at most " + std::to_string(policy.max_text_length) + " characters",
                          client_id));
            if (client_id)
                if (const std::optional<std::uint64_t> seq = delivered(who, r->name, *client_id))
                    return conn.send(ack(r->name, *client_id, *seq, true));
            if (cluster) {
                // Published once the room follows its stream: numbered after the `joined`
                // the sender may still wait for, so that it hears its own message.
                return when_ready(*r, conn,
                                  [this, from = who.name, words,
                                   client_id](ws::connection<Transport>& c, room_state& in) {
                                      publish_on_bus(c.shared_from_this(), in.name, from, words,
                                                     client_id);
                                  });
            }
            const std::uint64_t seq =
                publish(*r, who.name, words, client_id ? &*client_id : nullptr);
            if (client_id) {
                remember(who, r->name, *client_id, seq);
                conn.send(ack(r->name, *client_id, seq, false));
            }
        }

        /// The room a message names; without `room`, the only room its sender is in (the
        /// envelope of a one-room page). Answers the sender and returns null when none fits.
        room_state* room_of_message(ws::connection<Transport>& conn, member& who,
                                    const json& envelope,
                                    const std::optional<std::string>& client_id) {
            std::optional<std::string> name = optional_string(envelope, "room");
            if (!name && who.rooms.size() == 1)
                name = who.rooms.front();
            if (!name) {
                conn.send(error("no_room", "say which room (\"room\")", client_id));
                return nullptr;
            }
            room_state* r = find_room(*name);
            if (!r || !is_member(*r, who)) {
                refuse(conn, r, refusal_reason::not_member,
                       error("not_member", "join the room first", client_id, *name));
                return nullptr;
            }
            return r;
        }

        void join_request(ws::connection<Transport>& conn, member& who, const json& envelope) {
            const std::string room = string_field(envelope, "room");
            std::size_t wanted = 0;
            if (const auto h = envelope.find("history"); h != envelope.end()) {
                if (!h->is_number_unsigned())
                    return conn.send(error("bad_json", "\"history\" is a count", {}, room));
                wanted = h->get<std::size_t>();
            }
            if (wanted > options.max_history_request)
                return conn.send(
                    error("history_too_large",
                          "at most " + std::to_string(options.max_history_request) + " messages",
                          {}, room));
            join(conn, who, room, wanted);
        }

        /// Joins `who` to `room` (created when new) and answers `joined` with the room's
        /// position, the first roster page and the last `history` messages; or an error.
        bool join(ws::connection<Transport>& conn, member& who, const std::string& room,
                  std::size_t history) {
            if (!is_valid_room_name(room, options)) {
                conn.send(error("bad_room_name",
                                "1 to " + std::to_string(options.max_room_name_length) +
                                    " of A-Z a-z 0-9 . _ -",
                                {}, room));
                return false;
            }
            if (banned(room, who.name)) {
                conn.send(error("banned", "banned from this room", {}, room));
                return false;
            }
            room_state* r = find_room(room);
            if (r && is_member(*r, who)) {
                if (r->ready) // else its first `joined` is on its way
                    send_joined(conn, *r, history);
                return true;
            }
            if (who.rooms.size() >= options.max_rooms_per_member) {
                conn.send(error("too_many_joined",
                                "at most " + std::to_string(options.max_rooms_per_member) +
                                    " rooms at once",
                                {}, room));
                return false;
            }
            if (!r && rooms.size() >= options.max_rooms)
                remove_expired_rooms(clock::now());
            if (!r && rooms.size() >= options.max_rooms) {
                conn.send(error("too_many_rooms", "the server holds no more rooms", {}, room));
                return false;
            }
            if (r && r->members.size() >= options.max_members_per_room) {
                conn.send(error("room_full", "the room is full", {}, room));
                return false;
            }
            if (!r)
                r = &make_room(room);
            add_member(*r, who);
            who.rooms.push_back(room);
            send_joined(conn, *r, history);
            presence_changed(*r); // after `joined`: the joiner's own delta comes second
            return true;
        }

        void leave_request(ws::connection<Transport>& conn, member& who, const json& envelope) {
            const std::string room = string_field(envelope, "room");
            room_state* r = find_room(room);
            if (!r || !is_member(*r, who))
                return conn.send(error("not_member", "not in this room", {}, room));
            remove_member(*r, who);
            who.rooms.erase(std::find(who.rooms.begin(), who.rooms.end(), room));
            conn.send(frame({{"type", "left"}, {"room", room}}));
        }

        void roster_request(ws::connection<Transport>& conn, member& who, const json& envelope) {
            const std::string room = string_field(envelope, "room");
            room_state* r = find_room(room);
            if (!r || !is_member(*r, who))
                return conn.send(error("not_member", "not in this room", {}, room));
            std::size_t offset = 0;
            if (const auto o = envelope.find("offset"); o != envelope.end()) {
                if (!o->is_number_unsigned())
                    return conn.send(error("bad_json", "\"offset\" is a count", {}, room));
                offset = o->get<std::size_t>();
            }
            conn.send(roster(*r, offset));
        }

        void typing(ws::connection<Transport>& conn, member& who, const json& envelope) {
            room_state* r = room_of_message(conn, who, envelope, std::nullopt);
            if (!r)
                return;
            // Ephemeral: never stored, never numbered, not sent back to the typist.
            const ws::shared_frame note =
                frame({{"type", "typing"}, {"room", r->name}, {"from", who.name}});
            for (member* m : r->members)
                if (m != &who)
                    send_to(*m, note);
        }

        void direct(ws::connection<Transport>& conn, member& who, const json& envelope) {
            const std::optional<std::string> client_id = optional_string(envelope, "id");
            const std::string to = string_field(envelope, "to");
            const auto text = envelope.find("text");
            if (text == envelope.end() || !text->is_string())
                return conn.send(
                    error("bad_json", "a direct message needs a \"text\" string", client_id));
            const auto& words = text->get_ref<const std::string&>();
            if (words.find_first_not_of(" \t\r\n") == std::string::npos)
                return conn.send(error("empty_text", "nothing to send", client_id));
            if (detail::code_points(words) > policy.max_text_length)
                return conn.send(error("text_too_long", "too long", client_id));
            const auto target = names.find(to);
            if (target == names.end() || !target->second->conn)
                return conn.send(error("no_such_member", "nobody of that name is here", client_id));
            json envelope_out = {{"type", "direct"},
                                 {"from", who.name},
                                 {"to", to},
                                 {"text", words},
                                 {"time", detail::now_ms()}};
            if (client_id)
                envelope_out["id"] = *client_id;
            const ws::shared_frame note = frame(envelope_out);
            send_to(*target->second, note);
            if (target->second != &who)
                conn.send(note); // the sender's copy, for its other views of the conversation
        }

        /// The rooms a resume names, with the position its client saw in each (if it said).
        using resume_list = std::vector<std::pair<std::string, std::optional<stream_position>>>;

        /// `{"type":"resume","token":T,"rooms":[{"room":R,"epoch":E,"seq":S}, …]}`: this
        /// connection becomes the member the token names (closing its old connection, if
        /// still open), rejoins its rooms, and gets what it missed in each, or why not. With
        /// a bus, a token issued by another node is claimed from it: the member moves here.
        void resume(const connection_ptr& conn, std::shared_ptr<member> current,
                    const json& envelope) {
            resume_list asked;
            if (const auto list = envelope.find("rooms"); list != envelope.end()) {
                if (!list->is_array() || list->size() > options.max_rooms_per_member)
                    return conn->send(error("bad_json", "\"rooms\" is a short list"));
                for (const json& item : *list) {
                    if (!item.is_object())
                        return conn->send(error("bad_json", "each room is an object"));
                    std::optional<stream_position> seen;
                    const auto seq = item.find("seq");
                    if (seq != item.end() && seq->is_number_unsigned())
                        seen =
                            stream_position{string_field(item, "epoch"), seq->get<std::uint64_t>()};
                    asked.emplace_back(string_field(item, "room"), std::move(seen));
                }
            }
            const std::string token = string_field(envelope, "token");
            const auto found = by_token.find(token);
            if (found != by_token.end() && found->second == current)
                return conn->send(error("bad_token", "this connection is that member already"));
            if (cluster && !token.empty()) {
                // Claimed through the bus even when issued here: a token resumes once,
                // cluster-wide.
                return cluster->claim_member(
                    token, [weak = this->weak_from_this(), conn, token,
                            asked = std::move(asked)](std::error_code ec, bus_member claimed) {
                        if (auto self = weak.lock())
                            self->locked(
                                [&] { self->claimed(conn, token, ec, std::move(claimed), asked); });
                    });
            }
            if (found == by_token.end())
                return refuse(*conn, nullptr, refusal_reason::other,
                              error("bad_token", "unknown or expired resume token"));
            take_over(conn, current, found->second, asked);
        }

        /// The bus's answer to a claim of `token` for `conn`: the member, as this node holds
        /// it or as another node described it. While the bus is away, a token issued here
        /// still resumes here.
        void claimed(const connection_ptr& conn, const std::string& token, std::error_code ec,
                     bus_member claimed, const resume_list& asked) {
            const auto at = by_connection.find(conn.get());
            if (at == by_connection.end())
                return; // gone meanwhile
            const auto local = by_token.find(token);
            if (ec && (local == by_token.end() || ec == bus_errc::unknown_token))
                return refuse(*conn, nullptr, refusal_reason::other,
                              error("bad_token", ec == bus_errc::unknown_token
                                                     ? "unknown or expired resume token"
                                                     : "resume unavailable: " + ec.message()));
            if (local != by_token.end()) {
                if (local->second == at->second)
                    return conn->send(error("bad_token", "this connection is that member already"));
                return take_over(conn, at->second, local->second, asked);
            }
            auto who = std::make_shared<member>();
            who->name = policy.clean_name(claimed.name); // made unique once it is here
            who->id = std::move(claimed.id);
            // The rooms it says it was in, as joins would take them.
            for (const auto& [room, seen] : asked)
                if (is_valid_room_name(room, options) && !banned(room, who->name) &&
                    who->rooms.size() < options.max_rooms_per_member &&
                    std::find(who->rooms.begin(), who->rooms.end(), room) == who->rooms.end() &&
                    (find_room(room) || rooms.size() < options.max_rooms))
                    who->rooms.push_back(room);
            take_over(conn, at->second, who, asked);
        }

        /// `conn`, until now the provisional member `current`, becomes member `who`.
        /// (By value: `who` and `current` may be the very pointers it erases from the maps.)
        void take_over(const connection_ptr& conn, std::shared_ptr<member> current,
                       std::shared_ptr<member> who, const resume_list& asked) {
            // The provisional member this connection was until now goes, unseen if it joined
            // nothing.
            for (const std::string& room : current->rooms)
                if (room_state* r = find_room(room))
                    remove_member(*r, *current);
            forget(current);
            // A member from another node takes its name here, if still free.
            if (const auto named = names.find(who->name);
                named == names.end() || named->second != who.get()) {
                who->name = unique_name(who->name);
                names[who->name] = who.get();
            }
            // The old connection, if any, hands its rooms over without a leave and a join.
            if (const connection_ptr old = who->conn) {
                by_connection.erase(old.get());
                old->close(static_cast<ws::close_code>(replaced_code),
                           "resumed on another connection");
            } else {
                const auto waiting = std::find(resumable.begin(), resumable.end(), who);
                if (waiting != resumable.end())
                    resumable.erase(waiting);
                for (const std::string& room : who->rooms) {
                    room_state* r = find_room(room);
                    if (!r)
                        r = &make_room(room);
                    add_member(*r, *who);
                    presence_changed(*r);
                }
            }
            if (!who->token.empty()) {
                by_token.erase(who->token);
                if (cluster)
                    cluster->forget_member(who->token);
            }
            issue_token(who);
            who->conn = conn;
            by_connection[conn.get()] = who;
            conn->send(welcome(*who, true));
            for (const auto& [room, seen] : asked) {
                room_state* r = find_room(room);
                if (!r || !is_member(*r, *who)) {
                    conn->send(error("not_member", "this member was not in that room", {}, room));
                    continue;
                }
                when_ready(*r, *conn,
                           [this, seen = seen](ws::connection<Transport>& c, room_state& in) {
                               send_resumed(c, in, seen);
                           });
            }
        }

        /// `resumed` for room `r`: what the member missed since `seen`, or why not.
        void send_resumed(ws::connection<Transport>& conn, room_state& r,
                          const std::optional<stream_position>& seen) {
            recovery got =
                seen ? r.messages.since(*seen, options.max_replay, clock::now())
                     : recovery{recovery_outcome::unknown_position, {}, r.messages.position()};
            json reply = {{"type", "resumed"},
                          {"room", r.name},
                          {"recovered", got.result == recovery_outcome::recovered},
                          {"epoch", got.position.epoch},
                          {"seq", got.position.sequence}};
            if (got.result != recovery_outcome::recovered)
                reply["reason"] = std::string{to_string(got.result)};
            else
                reply["missed"] = got.frames.size();
            count(&r, [&](room_counters& c) {
                c.count_resume(got.result);
                for (const ws::shared_frame& missed : got.frames)
                    c.count_sent(1, missed.size());
            });
            conn.send(frame(reply));
            for (const ws::shared_frame& missed : got.frames)
                conn.send(missed);
        }

        // --- rooms --------------------------------------------------------------------

        room_state& make_room(const std::string& name) {
            room_state& r = rooms.try_emplace(name, name, options.history).first->second;
            r.ready = !cluster; // with a bus, once subscribed and synced
            return r;
        }

        /// Runs `reply(conn, r)` now if `r`'s history follows its stream, or once it does
        /// (if `conn` is then still a member of it).
        template <class Reply>
        void when_ready(room_state& r, ws::connection<Transport>& conn, Reply reply) {
            if (r.ready)
                return reply(conn, r);
            if (r.waiting.size() >= options.max_members_per_room) // bounded while the bus is away
                return conn.send(
                    error("bus_unavailable", "the room is not available, try again", {}, r.name));
            r.waiting.push_back([this, conn = conn.shared_from_this(), name = r.name,
                                 reply = std::move(reply)]() mutable {
                room_state* in = find_room(name);
                const auto at = by_connection.find(conn.get());
                if (in && at != by_connection.end() && is_member(*in, *at->second))
                    reply(*conn, *in);
            });
        }

        std::uint64_t publish(room_state& r, std::string_view from, std::string_view text,
                              const std::string* client_id) {
            const std::uint64_t seq = r.messages.next_sequence();
            const ws::shared_frame message =
                message_frame(r.name, r.messages.epoch(), seq,
                              message_body(from, text, client_id ? &*client_id : nullptr));
            r.messages.append(message, clock::now());
            send_to_all(r, message);
            return seq;
        }

        void add_member(room_state& r, member& who) {
            if (r.members.empty())
                empty_rooms.erase(r.name);
            r.members.push_back(&who);
            if (cluster) {
                if (r.members.size() == 1)
                    cluster->subscribe(r.name);
                cluster->member_joined(r.name, who.name);
            }
            note(r.joined, r.left, who.name); // announced by the caller's presence_changed()
            count(&r, [](room_counters& c) { c.count_join(); });
            if (on_join)
                changes.push_back({true, r.name, who.name});
        }

        /// Notes a join (or a leave) of `name` for the next delta: a name whose leave (or
        /// join) is still unannounced cancels out instead, so that a delta never lists one
        /// member as both joined and left, which would leave clients guessing the order.
        static void note(std::vector<std::string>& happened, std::vector<std::string>& undone,
                         const std::string& name) {
            const auto pending = std::find(undone.begin(), undone.end(), name);
            if (pending != undone.end())
                undone.erase(pending);
            else
                happened.push_back(name);
        }

        void remove_member(room_state& r, member& who) {
            const auto at = std::find(r.members.begin(), r.members.end(), &who);
            if (at == r.members.end())
                return;
            r.members.erase(at);
            if (r.members.empty())
                empty_rooms.insert(r.name);
            note(r.left, r.joined, who.name);
            if (cluster) {
                cluster->member_left(r.name, who.name);
                if (r.members.empty())
                    unsubscribe(r);
            }
            count(&r, [](room_counters& c) { c.count_leave(); });
            if (on_leave)
                changes.push_back({false, r.name, who.name});
            presence_changed(r);
        }

        bool kick(std::string_view room, std::string_view name, std::string_view reason) {
            room_state* r = find_room(room);
            const auto target = names.find(std::string{name});
            if (!r || target == names.end() || !is_member(*r, *target->second))
                return false;
            member& who = *target->second;
            remove_member(*r, who);
            who.rooms.erase(std::find(who.rooms.begin(), who.rooms.end(), r->name));
            send_to(who, frame({{"type", "kicked"}, {"room", r->name}, {"reason", reason}}));
            return true;
        }

        bool banned(const std::string& room, const std::string& name) {
            const auto at = bans.find({room, name});
            if (at == bans.end())
                return false;
            if (at->second > clock::now())
                return true;
            bans.erase(at);
            return false;
        }

        // --- the bus (only with one) -----------------------------------------------------

        /// Publishes a message to `room` through the bus; the sender (`conn`, null for the
        /// application's own) gets its `ack`, or the error, when the bus answers.
        void publish_on_bus(const connection_ptr& conn, const std::string& room,
                            std::string_view from, std::string_view text,
                            const std::optional<std::string>& client_id) {
            cluster->publish(room, message_body(from, text, client_id ? &*client_id : nullptr),
                             [weak = this->weak_from_this(), conn, room,
                              client_id](std::error_code ec, std::uint64_t seq) {
                                 if (auto self = weak.lock(); self && conn)
                                     self->locked(
                                         [&] { self->published(*conn, room, client_id, ec, seq); });
                             });
        }

        void published(ws::connection<Transport>& conn, const std::string& room,
                       const std::optional<std::string>& client_id, std::error_code ec,
                       std::uint64_t seq) {
            if (ec)
                return refuse(conn, find_room(room), refusal_reason::other,
                              error("bus_unavailable", "not sent, try again later: " + ec.message(),
                                    client_id, room));
            if (!client_id)
                return;
            if (const auto at = by_connection.find(&conn); at != by_connection.end())
                remember(*at->second, room, *client_id, seq);
            conn.send(ack(room, *client_id, seq, false));
        }

        /// The room's last member here left: the node stops hearing it, and what it knew
        /// of the other nodes' members goes stale.
        void unsubscribe(room_state& r) {
            cluster->unsubscribe(r.name);
            r.ready = false;
            r.waiting.clear();
            r.remote.clear();
            r.remote_count = 0;
            r.joined.clear();
            r.left.clear();
        }

        /// Runs `work` under the lobby's lock, its sends corked (a bus's handler is not).
        template <class Work>
        void from_bus(Work&& work) {
            std::lock_guard<std::mutex> lock{mutex};
            std::optional<ws::cork> corked;
            if (executor)
                corked.emplace(*executor);
            work();
        }

        void bus_message(std::string_view room, std::string_view epoch, std::uint64_t seq,
                         std::string_view body) override {
            if (!is_message_body(body))
                return;
            from_bus([&] {
                room_state* r = find_room(room);
                if (!r || !r->ready)
                    return;
                if (seq != r->messages.next_sequence() || epoch != r->messages.epoch())
                    r->messages.restart(std::string{epoch}, seq - 1);
                const ws::shared_frame message = message_frame(room, epoch, seq, body);
                r->messages.append(message, clock::now());
                send_to_all(*r, message);
            });
        }

        void bus_synced(std::string_view room, const stream_position& position,
                        std::vector<bus_entry> tail, recovery_outcome why) override {
            from_bus([&] {
                room_state* r = find_room(room);
                if (!r || r->members.empty())
                    return; // unsubscribed meanwhile
                const bool tell = r->ready && why != recovery_outcome::recovered;
                r->messages.restart(position.epoch,
                                    tail.empty() ? position.sequence : tail.front().seq - 1);
                const auto now = clock::now();
                for (const bus_entry& e : tail) {
                    if (!is_message_body(e.body))
                        continue;
                    if (e.seq != r->messages.next_sequence())
                        r->messages.restart(position.epoch, e.seq - 1);
                    r->messages.append(message_frame(room, position.epoch, e.seq, e.body), now);
                }
                if (r->messages.last_sequence() != position.sequence)
                    r->messages.restart(position.epoch, position.sequence);
                // Told as a resume that could not be filled is: clients join again for the
                // recent history (and learn the new epoch from `joined`).
                if (tell)
                    send_to_all(*r, frame({{"type", "resumed"},
                                           {"room", r->name},
                                           {"recovered", false},
                                           {"epoch", position.epoch},
                                           {"seq", position.sequence},
                                           {"reason", std::string{to_string(why)}}}));
                r->ready = true;
                for (const auto& reply : std::exchange(r->waiting, {}))
                    reply();
                if (!r->joined.empty() || !r->left.empty())
                    presence_changed(*r);
            });
        }

        void bus_presence(std::string_view room, std::string_view node,
                          std::vector<std::string> names) override {
            std::sort(names.begin(), names.end());
            from_bus([&] {
                room_state* r = find_room(room);
                if (!r || r->members.empty())
                    return;
                const auto at = r->remote.find(node);
                const std::vector<std::string> none;
                const std::vector<std::string>& had = at == r->remote.end() ? none : at->second;
                std::vector<std::string> gone, came;
                std::set_difference(had.begin(), had.end(), names.begin(), names.end(),
                                    std::back_inserter(gone));
                std::set_difference(names.begin(), names.end(), had.begin(), had.end(),
                                    std::back_inserter(came));
                if (gone.empty() && came.empty())
                    return;
                for (const std::string& name : gone)
                    note(r->left, r->joined, name);
                for (const std::string& name : came)
                    note(r->joined, r->left, name);
                r->remote_count = r->remote_count + names.size() - had.size();
                if (names.empty())
                    r->remote.erase(at);
                else
                    r->remote[std::string{node}] = std::move(names);
                presence_changed(*r);
            });
        }

        void bus_presence_delta(std::string_view room, std::string_view node, std::string_view name,
                                bool joined) override {
            from_bus([&] {
                room_state* r = find_room(room);
                if (!r || r->members.empty())
                    return;
                std::vector<std::string>& names = r->remote[std::string{node}];
                const auto at = std::lower_bound(names.begin(), names.end(), name);
                const bool there = at != names.end() && *at == name;
                if (joined && !there) {
                    names.insert(at, std::string{name});
                    ++r->remote_count;
                    note(r->joined, r->left, std::string{name});
                } else if (!joined && there) {
                    names.erase(at);
                    --r->remote_count;
                    note(r->left, r->joined, std::string{name});
                }
                const bool changed = joined != there;
                if (names.empty())
                    r->remote.erase(std::string{node});
                if (changed)
                    presence_changed(*r);
            });
        }

        // --- presence, coalesced per room (with the mutex held) ------------------------

        void presence_changed(room_state& r) {
            if (!r.ready)
                return; // announced once it is (see bus_synced)
            if (r.window_open) {
                r.changed_in_window = true;
                return;
            }
            open_window(r, announce_presence(r));
        }

        /// Opens the room's window after a delta of `sent` frames (see presence_window).
        void open_window(room_state& r, std::size_t sent) {
            if (!executor || options.presence_interval.count() <= 0)
                return;
            r.window_open = true;
            auto timer = std::make_shared<timer_type>(
                *executor, detail::presence_window(options.presence_interval,
                                                   options.presence_frames_per_second, sent));
            timer->async_wait(
                [weak = this->weak_from_this(), name = r.name, timer](std::error_code ec) {
                    if (auto self = weak.lock(); self && !ec)
                        self->window_closed(name);
                });
        }

        void window_closed(const std::string& name) {
            ws::cork corked{*executor};
            std::lock_guard<std::mutex> lock{mutex};
            room_state* r = find_room(name);
            if (!r)
                return;
            r->window_open = false;
            if (!std::exchange(r->changed_in_window, false) || !r->ready)
                return;
            open_window(*r, announce_presence(*r));
        }

        /// A `presence` delta to every member: who joined and who left since the last one,
        /// and the count; returns how many members it went to. Never the whole roster: a
        /// joiner gets that in `joined`.
        std::size_t announce_presence(room_state& r) {
            if (r.joined.empty() && r.left.empty())
                return 0;
            const auto listed = [this](std::vector<std::string>& names) {
                if (names.size() > options.roster_page)
                    names.resize(options.roster_page);
                return std::move(names);
            };
            send_to_all(r, frame({{"type", "presence"},
                                  {"room", r.name},
                                  {"online", r.members.size() + r.remote_count},
                                  {"joined", listed(r.joined)},
                                  {"left", listed(r.left)},
                                  {"time", detail::now_ms()}}));
            r.joined.clear();
            r.left.clear();
            return r.members.size();
        }

        // --- frames ---------------------------------------------------------------------

        ws::shared_frame welcome(const member& who, bool resumed) const {
            return frame({{"type", "welcome"},
                          {"name", who.name},
                          {"id", who.id},
                          {"token", who.token},
                          {"resumed", resumed},
                          {"time", detail::now_ms()}});
        }

        /// `joined`: the room's position, the first roster page and how many of its last
        /// messages follow, then those messages as they were delivered.
        void send_joined(ws::connection<Transport>& conn, room_state& r, std::size_t history) {
            when_ready(r, conn, [this, history](ws::connection<Transport>& c, room_state& in) {
                send_joined_now(c, in, history);
            });
        }

        void send_joined_now(ws::connection<Transport>& conn, room_state& r, std::size_t history) {
            const std::vector<ws::shared_frame> past = r.messages.recent(history, clock::now());
            json reply = roster_envelope(r, 0);
            reply["type"] = "joined";
            reply["epoch"] = r.messages.epoch();
            reply["seq"] = r.messages.last_sequence();
            reply["history"] = past.size();
            conn.send(frame(reply));
            for (const ws::shared_frame& message : past)
                conn.send(message);
            count(&r, [&](room_counters& c) {
                for (const ws::shared_frame& message : past)
                    c.count_sent(1, message.size());
            });
        }

        ws::shared_frame roster(const room_state& r, std::size_t offset) const {
            return frame(roster_envelope(r, offset));
        }

        /// A page of the room's names from `offset`: this node's members in join order,
        /// then the other nodes'.
        json roster_envelope(const room_state& r, std::size_t offset) const {
            std::vector<std::string> page;
            const std::size_t online = r.members.size() + r.remote_count;
            for (std::size_t i = offset; i < r.members.size() && page.size() < options.roster_page;
                 ++i)
                page.push_back(r.members[i]->name);
            std::size_t skip = offset > r.members.size() ? offset - r.members.size() : 0;
            for (const auto& [node, names] : r.remote) {
                for (std::size_t i = std::min(skip, names.size());
                     i < names.size() && page.size() < options.roster_page; ++i)
                    page.push_back(names[i]);
                skip -= std::min(skip, names.size());
            }
            const bool more = offset + page.size() < online;
            return {{"type", "roster"}, {"room", r.name},  {"online", online},
                    {"offset", offset}, {"members", page}, {"more", more}};
        }

        // --- counting: each event in its room's counters and in the lobby's totals ------

        template <class Count>
        void count(room_state* r, Count&& bump) {
            if (r)
                bump(r->counts);
            bump(totals);
        }

        void refuse(ws::connection<Transport>& conn, room_state* r, refusal_reason why,
                    ws::shared_frame answer) {
            count(r, [why](room_counters& c) { c.count_refusal(why); });
            conn.send(std::move(answer));
        }

        // --- bookkeeping ----------------------------------------------------------------

        room_state* find_room(std::string_view name) {
            const auto at = rooms.find(name);
            return at == rooms.end() ? nullptr : &at->second;
        }
        const room_state* find_room(std::string_view name) const {
            const auto at = rooms.find(name);
            return at == rooms.end() ? nullptr : &at->second;
        }

        /// A member's own list of rooms is short; the room's may be long.
        static bool is_member(const room_state& r, const member& who) {
            return std::find(who.rooms.begin(), who.rooms.end(), r.name) != who.rooms.end();
        }

        static void send_to(const member& who, const ws::shared_frame& f) {
            if (who.conn)
                who.conn->send(f);
        }

        void send_to_all(room_state& r, const ws::shared_frame& f) {
            for (member* m : r.members)
                send_to(*m, f);
            count(&r, [&](room_counters& c) { c.count_sent(r.members.size(), f.size()); });
        }

        std::optional<std::uint64_t> delivered(const member& who, const std::string& room,
                                               const std::string& id) const {
            for (const auto& [key, seq] : who.delivered)
                if (key.first == room && key.second == id)
                    return seq;
            return std::nullopt;
        }

        void remember(member& who, const std::string& room, const std::string& id,
                      std::uint64_t seq) {
            who.delivered.push_back({{room, id}, seq});
            if (who.delivered.size() > options.remembered_client_ids)
                who.delivered.pop_front();
        }

        /// `wanted`, or "wanted (2)", "wanted (3)" … while the name is taken.
        std::string unique_name(const std::string& wanted) const {
            std::string name = wanted;
            for (int n = 2; names.count(name); ++n)
                name = wanted + " (" + std::to_string(n) + ")";
            return name;
        }

        /// Gives `who` a new resume token (the bus's, so that any node can resume it).
        void issue_token(const std::shared_ptr<member>& who) {
            who->token = cluster ? cluster->new_token() : ws::random_hex(16);
            by_token[who->token] = who;
            if (cluster)
                cluster->remember_member(who->token, {who->name, who->id});
        }

        /// Drops `who` for good: its name and token become free.
        void forget(const std::shared_ptr<member>& who) {
            names.erase(who->name);
            by_token.erase(who->token);
            if (cluster)
                cluster->forget_member(who->token);
            const auto at = std::find(resumable.begin(), resumable.end(), who);
            if (at != resumable.end())
                resumable.erase(at);
        }

        void forget_expired(clock::time_point now) {
            while (!resumable.empty() && resumable.front()->left_at + options.resume_window <= now)
                forget(resumable.front());
            remove_expired_rooms(now);
        }

        /// Removes the rooms nobody is in whose history has expired. A disconnected member
        /// that resumes into a removed room finds a new one, whose new epoch tells its client
        /// to reload.
        void remove_expired_rooms(clock::time_point now) {
            for (auto name = empty_rooms.begin(); name != empty_rooms.end();) {
                const auto r = rooms.find(*name);
                r->second.messages.expire(now);
                if (r->second.messages.size() == 0) {
                    rooms.erase(r);
                    name = empty_rooms.erase(name);
                } else {
                    ++name;
                }
            }
        }

        static std::string string_field(const json& envelope, const char* key) {
            const auto at = envelope.find(key);
            return at != envelope.end() && at->is_string() ? at->get<std::string>() : std::string{};
        }

        static std::optional<std::string> optional_string(const json& envelope, const char* key) {
            const auto at = envelope.find(key);
            if (at == envelope.end() || !at->is_string())
                return std::nullopt;
            return at->get<std::string>();
        }

        /// The close code of a connection another one resumed (private use range).
        static constexpr std::uint16_t replaced_code = 4001;

        const lobby_options options;
        const json_policy policy;
        room_counters totals;
        membership_handler on_join, on_leave;   // the application's (under the mutex)
        std::vector<membership_change> changes; // for them, told once the mutex is released
        mutable std::mutex mutex;
        std::optional<asio::io_context::executor_type> executor;
        const std::shared_ptr<bus> cluster; // null: the in-process bus
        std::map<const ws::server<Transport>*, ws::handler_id> attached;
        std::map<std::string, room_state, std::less<>> rooms;
        std::set<std::string> empty_rooms; // rooms nobody is in, removed once history expires
        std::unordered_map<std::string, member*> names;
        std::unordered_map<std::string, std::shared_ptr<member>> by_token;
        std::unordered_map<const void*, std::shared_ptr<member>> by_connection;
        std::deque<std::shared_ptr<member>> resumable; // disconnected, oldest first
        std::map<std::pair<std::string, std::string>, clock::time_point> bans;
    };

    std::shared_ptr<state> state_;
};

WSCHAT_END_NAMESPACE
