// wschat — corking: the flushes a handler causes are made together, in the order their
// first frames were queued, by one handler posted when it ends.
#pragma once

#include <wschat/detail/config.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

WSCHAT_BEGIN_NAMESPACE(ws)

/// A cork batches the flushes of the sends made while it lives on the calling thread.
///
/// While a `cork` lives on a thread, a connection that queues its first frame asks the
/// cork to flush it, rather than posting a flush of its own to the event loop. When the
/// outermost cork ends it posts one handler that flushes them all, in the order their
/// first frames were queued.
///
/// Handlers already run corked (the server corks every read and its heartbeat sweep); cork
/// your own code that sends to many connections from elsewhere, a timer or another thread:
///
/// ```cpp
/// {
///     ws::cork batch{server.get_executor()};
///     for (const auto& conn : players)
///         conn->send(state_frame); // flushed together when `batch` ends
/// }
/// ```
///
/// One message broadcast to N members then costs one trip through the scheduler's queue
/// instead of N, and the members are written in room order, the sender's own copy first,
/// so a sender waiting for it can send again while the rest are written.
///
/// The batch waits for the event loop to poll for I/O once more before it flushes: the
/// messages every sender's read brings in that turn then join it, one gather write per
/// member carries them all, and none of them waits behind a whole pass of writes for the
/// batch after.
///
/// A large batch is flushed `flushes_per_turn` members at a time, the event loop polling
/// for I/O in between. A message read meanwhile joins the queues of the members not yet
/// written, so they carry it in this pass rather than the next: under a load that keeps
/// the server busy, a message waits for at most one pass of writes, not for the rest of
/// the current pass and then the next.
///
/// Thread safety: a cork belongs to the thread that made it and must end on that thread
/// (make it a local variable); corks on different threads are independent.
///
/// `cork` posts to an io_context's executor (`io.get_executor()`, `server.get_executor()`);
/// `basic_cork<Executor>` to any other (a user transport's), and corks of both kinds nest.
template <class Executor>
class basic_cork;

/// What every cork shares, whatever its executor: the thread's batch of deferred flushes.
class cork_batch {
public:
    /// Flushes `target` (a connection, type-erased): what `defer` is given.
    using flush_function = void (*)(const std::shared_ptr<void>& target);

    /// Defers a flush to the end of the outermost cork on this thread; false when the
    /// thread has no cork (the caller then flushes some other way). Connections call it
    /// when they queue a frame; applications need not.
    static bool defer(std::shared_ptr<void> target, flush_function flush) {
        thread_state& here = state();
        if (!here.innermost)
            return false;
        if (here.deferred.empty()) // sized like the last batch: broadcasts grow it at most once
            here.deferred.reserve(here.last_batch_size);
        here.deferred.push_back({std::move(target), flush});
        return true;
    }

private:
    template <class Executor>
    friend class basic_cork;

    cork_batch() : outer_(std::exchange(state().innermost, this)) {}
    cork_batch(const cork_batch&) = delete;
    cork_batch& operator=(const cork_batch&) = delete;
    ~cork_batch() = default;

    struct deferred_flush {
        std::shared_ptr<void> target;
        flush_function flush;
    };
    using batch_type = std::vector<deferred_flush>;

    struct thread_state {
        cork_batch* innermost = nullptr;
        batch_type deferred;
        // A small flushed batch's storage, reused; a large one's is freed, so that a room
        // of N members does not hold N flushes' worth for good after each broadcast.
        batch_type spare;
        std::size_t last_batch_size = 0;
    };

    /// The largest batch whose storage is kept for the next (entries; 1.5 KiB).
    static constexpr std::size_t kept_batch_capacity = 64;

    /// Members written between two polls for I/O while a batch is flushed.
    static constexpr std::size_t flushes_per_turn = 16;

    static thread_state& state() {
        thread_local thread_state here;
        return here;
    }

    /// Ends this cork; the batch to post when it was the outermost and something was
    /// deferred, else an empty one.
    batch_type end() {
        thread_state& here = state();
        here.innermost = outer_;
        if (outer_ || here.deferred.empty())
            return {};
        here.last_batch_size = here.deferred.size();
        batch_type batch = std::move(here.deferred);
        here.deferred = std::move(here.spare);
        here.deferred.clear();
        return batch;
    }

    /// Flushes the batch's members from `next`, `flushes_per_turn` of them, under a cork of
    /// the caller's (so flushes that queue more frames, a closing member leaving its room,
    /// say, are batched again).
    static void flush_some(batch_type& batch, std::size_t& next) {
        struct on_exit {
            batch_type& batch;
            std::size_t& next;
            bool part_done = false;
            ~on_exit() {
                // A flush that threw (an application handler, on_close) must not strand the
                // rest: they go to the next batch, which the caller's cork posts.
                for (; !part_done && next < batch.size(); ++next)
                    state().deferred.push_back(std::move(batch[next]));
                if (next == batch.size() && batch.capacity() <= kept_batch_capacity) {
                    batch.clear();
                    state().spare = std::move(batch);
                }
            }
        } progress{batch, next};
        const std::size_t end = std::min(batch.size(), next + flushes_per_turn);
        while (next < end) {
            const deferred_flush& current = batch[next++];
            current.flush(current.target);
        }
        progress.part_done = true;
    }

    cork_batch* outer_;
};

template <class Executor>
class basic_cork : public cork_batch {
public:
    /// Starts a batch; the flushes will be posted to `executor` (the outermost cork's is
    /// used when corks nest).
    explicit basic_cork(Executor executor) : executor_(std::move(executor)) {}
    ~basic_cork() {
        if (batch_type batch = end(); !batch.empty())
            asio::post(executor_, batch_handler{std::move(batch), executor_});
    }

private:
    /// Posted by the outermost cork: the first run only goes to the back of the queue again,
    /// behind the reads the next poll brings; later runs flush the batch a part at a time.
    struct batch_handler {
        batch_type batch;
        Executor executor;
        std::size_t next = 0; // the first member not yet flushed
        bool polled = false;

        void operator()() {
            if (std::exchange(polled, true)) {
                basic_cork nested{executor};
                flush_some(batch, next);
            }
            if (next < batch.size()) {
                Executor to = executor;
                asio::post(to, std::move(*this));
            }
        }
    };

    Executor executor_;
};

/// The cork of an io_context's executor: `ws::cork batch{server.get_executor()};`.
using cork = basic_cork<asio::io_context::executor_type>;

WSCHAT_END_NAMESPACE
