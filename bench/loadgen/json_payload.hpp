// loadgen — a chat of JSON envelopes: each benchmark message is what a chat client sends,
//
//     {"type":"message","room":"lobby","from":"user-000123","seq":42,"sent_us":1234567890123,
//      "text":"Sounds good, see you at the standup tomorrow"}
//
// 150 to 250 bytes, with ordinary chat text that differs from message to message (words drawn
// from a chat vocabulary, a few of them non-ASCII), so that what compresses is what a real
// chat would compress. The text is a function of sender and sequence number, so every
// delivered message is checked byte for byte against what was sent, not only its stamp.
#pragma once

#include "payload.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loadgen {

class json_envelopes {
public:
    /// Envelopes for `senders` senders (sender i is "user-" and i in six digits).
    explicit json_envelopes(std::size_t senders) : sent_(senders) {
        for (std::vector<record>& ring : sent_)
            ring.resize(ring_size);
    }

    /// The envelope of `s` (whose time is kept in microseconds: round sent_ns down to a
    /// microsecond first, or read() gives a different stamp back); valid until the next call.
    std::string_view write(const stamp& s) {
        record& r = sent_[s.sender][s.sequence % ring_size];
        compose(s, r.text);
        r.sequence = s.sequence;
        r.valid = true;
        return r.text;
    }

    /// The stamp of an envelope, checked against what its sender sent: nullopt for any other
    /// message (a server's own lines); `intact` false when it looks like an envelope but is
    /// not, byte for byte, one that was sent.
    std::optional<stamp> read(std::string_view payload, bool& intact) {
        intact = true;
        if (payload.substr(0, head.size()) != head)
            return std::nullopt;
        std::size_t at = head.size();
        bool ok = true;
        stamp s;
        s.sender = static_cast<std::uint32_t>(number(payload, at, ok));
        ok = ok && take(payload, at, seq_key);
        s.sequence = static_cast<std::uint32_t>(number(payload, at, ok));
        ok = ok && take(payload, at, time_key);
        s.sent_ns = number(payload, at, ok) * 1000;
        if (!ok || s.sender >= sent_.size()) {
            intact = false;
            return std::nullopt;
        }
        const record& r = sent_[s.sender][s.sequence % ring_size];
        if (r.valid && r.sequence == s.sequence) {
            intact = payload == r.text;
        } else { // sent too long ago to be remembered: compose it again
            compose(s, scratch_);
            intact = payload == scratch_;
        }
        return s;
    }

private:
    static constexpr std::string_view head = R"({"type":"message","room":"lobby","from":"user-)";
    static constexpr std::string_view seq_key = R"(","seq":)";
    static constexpr std::string_view time_key = R"(,"sent_us":)";
    static constexpr std::string_view text_key = R"(,"text":")";
    /// Messages remembered per sender: more than any member lags behind.
    static constexpr std::size_t ring_size = 1024;

    struct record {
        std::string text;
        std::uint32_t sequence = 0;
        bool valid = false;
    };

    static void compose(const stamp& s, std::string& out) {
        out.assign(head);
        char digits[24];
        std::size_t n = 6;
        detail::put_digits(digits, s.sender, n);
        out.append(digits, n);
        out += seq_key;
        out += std::to_string(s.sequence);
        out += time_key;
        out += std::to_string(s.sent_ns / 1000);
        out += text_key;
        append_text(s, out);
        out += "\"}";
    }

public:
    /// A chat line of 50 to 150 bytes: words picked by a generator seeded with sender and
    /// sequence, a capital first letter, punctuation now and then. No quote or backslash, so
    /// it goes into a JSON string as it is.
    static void append_text(const stamp& s, std::string& out) {
        static constexpr std::array<std::string_view, 96> words = {
            "the",     "a",       "to",       "and",    "I",       "you",      "it",
            "is",      "that",    "we",       "for",    "on",      "this",     "with",
            "just",    "can",     "have",     "be",     "not",     "are",      "so",
            "will",    "do",      "what",     "at",     "if",      "all",      "was",
            "think",   "know",    "get",      "now",    "see",     "there",    "yeah",
            "ok",      "lol",     "thanks",   "sure",   "maybe",   "today",    "tomorrow",
            "meeting", "deploy",  "build",    "test",   "release", "branch",   "review",
            "coffee",  "lunch",   "later",    "soon",   "again",   "still",    "looks",
            "good",    "great",   "weird",    "broken", "fixed",   "merged",   "pushed",
            "anyone",  "here",    "please",   "ping",   "sorry",   "back",     "in",
            "minutes", "morning", "everyone", "agreed", "exactly", "probably", "server",
            "client",  "latency", "numbers",  "chart",  "docs",    "issue",    "ticket",
            "café",    "naïve",   "über",     "👍",      "🎉",       "😅",        "déjà vu",
            "standup", "weekend", "friday",   "monday", "question"};
        static constexpr std::array<std::string_view, 6> ends = {".", "!", "?", "", "...", " :)"};
        std::uint64_t state = (std::uint64_t{s.sender} << 32 | s.sequence) * 0x9E3779B97F4A7C15ULL +
                              0x632BE59BD9B4E019ULL;
        const auto next = [&state] {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            return state * 0x2545F4914F6CDD1DULL;
        };
        const std::size_t length = 50 + next() % 91;
        const std::size_t start = out.size();
        while (out.size() - start < length) {
            if (out.size() > start)
                out += next() % 9 == 0 ? ", " : " ";
            out += words[next() % words.size()];
        }
        if (out[start] >= 'a' && out[start] <= 'z')
            out[start] = static_cast<char>(out[start] - 'a' + 'A');
        out += ends[next() % ends.size()];
    }

private:
    /// The decimal number at `at` (up to 20 digits), `at` moved past it.
    static std::uint64_t number(std::string_view text, std::size_t& at, bool& ok) {
        std::uint64_t value = 0;
        const std::size_t start = at;
        while (at < text.size() && at - start < 20 && text[at] >= '0' && text[at] <= '9')
            value = value * 10 + static_cast<std::uint64_t>(text[at++] - '0');
        ok = ok && at > start;
        return value;
    }

    static bool take(std::string_view text, std::size_t& at, std::string_view what) {
        if (text.substr(at, what.size()) != what)
            return false;
        at += what.size();
        return true;
    }

    std::vector<std::vector<record>> sent_; ///< per sender, a ring of what it sent
    std::string scratch_;
};

} // namespace loadgen
