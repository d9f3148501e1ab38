// Test support — permessage-deflate's compression as a peer does it, on zlib directly (not on
// the library's wrappers): raw deflate, sync-flushed, the 00 00 FF FF tail removed on the way
// out and appended on the way in (RFC 7692 §7.2).
#pragma once

#include <zlib.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace test {

/// One direction's zlib stream: a compressor or a decompressor, keeping its context across
/// messages unless told to reset after each.
class raw_deflate {
public:
    enum class direction { compress, decompress };

    raw_deflate(direction d, int window_bits, bool keep_context)
        : stream_(std::make_unique<z_stream>()), direction_(d), keep_(keep_context) {
        const int status =
            d == direction::compress
                ? deflateInit2(stream_.get(), 6, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY)
                : inflateInit2(stream_.get(), -window_bits);
        if (status != Z_OK)
            throw std::runtime_error{"zlib init failed"};
    }
    raw_deflate(const raw_deflate&) = delete;
    raw_deflate& operator=(const raw_deflate&) = delete;
    ~raw_deflate() {
        if (direction_ == direction::compress)
            deflateEnd(stream_.get());
        else
            inflateEnd(stream_.get());
    }

    /// The payload of a compressed message carrying `message`.
    std::string compress(std::string_view message) {
        std::string out = run(message, [](z_stream* z) { return deflate(z, Z_SYNC_FLUSH); });
        if (out.empty())
            return std::string(1, '\0'); // nothing to flush: an empty block's start (§7.2.3.6)
        if (out.size() < 4 || out.compare(out.size() - 4, 4, std::string("\0\0\xff\xff", 4)) != 0)
            throw std::runtime_error{"a sync flush did not end with 00 00 FF FF"};
        out.resize(out.size() - 4);
        if (!keep_)
            deflateReset(stream_.get());
        return out;
    }

    /// The message a compressed payload carries.
    std::string decompress(std::string_view payload) {
        std::string in{payload};
        in.append("\0\0\xff\xff", 4);
        std::string out = run(in, [](z_stream* z) {
            const int status = inflate(z, Z_SYNC_FLUSH);
            if (status == Z_STREAM_END)
                inflateReset(z); // a final block; another stream may follow
            else if (status != Z_OK && status != Z_BUF_ERROR)
                throw std::runtime_error{"the server's compressed message does not inflate"};
            return status;
        });
        if (!keep_)
            inflateReset(stream_.get());
        return out;
    }

private:
    template <class Step>
    std::string run(std::string_view in, Step step) {
        z_stream* z = stream_.get();
        z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z->avail_in = static_cast<uInt>(in.size());
        std::string out;
        char chunk[16384];
        do {
            z->next_out = reinterpret_cast<Bytef*>(chunk);
            z->avail_out = sizeof chunk;
            step(z);
            out.append(chunk, sizeof chunk - z->avail_out);
        } while (z->avail_out == 0 || z->avail_in > 0);
        return out;
    }

    std::unique_ptr<z_stream> stream_;
    direction direction_;
    bool keep_;
};

} // namespace test
