// wschat — the browser chat's policy: JSON envelopes, member names, errors and pongs.
//
// Not in the umbrella header: it needs nlohmann/json (Debian: nlohmann-json3-dev).
#pragma once

#include <wschat/chat/policy.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/close_code.hpp>
#include <wschat/ws/handshake.hpp>
#include <wschat/ws/message.hpp>
#include <wschat/ws/shared_frame.hpp>
#include <wschat/ws/utf8.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {
/// Code points in valid UTF-8 (bytes that do not continue a sequence).
inline std::size_t code_points(std::string_view utf8) {
    return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

/// The first `limit` code points of valid UTF-8.
inline std::string_view first_code_points(std::string_view utf8, std::size_t limit) {
    std::size_t seen = 0;
    for (std::size_t i = 0; i < utf8.size(); ++i)
        if ((static_cast<unsigned char>(utf8[i]) & 0xC0) != 0x80 && seen++ == limit)
            return utf8.substr(0, i);
    return utf8;
}

/// One JSON envelope as a text frame. ordered_json keeps "type" first, for whoever reads
/// frames in a browser's devtools; `replace`: names and texts are valid UTF-8 by
/// construction, but encoding must never throw.
inline ws::shared_frame json_frame(const nlohmann::ordered_json& envelope) {
    return ws::make_frame(ws::opcode::text,
                          envelope.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

inline std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
} // namespace detail

/// The browser chat's policy: JSON envelopes, member names, error replies and pongs.
///
/// # The browser chat: JSON envelopes
///
/// Every frame is one JSON object with a `type`. Times are milliseconds since the epoch;
/// `id` numbers a room's messages 1, 2, 3 … in delivery order.
///
/// From the client:
///
/// - `{"type":"message","text":"hi"}`: say something (at most `max_text_length` code
///   points);
/// - `{"type":"ping"}`: are you there? Answered with `pong`; lets a page notice a dead
///   server.
///
/// From the server:
///
/// - `{"type":"welcome","name":"alice (2)","online":3,"time":T}`: to the joining member,
///   with the name it got;
/// - `{"type":"message","from":"alice","text":"hi","time":T,"id":42}`: to everyone, sender
///   included;
/// - `{"type":"join","names":["bob"],"time":T}`: to everyone, who joined since the last
///   announcement;
/// - `{"type":"leave","names":["carol"],"time":T}`: to everyone, who left since the last
///   announcement;
/// - `{"type":"presence","online":3,"members":["alice","bob","carol"],"time":T}`: to
///   everyone after joins and leaves (names sorted, at most `max_listed_names`);
/// - `{"type":"pong","time":T}`: to the member who sent `ping`;
/// - `{"type":"error","code":"bad_json","message":"…"}`: to the member whose envelope was
///   wrong; it stays connected.
///
/// Error codes: `bad_json`, `not_text` (a binary frame), `unknown_type`, `empty_text`,
/// `text_too_long`.
///
/// Names: a member asks for one with `?name=alice` on the WebSocket URL or a `name` cookie
/// (`requested_name()` reads them; an application may put its own choice, a `std::string`,
/// in `upgrade_decision::user_data` from `on_upgrade`). The name is trimmed, control
/// characters are dropped, it is cut to `max_name_length` code points, "guest" when empty,
/// and a name already present becomes "alice (2)", "alice (3)" …
///
/// Thread safety: the members only read the settings below, so the policy is safe on any
/// number of threads (see \ref policy_concept). Needs nlohmann/json, and
/// `#include <wschat/chat/json_policy.hpp>` (not in the umbrella header).
///
/// ```cpp
/// chat::json_policy policy;
/// policy.max_text_length = 500;
/// chat::room<ws::asio_tcp, chat::json_policy> room{policy};
/// ```
struct json_policy {
    /// A chat line as decoded: who said what.
    struct message_type {
        /// The sender's name, as admit() gave it.
        std::string from;
        /// What the sender wrote: valid UTF-8, at most `max_text_length` code points, not
        /// only spaces, tabs and line breaks.
        std::string text;
    };
    /// What the room keeps per member: the name it got.
    struct member_type {
        /// Cleaned by clean_name() and distinct from the names of the members present.
        std::string name;
    };

    /// Longest message text, in code points; longer ones get `error` / `text_too_long`.
    std::size_t max_text_length = 2000;
    /// Longest name, in code points; longer ones are cut.
    std::size_t max_name_length = 32;
    /// Names listed in `presence` and in each `join`/`leave`: a page shows a member list,
    /// and a crowd of thousands would make every announcement huge. `online` is always the
    /// full count.
    std::size_t max_listed_names = 200;

    /// The name a request asks for: `?name=` first, then a `name` cookie; empty if none.
    static std::string requested_name(const ws::http_request& request) {
        std::optional<std::string> name = request.query_param("name");
        if (!name)
            if (const auto cookie = request.cookie("name"))
                name = ws::percent_decode(*cookie);
        return name && ws::is_valid_utf8(*name) ? *name : std::string{};
    }

    /// The tidy form of a requested name (before duplicates are resolved).
    std::string clean_name(std::string_view wanted) const {
        std::string name;
        for (char c : wanted)
            if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7F)
                name += c;
        const auto space = [](char c) { return c == ' '; };
        name.erase(name.begin(), std::find_if_not(name.begin(), name.end(), space));
        name.erase(std::find_if_not(name.rbegin(), name.rend(), space).base(), name.end());
        name = std::string{detail::first_code_points(name, max_name_length)};
        return name.empty() ? "guest" : name;
    }

    /// The name of a joining member: the application's choice when `on_upgrade` put a
    /// `std::string` in `upgrade_decision::user_data`, else requested_name(); then
    /// clean_name(), and " (2)", " (3)" … appended while the name is taken in `present`.
    template <class Connection>
    member_type admit(Connection& conn, const std::vector<member_type>& present) const {
        const std::string* chosen = conn.template user_data_as<std::string>();
        const std::string base = clean_name(chosen ? *chosen : requested_name(conn.request()));
        const auto taken = [&](const std::string& name) {
            return std::any_of(present.begin(), present.end(),
                               [&](const member_type& m) { return m.name == name; });
        };
        std::string name = base;
        for (int n = 2; taken(name); ++n)
            name = base + " (" + std::to_string(n) + ")";
        return {name};
    }

    /// The `welcome` envelope for `who`: the name it got, `online` (counting `who`) and the
    /// time.
    ws::shared_frame welcome(const member_type& who, std::size_t online) const {
        return frame({{"type", "welcome"},
                      {"name", who.name},
                      {"online", online},
                      {"time", detail::now_ms()}});
    }

    /// A `message` envelope becomes a room message from `from`; a `ping` is answered with a
    /// `pong`; anything else is answered with an `error` envelope (the codes above). Never
    /// refuses: a member who sends something wrong stays connected.
    template <class Connection>
    decode_result<message_type> decode(const Connection&, const member_type& from,
                                       const ws::message& in) const {
        using result = decode_result<message_type>;
        if (!in.is_text())
            return result::answer(error("not_text", "envelopes are JSON text frames"));
        const nlohmann::json envelope = nlohmann::json::parse(in.data, nullptr, false);
        if (envelope.is_discarded() || !envelope.is_object())
            return result::answer(error("bad_json", "not a JSON object"));
        const auto type = envelope.find("type");
        if (type == envelope.end() || !type->is_string())
            return result::answer(error("bad_json", "no \"type\""));
        if (*type == "ping")
            return result::answer(frame({{"type", "pong"}, {"time", detail::now_ms()}}));
        if (*type != "message")
            return result::answer(error("unknown_type", "unknown type"));
        const auto text = envelope.find("text");
        if (text == envelope.end() || !text->is_string())
            return result::answer(error("bad_json", "a message needs a \"text\" string"));
        const auto& words = text->get_ref<const std::string&>();
        if (words.find_first_not_of(" \t\r\n") == std::string::npos)
            return result::answer(error("empty_text", "nothing to send"));
        if (detail::code_points(words) > max_text_length)
            return result::answer(error(
                "text_too_long", "at most " + std::to_string(max_text_length) + " characters"));
        return result::accept({from.name, words});
    }

    /// The `message` envelope everyone receives: sender, text, the time of encoding, and
    /// `id`, the number the room gives the message.
    ws::shared_frame encode(const message_type& msg, std::uint64_t id) const {
        return frame({{"type", "message"},
                      {"from", msg.from},
                      {"text", msg.text},
                      {"time", detail::now_ms()},
                      {"id", id}});
    }

    /// The announcement of a change of members: a `join` envelope when someone joined, a
    /// `leave` envelope when someone left (names in the order they came or went), then a
    /// `presence` envelope with the count and the sorted names. Each list holds at most
    /// `max_listed_names` names.
    std::vector<ws::shared_frame> presence(const presence_update<member_type>& update) const {
        std::vector<ws::shared_frame> frames;
        const auto names = [this](const std::vector<member_type>& members, bool sorted) {
            std::vector<std::string> list;
            for (const member_type& m : members)
                list.push_back(m.name);
            if (sorted)
                std::sort(list.begin(), list.end());
            if (list.size() > max_listed_names)
                list.resize(max_listed_names);
            return list;
        };
        const std::int64_t now = detail::now_ms();
        if (!update.joined.empty())
            frames.push_back(
                frame({{"type", "join"}, {"names", names(update.joined, false)}, {"time", now}}));
        if (!update.left.empty())
            frames.push_back(
                frame({{"type", "leave"}, {"names", names(update.left, false)}, {"time", now}}));
        frames.push_back(frame({{"type", "presence"},
                                {"online", update.online},
                                {"members", names(update.members, true)},
                                {"time", now}}));
        return frames;
    }

private:
    static ws::shared_frame frame(const nlohmann::ordered_json& envelope) {
        return detail::json_frame(envelope);
    }
    static ws::shared_frame error(std::string_view code, std::string_view why) {
        return frame({{"type", "error"}, {"code", code}, {"message", why}});
    }
};

WSCHAT_END_NAMESPACE

#include <wschat/chat/detail/extern_templates_json.hpp>
