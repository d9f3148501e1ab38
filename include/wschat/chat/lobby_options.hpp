// wschat — the options of a lobby (chat::lobby), and what a valid room name is.
#pragma once

#include <wschat/chat/history.hpp>
#include <wschat/detail/config.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(chat)

/// The limits and settings of a lobby. Every limit is on by default: each keeps one client
/// from growing the server's memory or work without bound, and each is answered with an
/// `error` envelope naming it.
struct lobby_options {
    /// Rooms that may exist at once; a join that would create one more gets `too_many_rooms`.
    /// With `history`'s bounds it caps the frames histories hold: 1000 × 128 KiB = 128 MiB.
    std::size_t max_rooms = 1000;
    /// Members of one room; one more gets `room_full`.
    std::size_t max_members_per_room = 10000;
    /// Rooms one member may be in at once; one more gets `too_many_joined`.
    std::size_t max_rooms_per_member = 32;
    /// Longest room name, in bytes. Names are 1 to this many of `A-Z a-z 0-9 . _ -`, so they
    /// are safe in URLs, logs and metric labels; others get `bad_room_name`.
    std::size_t max_room_name_length = 64;
    /// Most messages a join may ask for (`history`); more gets `history_too_large`.
    std::size_t max_history_request = 200;
    /// Most messages one resume replays per room; a longer gap is answered `too_many`, and the
    /// client reloads instead (a day-old tab should not stream thousands of frames).
    std::size_t max_replay = 1000;
    /// Names per `roster` page (the joiner's first page, and each page asked for).
    std::size_t roster_page = 200;
    /// Client message ids remembered per member, to drop a retried message once delivered.
    std::size_t remembered_client_ids = 256;
    /// Longest client message id, in bytes; longer gets `bad_id`.
    std::size_t max_client_id_length = 64;
    /// Each room's history (count, bytes, age). A room that empties is removed once its
    /// history has expired, so a page reloaded within `history.max_age` still finds it.
    /// Smaller than a lone history's defaults, since there are up to `max_rooms` of them.
    history_options history{500, 128 * 1024, std::chrono::seconds{600}};
    /// Presence changes of a room are coalesced: the first is announced at once, later ones
    /// at most once per interval with everyone who came and went meanwhile; zero announces
    /// each at once. A join storm then costs each member O(storm / interval) frames.
    std::chrono::milliseconds presence_interval{50};
    /// And at most this many presence frames per second per room, on average, while members
    /// keep coming and going (as `room_options::presence_frames_per_second`): after a delta to
    /// N members the next waits N / this many seconds if that is longer than the interval.
    /// Zero: the interval alone.
    std::size_t presence_frames_per_second = 2000;
    /// How long a member who disconnected may resume: its name stays reserved and its rooms
    /// remembered for this long.
    std::chrono::seconds resume_window{120};
    /// Disconnected members kept for resume at once; beyond it the oldest is forgotten.
    std::size_t max_resumable = 10000;
    /// URL path prefix that joins a room on connect: `/rooms/general` joins `general`.
    std::string room_path_prefix = "/rooms/";
};

/// Whether `name` is a valid room name under `options` (see `max_room_name_length`).
inline bool is_valid_room_name(std::string_view name, const lobby_options& options) {
    if (name.empty() || name.size() > options.max_room_name_length)
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

WSCHAT_END_NAMESPACE
