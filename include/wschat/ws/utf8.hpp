// wschat — incremental, fail-fast UTF-8 validation for text messages and close reasons.
#pragma once

#include <wschat/detail/config.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

WSCHAT_BEGIN_NAMESPACE(ws)
namespace detail {

/// The byte classes of the validating automaton: bytes in one class behave alike in every
/// state. Continuation bytes are split three ways because the second byte of E0, ED, F0 and
/// F4 sequences is restricted to a sub-range (to exclude overlongs, surrogates and code
/// points past U+10FFFF).
enum utf8_class : std::uint8_t {
    utf8_ascii,     ///< 00..7F
    utf8_cont_low,  ///< 80..8F
    utf8_cont_mid,  ///< 90..9F
    utf8_cont_high, ///< A0..BF
    utf8_never,     ///< C0, C1, F5..FF: cannot appear anywhere
    utf8_lead2,     ///< C2..DF: starts a 2-byte sequence
    utf8_lead3_e0,  ///< E0: next byte A0..BF (else overlong)
    utf8_lead3,     ///< E1..EC, EE, EF
    utf8_lead3_ed,  ///< ED: next byte 80..9F (else a surrogate)
    utf8_lead4_f0,  ///< F0: next byte 90..BF (else overlong)
    utf8_lead4,     ///< F1..F3
    utf8_lead4_f4,  ///< F4: next byte 80..8F (else past U+10FFFF)
};
/// The number of utf8_class values.
inline constexpr std::size_t utf8_class_count = utf8_lead4_f4 + 1;

/// The states of the automaton: how many continuation bytes are still due, and which
/// sub-range the next one must fall in.
enum utf8_state : std::uint8_t {
    utf8_accept,      ///< between code points
    utf8_reject,      ///< invalid; absorbing
    utf8_need1,       ///< one more continuation byte (80..BF)
    utf8_need2,       ///< two more, next one 80..BF
    utf8_need2_a0_bf, ///< after E0
    utf8_need2_80_9f, ///< after ED
    utf8_need3,       ///< three more, next one 80..BF
    utf8_need3_90_bf, ///< after F0
    utf8_need3_80_8f, ///< after F4
};
/// The number of utf8_state values.
inline constexpr std::size_t utf8_state_count = utf8_need3_80_8f + 1;

/// Builds the byte → class table (RFC 3629 §4 syntax).
constexpr std::array<std::uint8_t, 256> make_utf8_classes() noexcept {
    std::array<std::uint8_t, 256> classes{};
    for (std::size_t byte = 0; byte < 256; ++byte) {
        utf8_class c = utf8_never;
        if (byte <= 0x7F)
            c = utf8_ascii;
        else if (byte <= 0x8F)
            c = utf8_cont_low;
        else if (byte <= 0x9F)
            c = utf8_cont_mid;
        else if (byte <= 0xBF)
            c = utf8_cont_high;
        else if (byte >= 0xC2 && byte <= 0xDF)
            c = utf8_lead2;
        else if (byte == 0xE0)
            c = utf8_lead3_e0;
        else if (byte == 0xED)
            c = utf8_lead3_ed;
        else if (byte >= 0xE1 && byte <= 0xEF)
            c = utf8_lead3;
        else if (byte == 0xF0)
            c = utf8_lead4_f0;
        else if (byte >= 0xF1 && byte <= 0xF3)
            c = utf8_lead4;
        else if (byte == 0xF4)
            c = utf8_lead4_f4;
        classes[byte] = c;
    }
    return classes;
}

/// Builds the transition table, indexed by `state * utf8_class_count + class`. Every
/// transition not listed leads to utf8_reject, which is what makes the validator fail at
/// the first byte that cannot continue a valid sequence.
constexpr std::array<std::uint8_t, utf8_state_count * utf8_class_count>
make_utf8_transitions() noexcept {
    std::array<std::uint8_t, utf8_state_count * utf8_class_count> next{};
    for (auto& entry : next)
        entry = utf8_reject;
    auto allow = [&next](utf8_state from, utf8_class byte_class, utf8_state to) {
        next[std::size_t{from} * utf8_class_count + byte_class] = to;
    };
    allow(utf8_accept, utf8_ascii, utf8_accept);
    allow(utf8_accept, utf8_lead2, utf8_need1);
    allow(utf8_accept, utf8_lead3_e0, utf8_need2_a0_bf);
    allow(utf8_accept, utf8_lead3, utf8_need2);
    allow(utf8_accept, utf8_lead3_ed, utf8_need2_80_9f);
    allow(utf8_accept, utf8_lead4_f0, utf8_need3_90_bf);
    allow(utf8_accept, utf8_lead4, utf8_need3);
    allow(utf8_accept, utf8_lead4_f4, utf8_need3_80_8f);
    for (utf8_class cont : {utf8_cont_low, utf8_cont_mid, utf8_cont_high}) {
        allow(utf8_need1, cont, utf8_accept);
        allow(utf8_need2, cont, utf8_need1);
        allow(utf8_need3, cont, utf8_need2);
    }
    allow(utf8_need2_a0_bf, utf8_cont_high, utf8_need1);
    allow(utf8_need2_80_9f, utf8_cont_low, utf8_need1);
    allow(utf8_need2_80_9f, utf8_cont_mid, utf8_need1);
    allow(utf8_need3_90_bf, utf8_cont_mid, utf8_need2);
    allow(utf8_need3_90_bf, utf8_cont_high, utf8_need2);
    allow(utf8_need3_80_8f, utf8_cont_low, utf8_need2);
    return next;
}

/// The width of a state in a shift-DFA row (9 states x 6 bits fit in 64).
inline constexpr unsigned utf8_state_bits = 6;

/// A state as the validator stores it: its bit offset within a shift-DFA row.
constexpr std::uint8_t utf8_offset(utf8_state state) noexcept {
    return static_cast<std::uint8_t>(state * utf8_state_bits);
}

/// Recasts the automaton as a "shift DFA": for each byte, one 64-bit row holding, at bits
/// [offset(s), offset(s) + 6), the offset of the state that follows state s. The step is
/// then `row[byte] >> state`. Unlike a (state, class) table lookup, the row load does not
/// depend on the previous state, so the only serial work per byte is one shift and
/// consecutive bytes overlap in the pipeline.
constexpr std::array<std::uint64_t, 256> make_utf8_shift_rows() noexcept {
    const auto classes = make_utf8_classes();
    const auto transitions = make_utf8_transitions();
    std::array<std::uint64_t, 256> rows{};
    for (std::size_t byte = 0; byte < rows.size(); ++byte) {
        for (std::size_t state = 0; state < utf8_state_count; ++state) {
            const auto next =
                static_cast<utf8_state>(transitions[state * utf8_class_count + classes[byte]]);
            rows[byte] |= std::uint64_t{utf8_offset(next)} << (state * utf8_state_bits);
        }
    }
    return rows;
}

/// Byte → shift-DFA row (see make_utf8_shift_rows).
inline constexpr std::array<std::uint64_t, 256> utf8_shift_rows = make_utf8_shift_rows();

/// The high bit of each byte of a 64-bit word: a word of ASCII has none of them set.
inline constexpr std::uint64_t ascii_high_bits = 0x8080808080808080ULL;

/// Loads 8 bytes from any address (memcpy compiles to one unaligned load).
inline std::uint64_t load_word(const std::uint8_t* bytes) noexcept {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes, sizeof word);
    return word;
}

} // namespace detail

/// Incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates, max U+10FFFF).
///
/// Feed it the bytes of one text in as many pieces as they arrive; code points may be split
/// anywhere. It fails fast: feed() returns false as soon as the bytes seen so far cannot be
/// a prefix of valid UTF-8 (0xF4 0x90 fails at the second byte, not at the end), and stays
/// failed until reset(). At the end of the text, check complete(): a text that stops in the
/// middle of a code point is invalid too. Runs of ASCII are checked 8 bytes at a time.
///
/// ```
/// ws::utf8_validator v;
/// bool ok = v.feed("caf\xC3") && v.feed("\xA9") && v.complete(); // "café" in two pieces
/// ```
/// Not thread-safe; one validator per text being checked. Cheap to copy.
class utf8_validator {
public:
    /// Validates the next `size` bytes; false once the text seen so far is invalid (sticky).
    bool feed(const std::uint8_t* data, std::size_t size) noexcept {
        constexpr std::uint64_t accept = detail::utf8_offset(detail::utf8_accept);
        constexpr std::uint64_t reject = detail::utf8_offset(detail::utf8_reject);
        constexpr std::uint64_t state_mask = 63; // the low bits of a row shifted into place
        std::uint64_t state = state_;
        std::size_t i = 0;
        while (i < size) {
            if (state == accept) {
                // Between code points a whole word of ASCII bytes leaves the state unchanged.
                while (i + 8 <= size &&
                       (detail::load_word(data + i) & detail::ascii_high_bits) == 0)
                    i += 8;
            }
            // Step through 8 bytes (fewer at the end) without looking at the state: reject is
            // absorbing, so checking once per run still reports the failure in this call.
            // The fixed count lets the compiler unroll the run into straight-line shifts.
            const auto step = [&state, data](std::size_t at) {
                state = detail::utf8_shift_rows[data[at]] >> (state & state_mask);
            };
            if (size - i >= 8) {
                for (std::size_t k = 0; k < 8; ++k)
                    step(i + k);
                i += 8;
            } else {
                for (; i < size; ++i)
                    step(i);
            }
            state &= state_mask;
            if (state == reject)
                break;
        }
        state_ = static_cast<std::uint8_t>(state);
        return state != reject;
    }

    /// Validates the next bytes of the text, given as characters.
    bool feed(std::string_view text) noexcept {
        return feed(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    }

    /// True when the bytes so far are valid and end on a code point boundary, i.e. the text
    /// may end here.
    bool complete() const noexcept { return state_ == detail::utf8_offset(detail::utf8_accept); }

    /// True once the bytes fed cannot be valid UTF-8, whatever follows.
    bool failed() const noexcept { return state_ == detail::utf8_offset(detail::utf8_reject); }

    /// Forgets everything fed, to validate a new text.
    void reset() noexcept { state_ = detail::utf8_offset(detail::utf8_accept); }

private:
    std::uint8_t state_ = detail::utf8_offset(detail::utf8_accept); // a shift-DFA offset
};

/// True when `text` is, as a whole, valid UTF-8.
inline bool is_valid_utf8(std::string_view text) noexcept {
    utf8_validator validator;
    return validator.feed(text) && validator.complete();
}

WSCHAT_END_NAMESPACE
