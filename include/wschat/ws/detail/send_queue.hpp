// wschat — a connection's send queue: frames queued from any thread, taken and written on the
// connection's strand, bounded against readers too slow for what they are sent.
#pragma once

#include <wschat/detail/config.hpp>
#include <wschat/ws/detail/frame_queue.hpp>
#include <wschat/ws/detail/spin_lock.hpp>
#include <wschat/ws/options.hpp>
#include <wschat/ws/shared_frame.hpp>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>

WSCHAT_BEGIN_NAMESPACE(ws)

namespace detail {

/// The frames waiting for one peer's socket, filled from any thread under a spin lock (see
/// frame_queue for why it allocates neither for an idle peer nor per delivery). Its first
/// `taken_` frames are in the write under way (the socket may hold part of the first); the
/// strand writes them without the lock, so they are never dropped, only written.
///
/// Bounded by `server_options::max_send_queue_bytes`: past it, `overflow_action::close`
/// asks the caller to close the peer (1008) and `drop_oldest` drops the oldest frames not
/// yet taken until it fits.
class send_queue {
public:
    /// What push() did, for the caller to act on outside the lock.
    /// Bit-fields, so that the result travels in one register: three separate flags went
    /// through the stack, and reading them back stalled every delivery.
    struct pushed {
        bool start_flush : 1; ///< the queue was idle: schedule a flush
        bool overflow : 1;    ///< over the bound, to be closed (`overflow_action::close`)
        bool dropped : 1;     ///< over the bound, old frames dropped (a limit hit)
    };

    /// Adds `frame`. `last` (a Close frame or an HTTP answer) closes the queue behind it and
    /// is exempt from the bound, so a close always goes out. Everything else counts, pongs
    /// included: a peer that floods pings and never reads must hit the bound too.
    pushed push(shared_frame&& frame, bool last, const server_options& options) {
        pushed result{false, false, false};
        std::lock_guard<spin_lock> lock{lock_};
        if (closed_)
            return result;
        queued_bytes_ += frame.size();
        frames_.push_back(std::move(frame));
        closed_ = last;
        if (!last && queued_bytes_ > options.max_send_queue_bytes)
            exceed_bound(result, options);
        if (!flushing_)
            flushing_ = result.start_flush = true;
        return result;
    }

    /// Forgets every frame not taken for writing: the peer is being closed as too slow.
    void drop_untaken() {
        std::lock_guard<spin_lock> lock{lock_};
        const auto untaken = frames_.begin() + static_cast<std::ptrdiff_t>(taken_);
        for (auto frame = untaken; frame != frames_.end(); ++frame)
            queued_bytes_ -= frame->size();
        frames_.erase(untaken, frames_.end());
    }

    /// Takes frames for a write: `take(frames, written_of_front)`, called under the lock,
    /// lays out a write of the frames from the front, the first `written_of_front` bytes
    /// of the first already written, and returns how many it took.
    template <class Take>
    void take(Take&& take) {
        std::lock_guard<spin_lock> lock{lock_};
        taken_ = static_cast<std::uint32_t>(take(std::as_const(frames_), written_of_front_));
    }

    /// What written() found.
    struct progress {
        bool write_again = false;        ///< more is queued and the socket was not full
        bool drained_after_last = false; ///< everything up to the last frame is written
    };

    /// `size` bytes of the taken frames went out (`full`: the socket took no more). Drops
    /// the frames they completed; the rest of the taken ones stay taken while the socket is
    /// full. Unless it says to write again, flushing stops until the next push.
    progress written(std::size_t size, bool full) {
        progress result;
        std::lock_guard<spin_lock> lock{lock_};
        queued_bytes_ -= size;
        written_of_front_ += size;
        std::size_t done = 0;
        while (done < taken_ && written_of_front_ >= frames_[done].size())
            written_of_front_ -= frames_[done++].size();
        frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(done));
        taken_ = full ? taken_ - static_cast<std::uint32_t>(done) : 0;
        const bool more = !frames_.empty();
        flushing_ = more;
        result.write_again = more && !full;
        result.drained_after_last = !more && closed_;
        return result;
    }

    /// The connection has ended: empties the queue, which takes nothing more.
    void close() {
        std::lock_guard<spin_lock> lock{lock_};
        closed_ = true;
        frames_.clear();
        taken_ = 0;
        queued_bytes_ = 0;
    }

    /// Bytes queued and not yet written.
    std::size_t queued_bytes() const {
        std::lock_guard<spin_lock> lock{lock_};
        return queued_bytes_;
    }

private:
    /// Past the bound: drops the oldest frames or asks for the close. Kept out of push(), the
    /// path of every delivery, so that push() stays small enough to be inlined.
    [[gnu::cold]] void exceed_bound(pushed& result, const server_options& options) {
        if (options.slow_reader_action == server_options::overflow_action::drop_oldest) {
            drop_oldest_untaken(options.max_send_queue_bytes);
            result.dropped = true;
        } else {
            result.overflow = true;
        }
    }

    /// Drops the oldest frames not yet taken until the queue fits `max_bytes` again. Called
    /// with the lock held.
    void drop_oldest_untaken(std::size_t max_bytes) {
        const auto first = frames_.begin() + static_cast<std::ptrdiff_t>(taken_);
        auto last = first;
        while (last != frames_.end() && queued_bytes_ > max_bytes)
            queued_bytes_ -= (last++)->size();
        frames_.erase(first, last);
    }

    frame_queue frames_;
    std::size_t queued_bytes_ = 0;     // of frames_, less what was written of the first
    std::size_t written_of_front_ = 0; // bytes of frames_[0] already written
    std::uint32_t taken_ = 0;          // frames in the write under way
    mutable spin_lock lock_;           // of everything here
    bool flushing_ = false;            // a flush is posted or a write is in flight
    bool closed_ = false; // a Close frame or HTTP answer was queued, or the socket closed
};

} // namespace detail

WSCHAT_END_NAMESPACE
