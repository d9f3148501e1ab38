// Tests for the incremental UTF-8 validator (RFC 3629).
#include <wschat/ws/utf8.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

/// An independent reference: decodes code points arithmetically and checks RFC 3629's
/// constraints, rather than walking a state table.
bool reference_valid(const std::string& text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        std::uint32_t code_point = 0;
        if (lead < 0x80) {
            length = 1;
            code_point = lead;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2;
            code_point = lead & 0x1Fu;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            code_point = lead & 0x0Fu;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            code_point = lead & 0x07u;
        } else {
            return false;
        }
        if (i + length > text.size())
            return false;
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80)
                return false;
            code_point = code_point << 6 | (next & 0x3Fu);
        }
        static const std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (code_point < smallest[length] || code_point > 0x10FFFF ||
            (code_point >= 0xD800 && code_point <= 0xDFFF))
            return false;
        i += length;
    }
    return true;
}

/// Straightforward UTF-8 encoding of one code point (surrogates included, for the tests).
std::string encode(std::uint32_t cp) {
    std::string out;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return out;
}

/// The validator's verdict on `text` fed in two pieces split at `split`.
bool verdict_split(const std::string& text, std::size_t split) {
    ws::utf8_validator validator;
    const bool first = validator.feed(std::string_view{text}.substr(0, split));
    const bool second = validator.feed(std::string_view{text}.substr(split));
    return first && second && validator.complete();
}

/// The index of the byte at which feeding `text` one byte at a time first fails, or
/// nullopt when every feed succeeds.
std::optional<std::size_t> failing_byte(const std::string& text) {
    ws::utf8_validator validator;
    for (std::size_t i = 0; i < text.size(); ++i)
        if (!validator.feed(std::string_view{text}.substr(i, 1)))
            return i;
    return std::nullopt;
}

const std::vector<std::string> valid_samples = {
    "",
    "Hello, world",
    "\x7F",
    "\xC2\x80",                                          // U+0080, smallest 2-byte
    "\xDF\xBF",                                          // U+07FF
    "\xE0\xA0\x80",                                      // U+0800, smallest 3-byte
    "\xED\x9F\xBF",                                      // U+D7FF, just below the surrogates
    "\xEE\x80\x80",                                      // U+E000, just above them
    "\xEF\xBF\xBF",                                      // U+FFFF
    "\xF0\x90\x80\x80",                                  // U+10000, smallest 4-byte
    "\xF4\x8F\xBF\xBF",                                  // U+10FFFF, the last code point
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",      // κόσμε
    "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C",  // 你好世界
    "\xF0\x9F\x98\x80 \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", // emoji with a skin tone modifier
    "long ASCII run before a multibyte one: \xE2\x82\xAC and after it, more ASCII text",
};

struct invalid_sample {
    std::string bytes;
    std::optional<std::size_t> fails_at; // nullopt: only incomplete at the end
    const char* why;
};

const std::vector<invalid_sample> invalid_samples = {
    {"\xC0\x80", 0, "overlong NUL (C0 can never appear)"},
    {"\xC1\xBF", 0, "overlong 2-byte (C1 can never appear)"},
    {"\xE0\x80\x80", 1, "overlong 3-byte"},
    {"\xE0\x9F\xBF", 1, "overlong 3-byte U+07FF"},
    {"\xF0\x80\x80\x80", 1, "overlong 4-byte"},
    {"\xF0\x8F\xBF\xBF", 1, "overlong 4-byte U+FFFF"},
    {"\xED\xA0\x80", 1, "surrogate U+D800"},
    {"\xED\xBF\xBF", 1, "surrogate U+DFFF"},
    {"\xF4\x90\x80\x80", 1, "U+110000, past the last code point"},
    {"\xF5\x80\x80\x80", 0, "F5 can never appear"},
    {"\xF8\x88\x80\x80\x80", 0, "5-byte form"},
    {"\xFF", 0, "FF can never appear"},
    {"\xFE", 0, "FE can never appear"},
    {"\x80", 0, "lone continuation byte"},
    {"abc\xBF", 3, "continuation byte after ASCII"},
    {"\xC3\x28", 1, "lead byte followed by ASCII"},
    {"\xE2\x82\x28", 2, "3-byte sequence broken at its third byte"},
    {"\xC3", std::nullopt, "truncated 2-byte at the end"},
    {"\xE2\x82", std::nullopt, "truncated 3-byte at the end"},
    {"\xF0\x9F\x98", std::nullopt, "truncated 4-byte at the end"},
    {"0123456789abcdef\xF0\x9F", std::nullopt, "truncated after an ASCII run"},
    {"0123456789abcdef\xED\xA0\x80", 17, "surrogate after an ASCII run"},
};

} // namespace

TEST_CASE("utf8_validator accepts valid UTF-8", "[utf8]") {
    SECTION("whole") {
        for (const std::string& sample : valid_samples) {
            INFO("sample: " << sample);
            CHECK(ws::is_valid_utf8(sample));
            CHECK(reference_valid(sample));
        }
    }
    SECTION("split at every byte position across two feeds") {
        for (const std::string& sample : valid_samples)
            for (std::size_t split = 0; split <= sample.size(); ++split) {
                INFO("sample: " << sample << ", split at " << split);
                CHECK(verdict_split(sample, split));
            }
    }
    SECTION("byte by byte") {
        for (const std::string& sample : valid_samples) {
            INFO("sample: " << sample);
            CHECK_FALSE(failing_byte(sample).has_value());
        }
    }
}

TEST_CASE("utf8_validator rejects invalid UTF-8", "[utf8]") {
    SECTION("whole") {
        for (const invalid_sample& sample : invalid_samples) {
            INFO(sample.why);
            CHECK_FALSE(ws::is_valid_utf8(sample.bytes));
            CHECK_FALSE(reference_valid(sample.bytes));
        }
    }
    SECTION("split at every byte position gives the same verdict") {
        for (const invalid_sample& sample : invalid_samples)
            for (std::size_t split = 0; split <= sample.bytes.size(); ++split) {
                INFO(sample.why << ", split at " << split);
                CHECK_FALSE(verdict_split(sample.bytes, split));
            }
    }
    SECTION("fails fast, at the first byte that cannot be part of valid UTF-8") {
        for (const invalid_sample& sample : invalid_samples) {
            INFO(sample.why);
            CHECK(failing_byte(sample.bytes) == sample.fails_at);
        }
    }
    SECTION("fed whole, feed() itself reports the failure unless only incomplete") {
        for (const invalid_sample& sample : invalid_samples) {
            INFO(sample.why);
            ws::utf8_validator validator;
            CHECK(validator.feed(sample.bytes) == !sample.fails_at.has_value());
            CHECK_FALSE(validator.complete());
            CHECK(validator.failed() == sample.fails_at.has_value());
        }
    }
}

TEST_CASE("utf8_validator state: failure is sticky, reset starts over", "[utf8]") {
    ws::utf8_validator validator;
    CHECK(validator.complete());
    CHECK_FALSE(validator.failed());

    CHECK(validator.feed("\xE2\x82"));
    CHECK_FALSE(validator.complete());
    CHECK_FALSE(validator.failed());

    CHECK_FALSE(validator.feed("A"));
    CHECK(validator.failed());
    CHECK_FALSE(validator.feed("valid ASCII does not revive it"));
    CHECK_FALSE(validator.feed(""));
    CHECK(validator.failed());

    validator.reset();
    CHECK(validator.complete());
    CHECK(validator.feed("\xE2\x82\xAC"));
    CHECK(validator.complete());
}

TEST_CASE("utf8_validator agrees with an arithmetic decoder on every code point", "[utf8]") {
    SECTION("every scalar value is accepted, every surrogate rejected") {
        std::size_t accepted = 0;
        std::size_t rejected_surrogates = 0;
        for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
            const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
            const bool valid = ws::is_valid_utf8(encode(cp));
            if (surrogate && !valid)
                ++rejected_surrogates;
            if (!surrogate && valid)
                ++accepted;
        }
        CHECK(accepted == 0x110000 - 0x800);
        CHECK(rejected_surrogates == 0x800);
    }
    SECTION("every 1- and 2-byte string") {
        for (int first = 0; first < 256; ++first) {
            for (int second = -1; second < 256; ++second) {
                std::string text(1, static_cast<char>(first));
                if (second >= 0)
                    text += static_cast<char>(second);
                INFO("bytes " << first << " " << second);
                REQUIRE(ws::is_valid_utf8(text) == reference_valid(text));
            }
        }
    }
    SECTION("every 3-byte string from a lead byte E0..F4") {
        for (int lead = 0xE0; lead <= 0xF4; ++lead)
            for (int second = 0x70; second < 0xC8; ++second)
                for (int third = 0x70; third < 0xC8; ++third) {
                    const std::string text{static_cast<char>(lead), static_cast<char>(second),
                                           static_cast<char>(third)};
                    REQUIRE(ws::is_valid_utf8(text) == reference_valid(text));
                }
    }
}

TEST_CASE("utf8_validator ASCII fast path keeps exact verdicts", "[utf8]") {
    const std::string ascii(40, 'x');
    SECTION("a bad byte at any offset of an ASCII run is caught at that offset") {
        for (std::size_t at = 0; at < ascii.size(); ++at) {
            std::string text = ascii;
            text[at] = '\x80';
            INFO("bad byte at " << at);
            ws::utf8_validator validator;
            CHECK_FALSE(validator.feed(text));
            CHECK(failing_byte(text) == at);
        }
    }
    SECTION("a valid multibyte character at any offset is accepted") {
        for (std::size_t at = 0; at <= ascii.size(); ++at) {
            std::string text = ascii;
            text.insert(at, "\xF0\x9F\x98\x80");
            INFO("emoji at " << at);
            CHECK(ws::is_valid_utf8(text));
        }
    }
    SECTION("random mixtures agree with the reference decoder") {
        // Biased towards ASCII runs and the boundary bytes, where the two paths meet.
        const unsigned char alphabet[] = {'a',  'b',  ' ',  0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                          0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1, 0xED,
                                          0xEF, 0xF0, 0xF3, 0xF4, 0xF5, 0xFF};
        std::mt19937 random{7};
        std::uniform_int_distribution<std::size_t> pick{0, sizeof alphabet - 1};
        std::uniform_int_distribution<std::size_t> ascii_run{0, 20};
        std::uniform_int_distribution<std::size_t> length{0, 12};
        for (int round = 0; round < 20000; ++round) {
            std::string text;
            for (std::size_t piece = length(random); piece > 0; --piece) {
                text.append(ascii_run(random), 'q');
                text += static_cast<char>(alphabet[pick(random)]);
            }
            const bool expected = reference_valid(text);
            REQUIRE(ws::is_valid_utf8(text) == expected);
            REQUIRE(verdict_split(text, text.size() / 3) == expected);
        }
    }
}
