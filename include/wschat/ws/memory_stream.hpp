// wschat — an in-memory byte stream pair, and `memory_transport`: a server with no sockets, so
// tests drive the handshake, framing, closing and slow readers byte by byte on one thread.
#pragma once

#include <wschat/detail/config.hpp>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/execution_context.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

class memory_stream;

namespace detail {

/// A completion handler waiting inside a memory stream or listener.
class memory_pending {
public:
    virtual ~memory_pending() = default;
};

using memory_pending_list = std::vector<std::unique_ptr<memory_pending>>;

class memory_service;

/// What holds waiting handlers: registered with its io_context's `memory_service`, which
/// takes them away when the io_context shuts down.
class memory_waiters {
public:
    memory_waiters(const memory_waiters&) = delete;
    memory_waiters& operator=(const memory_waiters&) = delete;

    /// Moves every waiting handler into `out`; from then on new ones are dropped unrun.
    virtual void abandon(memory_pending_list& out) = 0;

protected:
    memory_waiters() = default;
    ~memory_waiters();
    /// Registers with the service of `io`, once; false when `io` has already shut down (the
    /// caller then keeps no handler waiting).
    bool register_with(asio::io_context& io);

private:
    friend class memory_service;
    memory_service* service_ = nullptr; // cleared by the service when it goes first
};

/// A waiting handler often owns, through what it captured, the object that owns the stream
/// it waits on. With sockets the io_context's reactor breaks that cycle when it shuts down;
/// for memory streams this service does: it destroys what still waits, unrun, as Asio does
/// with the operations of a destroyed io_context.
class memory_service final : public asio::execution_context::service {
public:
    /// The service's identity for `asio::use_service`.
    static inline asio::execution_context::id id;

    explicit memory_service(asio::execution_context& context)
        : asio::execution_context::service(context) {}

    ~memory_service() override {
        std::lock_guard<std::mutex> lock{mutex_};
        for (memory_waiters* waiters : registered_)
            waiters->service_ = nullptr;
    }

    /// Adds `waiters`; false when the io_context has already shut down.
    bool add(memory_waiters& waiters) {
        std::lock_guard<std::mutex> lock{mutex_};
        waiters.service_ = this;
        registered_.push_back(&waiters);
        return !shut_down_;
    }

    void remove(memory_waiters& waiters) {
        std::lock_guard<std::mutex> lock{mutex_};
        registered_.erase(std::remove(registered_.begin(), registered_.end(), &waiters),
                          registered_.end());
    }

private:
    void shutdown() override {
        memory_pending_list dropped; // destroyed after the lock: a handler may own the last
                                     // end of a stream, whose state then calls remove()
        std::lock_guard<std::mutex> lock{mutex_};
        shut_down_ = true;
        for (memory_waiters* waiters : registered_)
            waiters->abandon(dropped);
    }

    std::mutex mutex_;
    std::vector<memory_waiters*> registered_;
    bool shut_down_ = false;
};

inline memory_waiters::~memory_waiters() {
    if (service_)
        service_->remove(*this);
}

inline bool memory_waiters::register_with(asio::io_context& io) {
    if (service_)
        return true;
    return asio::use_service<memory_service>(static_cast<asio::execution_context&>(io)).add(*this);
}

/// A read or write waiting in a memory stream, with its buffers and handler.
class memory_io_op : public memory_pending {
public:
    /// Reads: moves up to `limit` bytes from `bytes` (from `at`) into the buffers. Writes:
    /// appends up to `limit` bytes of the buffers to `bytes`. Returns the bytes moved.
    virtual std::size_t transfer(std::string& bytes, std::size_t at, std::size_t limit) = 0;
    /// Posts the handler, with the result, to the handler's executor.
    virtual void complete(std::error_code ec, std::size_t size) = 0;
};

template <class Handler, class Buffers, bool IsRead>
class memory_io_op_impl final : public memory_io_op {
public:
    using io_executor = asio::io_context::executor_type;

    memory_io_op_impl(Handler handler, const Buffers& buffers, const io_executor& io)
        : handler_(std::move(handler)), buffers_(buffers), io_work_(io),
          handler_work_(asio::get_associated_executor(handler_, io)) {}

    std::size_t transfer(std::string& bytes, std::size_t at, std::size_t limit) override {
        if constexpr (IsRead) {
            return asio::buffer_copy(buffers_, asio::buffer(bytes.data() + at, bytes.size() - at),
                                     limit);
        } else {
            const std::size_t size = std::min(asio::buffer_size(buffers_), limit);
            const std::size_t end = bytes.size();
            bytes.resize(end + size);
            return asio::buffer_copy(asio::buffer(&bytes[end], size), buffers_, size);
        }
    }

    void complete(std::error_code ec, std::size_t size) override {
        asio::post(handler_work_.get_executor(),
                   [h = std::move(handler_), ec, size]() mutable { h(ec, size); });
    }

private:
    Handler handler_;
    Buffers buffers_;
    // Outstanding work, as a socket's pending operation counts: run() does not return
    // while a read waits for the peer.
    asio::executor_work_guard<io_executor> io_work_;
    asio::executor_work_guard<asio::associated_executor_t<Handler, io_executor>> handler_work_;
};

/// Operations a call has finished, completed (posted) once the state's lock is released, so
/// that no handler and no destructor of one runs under it.
class memory_completions {
public:
    void add(std::unique_ptr<memory_io_op> op, std::error_code ec, std::size_t size = 0) {
        if (op)
            items_.at(count_++) = {std::move(op), ec, size};
    }
    /// Destroyed, not completed: the io_context has shut down.
    void drop(std::unique_ptr<memory_io_op> op) {
        items_.at(count_++) = {std::move(op), {}, 0, true};
    }

    void run() {
        for (std::size_t i = 0; i < count_; ++i) {
            item& it = items_[i];
            if (!it.dropped)
                it.op->complete(it.ec, it.size);
            it.op.reset();
        }
        count_ = 0;
    }

private:
    struct item {
        std::unique_ptr<memory_io_op> op;
        std::error_code ec;
        std::size_t size = 0;
        bool dropped = false;
    };
    // At most four operations wait on a stream pair: a read and a write per end.
    std::array<item, 4> items_;
    std::size_t count_ = 0;
};

/// One direction of a memory stream: what was written and not yet read, and who waits.
struct memory_pipe {
    static constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

    std::string bytes;
    std::size_t head = 0; // bytes before it were read
    std::size_t read_size = unlimited;
    std::size_t capacity = unlimited;
    bool ended = false; // the writer shut down or closed: EOF once drained
    std::unique_ptr<memory_io_op> reader;
    std::unique_ptr<memory_io_op> writer;

    std::size_t available() const noexcept { return bytes.size() - head; }
    std::size_t room() const noexcept {
        return capacity > available() ? capacity - available() : 0;
    }

    void consume(std::size_t size) {
        head += size;
        if (head == bytes.size()) {
            bytes.clear();
            head = 0;
        } else if (head > 4096 && head * 2 > bytes.size()) {
            bytes.erase(0, head); // reading many small pieces stays linear
            head = 0;
        }
    }

    void discard() {
        bytes.clear();
        head = 0;
    }

    /// After a change: a waiting writer takes the room there is, then a waiting reader the
    /// bytes there are (or the end). A waiting reader means the pipe was empty and a waiting
    /// writer that it was full, so one pass is enough.
    void settle(memory_completions& done) {
        if (writer && room() > 0) {
            const std::size_t size = writer->transfer(bytes, head, room());
            done.add(std::move(writer), {}, size);
        }
        if (reader && available() > 0) {
            const std::size_t size =
                reader->transfer(bytes, head, std::min(available(), read_size));
            consume(size);
            done.add(std::move(reader), {}, size);
        } else if (reader && ended) {
            done.add(std::move(reader), asio::error::eof);
        }
    }
};

/// The state two ends of a memory stream share. End `i` reads `pipes[i]` and writes
/// `pipes[1 - i]`. Everything is guarded by `mutex`.
class memory_state final : public memory_waiters {
public:
    explicit memory_state(asio::io_context& io) : abandoned(!register_with(io)) {}

    void abandon(memory_pending_list& out) override {
        std::lock_guard<std::mutex> lock{mutex};
        abandoned = true;
        for (memory_pipe& pipe : pipes)
            for (auto* op : {&pipe.reader, &pipe.writer})
                if (*op)
                    out.push_back(std::move(*op));
    }

    struct end_state {
        bool closed = false;
        bool shut_down_send = false;
        std::error_code failure; // injected with memory_stream::fail
    };

    std::mutex mutex;
    std::array<memory_pipe, 2> pipes;
    std::array<end_state, 2> ends;
    bool abandoned; // the io_context has shut down: nothing may wait any more
};

} // namespace detail

/// One end of an in-memory, bidirectional byte stream: what one end writes, the other
/// reads, in order, with no socket and no thread.
///
/// An Asio AsyncReadStream and AsyncWriteStream (`async_read_some`, `async_write_some`, any
/// completion token), and a SyncWriteStream. Completions are posted to the handler's
/// associated executor, never run inside the initiating call, and a waiting operation
/// counts as outstanding work of the io_context, as a socket's does. After the peer closes
/// (or shuts down its sending side), reads return what it wrote and then `asio::error::eof`;
/// `close()` completes this end's waiting operations with `asio::error::operation_aborted`.
/// Operations still waiting when the io_context is destroyed are destroyed unrun.
///
/// Made in connected pairs by `make_memory_stream_pair`, or by `memory_transport` (a server's
/// end and a test's end). Knobs for tests: `read_size` and `peer_read_size` (split a byte
/// stream at every position), `input_capacity` (a reader that stops reading, so the writer
/// waits), `read_available` (what the peer wrote so far, synchronously) and `fail` (a
/// network error).
///
/// ```cpp
/// auto [a, b] = ws::make_memory_stream_pair(io);
/// asio::async_write(a, asio::buffer("hello", 5), [](std::error_code, std::size_t) {});
/// io.poll();
/// assert(b.read_available() == "hello");
/// ```
///
/// Thread safety: the two ends may be used from different threads; one end's members may be
/// called from any thread, with at most one read and one write in flight per end (as with a
/// socket: a second one completes with `asio::error::in_progress`).
class memory_stream {
public:
    /// The executor of the io_context the stream belongs to (the io_context's own executor
    /// type, as `ws::io_socket` uses).
    using executor_type = asio::io_context::executor_type;

    /// An end with no peer on the io_context of `executor`: every operation fails with
    /// `asio::error::not_connected`.
    explicit memory_stream(const executor_type& executor) : executor_(executor) {}
    /// An end with no peer on `io`, as above.
    explicit memory_stream(asio::io_context& io) : executor_(io.get_executor()) {}

    memory_stream(const memory_stream&) = delete;
    memory_stream& operator=(const memory_stream&) = delete;
    /// Takes over `other`'s end; `other` is left with no peer.
    memory_stream(memory_stream&& other) noexcept
        : executor_(other.executor_), state_(std::move(other.state_)), side_(other.side_) {}
    /// Closes this end, then takes over `other`'s.
    memory_stream& operator=(memory_stream&& other) noexcept {
        if (this != &other) {
            close();
            executor_ = other.executor_;
            state_ = std::move(other.state_);
            side_ = other.side_;
        }
        return *this;
    }
    /// Closes this end (see `close`).
    ~memory_stream() { close(); }

    /// The executor of the io_context the stream belongs to.
    executor_type get_executor() const noexcept { return executor_; }

    /// Reads what has arrived, at most `read_size` bytes, into `buffers`; waits when nothing
    /// has. Completes with `(error_code, bytes)`: `eof` once the peer has ended and all it
    /// wrote is read, `operation_aborted` when this end closes meanwhile, `bad_descriptor`
    /// on a closed end, the injected error after `fail`; buffers of size zero complete at
    /// once with 0 bytes.
    template <class MutableBufferSequence, class ReadToken>
    auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
        return asio::async_initiate<ReadToken, void(std::error_code, std::size_t)>(
            [this](auto handler, const MutableBufferSequence& into) {
                this->template start<true>(std::move(handler), into);
            },
            token, buffers);
    }

    /// Writes as much of `buffers` as the peer's input has room for (all of it, unless
    /// `input_capacity` was set), waiting while it has none. Completes with
    /// `(error_code, bytes)`: `connection_reset` when the peer has closed, `broken_pipe`
    /// after `shutdown_send`, `operation_aborted`, `bad_descriptor` and injected errors as
    /// for reads.
    template <class ConstBufferSequence, class WriteToken>
    auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
        return asio::async_initiate<WriteToken, void(std::error_code, std::size_t)>(
            [this](auto handler, const ConstBufferSequence& from) {
                this->template start<false>(std::move(handler), from);
            },
            token, buffers);
    }

    /// Writes at once as much of `buffers` as the peer's input has room for; sets `ec` as
    /// `async_write_some` would complete, or to `would_block` when there is no room.
    template <class ConstBufferSequence>
    std::size_t write_some(const ConstBufferSequence& buffers, std::error_code& ec) {
        ec = {};
        if (!state_) {
            ec = asio::error::not_connected;
            return 0;
        }
        detail::memory_completions done;
        std::unique_lock<std::mutex> lock{state_->mutex};
        detail::memory_pipe& pipe = output();
        std::size_t size = 0;
        ec = write_error();
        if (!ec && pipe.room() == 0 && asio::buffer_size(buffers) > 0)
            ec = asio::error::would_block;
        if (!ec && asio::buffer_size(buffers) > 0) {
            const std::size_t end = pipe.bytes.size();
            size = std::min(asio::buffer_size(buffers), pipe.room());
            pipe.bytes.resize(end + size);
            asio::buffer_copy(asio::buffer(&pipe.bytes[end], size), buffers, size);
            pipe.settle(done);
        }
        lock.unlock();
        done.run();
        return size;
    }

    /// As above; throws `std::system_error` instead of setting an error code.
    template <class ConstBufferSequence>
    std::size_t write_some(const ConstBufferSequence& buffers) {
        std::error_code ec;
        const std::size_t size = write_some(buffers, ec);
        if (ec)
            throw std::system_error{ec, "ws::memory_stream::write_some"};
        return size;
    }

    /// Takes everything the peer has written and this end has not read yet, whatever
    /// `read_size` says; empty when nothing waits (or the end is closed). A peer's write
    /// that waited for room then proceeds.
    std::string read_available() {
        if (!state_)
            return {};
        detail::memory_completions done;
        std::unique_lock<std::mutex> lock{state_->mutex};
        detail::memory_pipe& pipe = input();
        std::string out = pipe.bytes.substr(pipe.head);
        pipe.discard();
        pipe.settle(done);
        lock.unlock();
        done.run();
        return out;
    }

    /// True once the peer has ended (closed, or shut down its sending side) and this end has
    /// read all it wrote: a read would complete with `eof`. False for an end with no peer.
    bool eof() const {
        if (!state_)
            return false;
        std::lock_guard<std::mutex> lock{state_->mutex};
        return input().ended && input().available() == 0;
    }

    /// True while this end is connected and neither closed nor failed.
    bool is_open() const {
        if (!state_)
            return false;
        std::lock_guard<std::mutex> lock{state_->mutex};
        return !own().closed && !own().failure;
    }

    /// Each read of this end returns at most `size` bytes (default: all that has arrived),
    /// so that a test can split what the peer writes at every position. Throws
    /// `std::invalid_argument` for 0.
    void read_size(std::size_t size) { configure(side_, &detail::memory_pipe::read_size, size); }
    /// Each read of the peer's end returns at most `size` bytes: as `read_size`, set from
    /// this end (the end a test holds). Throws `std::invalid_argument` for 0.
    void peer_read_size(std::size_t size) {
        configure(1 - side_, &detail::memory_pipe::read_size, size);
    }
    /// At most `size` bytes wait for this end to read them (default: no bound); past it the
    /// peer's writes wait, as a socket's do when the receiver stops reading. Throws
    /// `std::invalid_argument` for 0.
    void input_capacity(std::size_t size) {
        configure(side_, &detail::memory_pipe::capacity, size);
    }

    /// Ends this end's sending direction, as TCP's FIN: the peer reads `eof` after what was
    /// written; this end still reads. A waiting write completes with `broken_pipe`.
    void shutdown_send() noexcept {
        if (!state_)
            return;
        detail::memory_completions done;
        std::unique_lock<std::mutex> lock{state_->mutex};
        if (!own().closed) {
            own().shut_down_send = true;
            end_output(asio::error::broken_pipe, done);
        }
        lock.unlock();
        done.run();
    }

    /// Closes this end: its waiting operations complete with `operation_aborted`, what it
    /// had not read is discarded, the peer reads `eof` after what this end wrote, and the
    /// peer's writes fail with `connection_reset`. Closing again does nothing.
    void close() noexcept {
        if (!state_)
            return;
        detail::memory_completions done;
        std::unique_lock<std::mutex> lock{state_->mutex};
        if (!own().closed) {
            own().closed = true;
            detail::memory_pipe& in = input();
            done.add(std::move(in.reader), asio::error::operation_aborted);
            done.add(std::move(in.writer), asio::error::connection_reset);
            in.discard();
            in.ended = true;
            end_output(asio::error::operation_aborted, done);
        }
        lock.unlock();
        done.run();
    }

    /// Injects a network error on this end: its waiting operations complete with `ec`, and
    /// so do all later ones (the peer is not told, as with a cable pulled on one side).
    void fail(std::error_code ec) {
        if (!state_)
            return;
        detail::memory_completions done;
        std::unique_lock<std::mutex> lock{state_->mutex};
        own().failure = ec;
        done.add(std::move(input().reader), ec);
        done.add(std::move(output().writer), ec);
        lock.unlock();
        done.run();
    }

private:
    friend std::pair<memory_stream, memory_stream> make_memory_stream_pair(asio::io_context& io);

    memory_stream(const executor_type& executor, std::shared_ptr<detail::memory_state> state,
                  int side)
        : executor_(executor), state_(std::move(state)), side_(side) {}

    // The parts of the state this end uses (with the lock held).
    detail::memory_pipe& input() const { return state_->pipes[side_]; }
    detail::memory_pipe& output() const { return state_->pipes[1 - side_]; }
    detail::memory_state::end_state& own() const { return state_->ends[side_]; }

    std::error_code common_error() const {
        if (own().closed)
            return asio::error::bad_descriptor;
        return own().failure;
    }

    std::error_code write_error() const {
        if (const std::error_code ec = common_error())
            return ec;
        if (own().shut_down_send)
            return asio::error::broken_pipe;
        if (state_->ends[1 - side_].closed)
            return asio::error::connection_reset;
        return {};
    }

    /// Ends what this end sends: a waiting write completes with `why`, the peer's read sees
    /// the end.
    void end_output(std::error_code why, detail::memory_completions& done) {
        detail::memory_pipe& out = output();
        done.add(std::move(out.writer), why);
        out.ended = true;
        out.settle(done);
    }

    void configure(int side, std::size_t detail::memory_pipe::*setting, std::size_t size) {
        if (size == 0)
            throw std::invalid_argument{"ws::memory_stream: a read size or capacity of 0"};
        if (!state_)
            return;
        detail::memory_completions done;
        std::unique_lock<std::mutex> lock{state_->mutex};
        detail::memory_pipe& pipe = state_->pipes[side];
        pipe.*setting = size;
        pipe.settle(done); // a larger capacity lets a waiting writer go on
        lock.unlock();
        done.run();
    }

    template <bool IsRead, class Handler, class Buffers>
    void start(Handler handler, const Buffers& buffers) {
        using op_type = detail::memory_io_op_impl<std::decay_t<Handler>, Buffers, IsRead>;
        std::unique_ptr<detail::memory_io_op> op =
            std::make_unique<op_type>(std::move(handler), buffers, executor_);
        if (!state_)
            return op->complete(asio::error::not_connected, 0);
        detail::memory_completions done;
        std::unique_lock<std::mutex> lock{state_->mutex};
        detail::memory_pipe& pipe = IsRead ? input() : output();
        std::unique_ptr<detail::memory_io_op>& slot = IsRead ? pipe.reader : pipe.writer;
        const std::error_code ec = IsRead ? common_error() : write_error();
        if (ec)
            done.add(std::move(op), ec);
        else if (slot)
            done.add(std::move(op), asio::error::in_progress);
        else if (asio::buffer_size(buffers) == 0)
            done.add(std::move(op), {});
        else if (state_->abandoned)
            done.drop(std::move(op));
        else {
            slot = std::move(op);
            pipe.settle(done);
        }
        lock.unlock();
        done.run();
    }

    executor_type executor_;
    std::shared_ptr<detail::memory_state> state_; // null: no peer
    int side_ = 0;                                // which end of state_ this is
};

/// Makes two connected ends of a memory stream on `io`: what one writes, the other reads.
inline std::pair<memory_stream, memory_stream> make_memory_stream_pair(asio::io_context& io) {
    auto state = std::make_shared<detail::memory_state>(io);
    return {memory_stream{io.get_executor(), state, 0}, memory_stream{io.get_executor(), state, 1}};
}

namespace detail {

/// An accept waiting in a memory listener.
class memory_accept_op : public memory_pending {
public:
    /// Posts the handler with `(ec, stream)` to the handler's executor.
    virtual void complete(std::error_code ec, memory_stream stream) = 0;
};

template <class Handler>
class memory_accept_op_impl final : public memory_accept_op {
public:
    using io_executor = asio::io_context::executor_type;

    memory_accept_op_impl(Handler handler, const io_executor& io)
        : handler_(std::move(handler)), io_work_(io),
          handler_work_(asio::get_associated_executor(handler_, io)) {}

    void complete(std::error_code ec, memory_stream stream) override {
        asio::post(handler_work_.get_executor(),
                   [h = std::move(handler_), ec, s = std::move(stream)]() mutable {
                       h(ec, std::move(s));
                   });
    }

private:
    Handler handler_;
    asio::executor_work_guard<io_executor> io_work_;
    asio::executor_work_guard<asio::associated_executor_t<Handler, io_executor>> handler_work_;
};

/// Where a `memory_transport`'s connections wait to be accepted: shared by the copies of
/// the transport (the server's and the test's).
class memory_listener final : public memory_waiters {
public:
    explicit memory_listener(asio::io_context& io) : io_(io) {}

    void abandon(memory_pending_list& out) override {
        std::lock_guard<std::mutex> lock{mutex_};
        abandoned_ = true;
        if (waiting_)
            out.push_back(std::move(waiting_));
    }

    asio::io_context& context() const noexcept { return io_; }

    /// Starts listening: `address_in_use` when already listening, `invalid_argument` when
    /// `io` is not the listener's io_context.
    std::error_code open(asio::io_context& io) {
        std::lock_guard<std::mutex> lock{mutex_};
        if (&io != &io_)
            return asio::error::invalid_argument;
        if (listening_)
            return asio::error::address_in_use;
        listening_ = true;
        abandoned_ = !register_with(io_);
        return {};
    }

    /// A new connection: the server's end goes to the waiting accept (or waits for one) and
    /// the client's is returned; `connection_refused` while not listening.
    memory_stream connect(std::error_code& ec) {
        std::unique_lock<std::mutex> lock{mutex_};
        if (!listening_) {
            ec = asio::error::connection_refused;
            return memory_stream{io_};
        }
        ec = {};
        auto [client, server] = make_memory_stream_pair(io_);
        if (waiting_) {
            std::unique_ptr<memory_accept_op> accept = std::move(waiting_);
            lock.unlock();
            accept->complete({}, std::move(server));
        } else {
            backlog_.push_back(std::move(server));
        }
        return std::move(client);
    }

    template <class Handler>
    void async_accept(Handler&& handler) {
        std::unique_ptr<memory_accept_op> op =
            std::make_unique<memory_accept_op_impl<std::decay_t<Handler>>>(
                std::forward<Handler>(handler), io_.get_executor());
        std::unique_lock<std::mutex> lock{mutex_};
        if (!listening_ || waiting_) {
            const std::error_code ec =
                listening_ ? asio::error::in_progress : asio::error::operation_aborted;
            lock.unlock();
            return op->complete(ec, memory_stream{io_});
        }
        if (!backlog_.empty()) {
            memory_stream next = std::move(backlog_.front());
            backlog_.pop_front();
            lock.unlock();
            return op->complete({}, std::move(next));
        }
        if (!abandoned_)
            waiting_ = std::move(op);
        lock.unlock(); // an op the shut-down io_context cannot run is destroyed here, unrun
    }

    /// Stops listening: a waiting accept completes with `operation_aborted`, and the
    /// connections not yet accepted are closed (their clients read `eof`).
    void close() noexcept {
        std::unique_lock<std::mutex> lock{mutex_};
        listening_ = false;
        std::unique_ptr<memory_accept_op> accept = std::move(waiting_);
        const std::deque<memory_stream> unaccepted = std::move(backlog_);
        backlog_.clear();
        lock.unlock();
        if (accept)
            accept->complete(asio::error::operation_aborted, memory_stream{io_});
    }

private:
    asio::io_context& io_;
    mutable std::mutex mutex_;
    bool listening_ = false;
    bool abandoned_ = false; // the io_context has shut down: nothing may wait any more
    std::unique_ptr<memory_accept_op> waiting_;
    std::deque<memory_stream> backlog_; // connected, not yet accepted
};

} // namespace detail

/// A Transport (see `<wschat/ws/transport.hpp>`) over memory streams: with it,
/// `ws::server<ws::memory_transport>` runs with no socket, so tests drive it byte by byte on
/// the test's thread, with `io.poll()`.
///
/// The test keeps a copy of the transport it gives the server (the copies share one
/// listener) and calls `connect()`, which returns the client's end of a new stream whose
/// other end the server accepts. `listen` ignores the address, and listening twice at once
/// fails with `address_in_use`; `connect` while nothing listens fails with
/// `connection_refused`. Every peer's `remote_address()` is `"memory"`.
///
/// ```cpp
/// asio::io_context io;
/// ws::memory_transport transport{io};
/// ws::server<ws::memory_transport> server{io, {}, transport};
/// ws::memory_stream client = transport.connect();
/// client.write_some(asio::buffer(upgrade_request));
/// io.poll();
/// std::string response = client.read_available(); // "HTTP/1.1 101 Switching Protocols..."
/// ```
///
/// Thread safety: copies may be used from any thread.
class memory_transport {
public:
    /// The stream a connection reads and writes: the server's end of a memory stream.
    using stream_type = memory_stream;

    /// The listening end, held by the server: constructible from the io_context (not yet
    /// listening) and assigned from `listen`. Destroying or closing it stops the listening.
    class acceptor_type {
    public:
        /// What `local_endpoint` returns: a name, as a memory stream has no address.
        using endpoint_type = std::string;

        /// Not listening.
        explicit acceptor_type(asio::io_context&) {}
        /// Takes over `other`'s listening; `other` no longer listens.
        acceptor_type(acceptor_type&&) noexcept = default;
        /// Stops this acceptor's listening, then takes over `other`'s.
        acceptor_type& operator=(acceptor_type&& other) noexcept {
            if (this != &other) {
                stop();
                listener_ = std::move(other.listener_);
            }
            return *this;
        }
        acceptor_type(const acceptor_type&) = delete;
        acceptor_type& operator=(const acceptor_type&) = delete;
        /// Stops listening, if this acceptor listens.
        ~acceptor_type() { stop(); }

        /// `"memory"` while listening, empty otherwise.
        endpoint_type local_endpoint(std::error_code& ec) const {
            ec = {};
            return listener_ ? "memory" : "";
        }

    private:
        friend class memory_transport;
        void stop() noexcept {
            if (listener_)
                std::exchange(listener_, nullptr)->close();
        }
        std::shared_ptr<detail::memory_listener> listener_; // set while listening
    };

    /// A transport whose streams belong to `io` (the io_context the server will run on).
    explicit memory_transport(asio::io_context& io)
        : listener_(std::make_shared<detail::memory_listener>(io)) {}

    /// Connects to the server: returns the client's end of a new stream, whose server end
    /// the server's next accept receives (connections wait, in order, until accepted).
    /// Sets `ec` to `connection_refused` (and returns an end with no peer) while no server
    /// listens.
    memory_stream connect(std::error_code& ec) const { return listener_->connect(ec); }
    /// As above; throws `std::system_error` instead of setting an error code.
    memory_stream connect() const {
        std::error_code ec;
        memory_stream client = connect(ec);
        if (ec)
            throw std::system_error{ec, "ws::memory_transport::connect"};
        return client;
    }

    /// Starts listening (`Address`, whatever it is, is not used): `address_in_use` when a
    /// server already listens on this transport, `invalid_argument` when `io` is not the
    /// transport's io_context.
    template <class Address>
    acceptor_type listen(asio::io_context& io, const Address&, std::error_code& ec) const {
        acceptor_type acceptor{io};
        ec = listener_->open(io);
        if (!ec)
            acceptor.listener_ = listener_;
        return acceptor;
    }

    /// Accepts the next connection: `handler(std::error_code, memory_stream)` on its
    /// associated executor; `operation_aborted` when the acceptor is not listening or stops.
    template <class Handler>
    void async_accept(acceptor_type& acceptor, Handler&& handler) const {
        if (acceptor.listener_)
            return acceptor.listener_->async_accept(std::forward<Handler>(handler));
        asio::io_context& io = listener_->context();
        detail::memory_accept_op_impl<std::decay_t<Handler>> refused{std::forward<Handler>(handler),
                                                                     io.get_executor()};
        refused.complete(asio::error::operation_aborted, memory_stream{io});
    }

    /// Nothing to negotiate below HTTP: completes at once (posted to the handler's
    /// executor).
    template <class Handler>
    void async_handshake(stream_type& stream, Handler&& handler) const {
        auto executor = asio::get_associated_executor(handler, stream.get_executor());
        asio::post(executor,
                   [h = std::forward<Handler>(handler)]() mutable { h(std::error_code{}); });
    }

    /// Ends the server's direction: the client reads `eof` after what was written.
    void shutdown_send(stream_type& stream) const { stream.shutdown_send(); }
    /// Closes the server's end at once.
    void close(stream_type& stream) const noexcept { stream.close(); }
    /// Stops listening; connections not yet accepted are closed.
    void close_acceptor(acceptor_type& acceptor) const noexcept { acceptor.stop(); }
    /// `"memory"`: every peer has the same address.
    std::string remote_address(const stream_type&) const { return "memory"; }

private:
    std::shared_ptr<detail::memory_listener> listener_;
};

WSCHAT_END_NAMESPACE
