// wschat — the frames of chat::lobby's envelopes that do not depend on its state: errors,
// acknowledgements, and room messages (whose body a bus carries between nodes).
#pragma once

#include <wschat/chat/json_policy.hpp>
#include <wschat/detail/config.hpp>
#include <wschat/ws/frame.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// The lobby's envelope builders, as static members its state inherits (so that the lobby
/// calls them by their short names).
struct lobby_envelopes {
    using json = nlohmann::ordered_json;

    /// `envelope` as a text frame (json_policy's rules for text that is not UTF-8).
    static ws::shared_frame frame(const json& envelope) { return json_frame(envelope); }

    /// `{"type":"error","code":…,"message":…}`, with the room and the client's id when given.
    static ws::shared_frame error(std::string_view code, std::string_view why,
                                  const std::optional<std::string>& client_id = {},
                                  std::string_view room = {}) {
        json envelope = {{"type", "error"}, {"code", code}, {"message", why}};
        if (!room.empty())
            envelope["room"] = room;
        if (client_id)
            envelope["id"] = *client_id;
        return frame(envelope);
    }

    /// `{"type":"ack",…}`: the client's message `id` got number `seq` in `room`.
    static ws::shared_frame ack(const std::string& room, const std::string& id, std::uint64_t seq,
                                bool duplicate) {
        return frame(
            {{"type", "ack"}, {"room", room}, {"id", id}, {"seq", seq}, {"duplicate", duplicate}});
    }

    /// A room message's fields after `seq`, `,"from":…,"text":…,"time":…[,"id":…]}`: what a
    /// bus stores and carries, the node adding the fields it numbers (see message_frame).
    static std::string message_body(std::string_view from, std::string_view text,
                                    const std::string* client_id) {
        json fields = {{"from", from}, {"text", text}, {"time", now_ms()}};
        if (client_id)
            fields["id"] = *client_id;
        std::string body = fields.dump(-1, ' ', false, json::error_handler_t::replace);
        body.front() = ',';
        return body;
    }

    /// True for what message_body makes (a bus's payload is checked before it is framed).
    static bool is_message_body(std::string_view body) {
        return body.size() >= 2 && body.front() == ',' && body.back() == '}';
    }

    /// `{"type":"message","room":R,"epoch":E,"seq":N` and `body`. Room names and epochs
    /// need no escaping (see is_valid_room_name, history's epoch), so these are the bytes
    /// `frame` would make of the whole envelope, without parsing the body again.
    static ws::shared_frame message_frame(std::string_view room, std::string_view epoch,
                                          std::uint64_t seq, std::string_view body) {
        std::string text;
        text.reserve(64 + room.size() + epoch.size() + body.size());
        text += R"({"type":"message","room":")";
        text += room;
        text += R"(","epoch":")";
        text += epoch;
        text += R"(","seq":)";
        text += std::to_string(seq);
        text += body;
        return ws::make_frame(ws::opcode::text, text);
    }
};

} // namespace detail

WSCHAT_END_NAMESPACE
