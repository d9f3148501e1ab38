// wschat — RESP without I/O: hiredis' reply reader fed with bytes, and its command formatter.
#pragma once

#include <wschat/chat/detail/redis_reply.hpp>
#include <wschat/chat/redis_error.hpp>
#include <wschat/detail/config.hpp>

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdlib>
#include <deque>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(chat)

namespace detail {

/// Limits on what a reader accepts, so a broken or hostile server cannot make it allocate
/// without bound (hiredis 0.14 itself has none).
struct redis_reader_limits {
    /// Bytes buffered for one reply still incomplete. 512 MiB is Redis' own largest bulk
    /// string (proto-max-bulk-len), so no reply a real server sends is refused.
    std::size_t max_buffered = std::size_t{512} << 20;
    /// Elements of one array. Redis never sends more than it holds, and a count of billions
    /// would otherwise be allocated before a single element arrived.
    std::size_t max_elements = std::size_t{1} << 24;
};

/// Parses RESP2 replies from bytes fed in any pieces (sans-I/O): `feed` what the socket read,
/// then call `next` until it returns nothing. hiredis' `redisReader` does the parsing; its
/// object hooks build `redis_reply` values in place, so a reply is copied once, from the
/// buffer into its owning strings.
///
/// After a protocol error the reader stays failed (the byte stream cannot be resynchronised):
/// it takes no more bytes, and `error()` says `redis_errc::protocol`, with hiredis'
/// description in `error_text()`. Not thread-safe; neither copyable nor movable (hiredis keeps a
/// pointer to the limits): hold it in a `std::optional` or by pointer to start afresh.
class redis_reader {
public:
    explicit redis_reader(redis_reader_limits limits = {})
        : limits_(limits), reader_(redisReaderCreateWithFunctions(&functions())) {
        if (!reader_)
            throw std::bad_alloc{};
        reader_->privdata = &limits_;
    }

    redis_reader(const redis_reader&) = delete;
    redis_reader& operator=(const redis_reader&) = delete;

    /// Parses `bytes` as far as they go; the replies they complete are then returned by
    /// `next`. Fails (and stays failed) on bytes that are not RESP, or when an incomplete
    /// reply passes `max_buffered`.
    void feed(std::string_view bytes) {
        // hiredis 0.14 moves its unread bytes to the front of its buffer each time it has
        // consumed 1 KiB, so one large feed of many small replies copies quadratically (60% of
        // the reader's instructions for 64 KiB of pub/sub messages, measured with callgrind).
        // Fed in small slices, with complete replies taken out between them, its buffer
        // stays small and the copying negligible.
        constexpr std::size_t slice = 4096;
        while (!failed_ && !bytes.empty()) {
            const std::string_view piece = bytes.substr(0, slice);
            bytes.remove_prefix(piece.size());
            if (redisReaderFeed(reader_.get(), piece.data(), piece.size()) != REDIS_OK) {
                fail(reader_->errstr);
                return;
            }
            take_replies();
            if (!failed_ && buffered() > limits_.max_buffered)
                fail("reply larger than the reader's limit");
        }
    }

    /// The next complete reply, or nothing when more bytes are needed. Replies completed
    /// before a protocol error are still returned.
    std::optional<redis_reply> next() {
        if (ready_.empty())
            return std::nullopt;
        redis_reply reply = std::move(ready_.front());
        ready_.pop_front();
        return reply;
    }

    /// `redis_errc::protocol` once the bytes were not RESP (or passed a limit); empty before.
    std::error_code error() const noexcept {
        return failed_ ? make_error_code(redis_errc::protocol) : std::error_code{};
    }
    /// What was wrong, in hiredis' words ("Protocol error, got \"x\" as reply type byte").
    const std::string& error_text() const noexcept { return error_text_; }

    /// Bytes fed and not yet part of a complete reply.
    std::size_t buffered() const noexcept { return reader_->len - reader_->pos; }

private:
    struct reader_deleter {
        void operator()(redisReader* r) const noexcept { redisReaderFree(r); }
    };

    void fail(const char* why) {
        failed_ = true;
        error_text_ = why;
    }

    void take_replies() {
        for (;;) {
            void* raw = nullptr;
            if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
                fail(reader_->errstr);
                return;
            }
            if (!raw)
                return;
            std::unique_ptr<redis_reply> reply{static_cast<redis_reply*>(raw)};
            ready_.push_back(std::move(*reply));
        }
    }

    // hiredis calls these C hooks for each value it has parsed. A value inside an array is
    // constructed in the parent's element slot (sized once by createArray, so the pointers
    // handed back to hiredis stay valid); only the root is allocated. No exception may cross
    // the C code: any failure returns null, which hiredis reports as an error.
    static redis_reply* slot(const redisReadTask* task) noexcept {
        if (!task->parent)
            return new (std::nothrow) redis_reply{};
        auto* parent = static_cast<redis_reply*>(task->parent->obj);
        return &parent->elements[static_cast<std::size_t>(task->idx)];
    }

    static void* create_string(const redisReadTask* task, char* data, std::size_t size) noexcept {
        redis_reply* r = slot(task);
        if (!r)
            return nullptr;
        r->type = task->type == REDIS_REPLY_ERROR    ? redis_reply::kind::error
                  : task->type == REDIS_REPLY_STATUS ? redis_reply::kind::status
                                                     : redis_reply::kind::string;
        try {
            r->str.assign(data, size);
        } catch (...) {
            return release(task, r);
        }
        return r;
    }

    static void* create_array(const redisReadTask* task, int count) noexcept {
        const auto* limits = static_cast<const redis_reader_limits*>(task->privdata);
        if (count < 0 || (limits && static_cast<std::size_t>(count) > limits->max_elements))
            return nullptr;
        redis_reply* r = slot(task);
        if (!r)
            return nullptr;
        r->type = redis_reply::kind::array;
        try {
            r->elements.resize(static_cast<std::size_t>(count));
        } catch (...) {
            return release(task, r);
        }
        return r;
    }

    static void* create_integer(const redisReadTask* task, long long value) noexcept {
        redis_reply* r = slot(task);
        if (r) {
            r->type = redis_reply::kind::integer;
            r->integer = value;
        }
        return r;
    }

    static void* create_nil(const redisReadTask* task) noexcept { return slot(task); }

    // A root that could not be completed is freed here; an element belongs to its parent,
    // which hiredis frees (through free_object) with the whole reply.
    static void* release(const redisReadTask* task, redis_reply* r) noexcept {
        if (!task->parent)
            delete r;
        return nullptr;
    }

    static void free_object(void* reply) noexcept { delete static_cast<redis_reply*>(reply); }

    static redisReplyObjectFunctions& functions() noexcept {
        // hiredis keeps the pointer, not a copy: static storage.
        static redisReplyObjectFunctions fn{&create_string, &create_array, &create_integer,
                                            &create_nil, &free_object};
        return fn;
    }

    redis_reader_limits limits_;
    std::unique_ptr<redisReader, reader_deleter> reader_;
    std::deque<redis_reply> ready_; // complete, not yet taken by next()
    bool failed_ = false;
    std::string error_text_;
};

/// Appends the RESP encoding of the command `args` (binary-safe) to `out`, formatted by
/// hiredis' `redisFormatCommandArgv`. `Range` is any range of things convertible to
/// `std::string_view`. Returns false (and appends nothing) when `args` is empty or hiredis
/// cannot allocate.
template <class Range>
bool append_command(std::string& out, const Range& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& arg : args) {
        const std::string_view view{arg};
        argv.push_back(view.data());
        lengths.push_back(view.size());
    }
    if (argv.empty() || argv.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        return false;
    char* formatted = nullptr;
    const int size = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(),
                                            lengths.data());
    if (size < 0 || !formatted)
        return false;
    out.append(formatted, static_cast<std::size_t>(size));
    redisFreeCommand(formatted);
    return true;
}

} // namespace detail

WSCHAT_END_NAMESPACE
