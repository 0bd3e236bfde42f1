// ProcessGroup: a Gloo context over TCP, built by rendezvous on a TCPStore, running collectives
// on contiguous phalanx tensors. Collectives run in order on one communication thread per group
// and return a Work handle, so an asynchronous all-reduce overlaps compute on the caller's
// thread. Point-to-point transfers are posted at once and completed on a second thread, so a
// pending recv never blocks a collective queued behind it.
//
// abort(reason) is the way out of a collective that waits on a lost rank (the watchdog calls
// it, dist/watchdog.h): every queued and running operation fails at once with the reason, the
// Gloo connections are closed so the peers fail fast too, later operations raise, and
// shutdown() no longer joins the communication thread (nor frees what it may still touch).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "dist/allreduce_algorithm.h"
#include "dist/reductions.h"
#include "dist/tcp_store.h"
#include "dist/work_queue.h"

namespace gloo {
class Context;
}

namespace phalanx::dist {

struct ProcessGroupOptions {
  std::string address = "127.0.0.1";  // this rank's address for Gloo's listening socket...
  std::string iface;                  // ...or an interface name, which wins when set
  Millis timeout = Millis(60000);     // default per-operation timeout
  // The rendezvous and Gloo's connects must end within this, in total (< 0: `timeout`).
  // init_process_group passes what is left of its timeout after connecting to the store.
  Millis connect_timeout = Millis(-1);
  std::string prefix = "default_pg";  // store namespace of this group
};

class ProcessGroup {
 public:
  // Rendezvous: checks every rank has the same world size (ValueError naming both), then
  // connects the full mesh. Blocks up to options.connect_timeout in total (TimeoutError
  // naming options.timeout, the caller's).
  ProcessGroup(std::shared_ptr<TCPStore> store, int rank, int size, ProcessGroupOptions options);
  ~ProcessGroup();
  // Finishes the queued operations and stops the communication threads; later operations
  // raise. Call it without holding locks a queued operation may need (Python's GIL). After an
  // abort it returns at once: the threads are detached and the Gloo context is deliberately
  // leaked, so a thread still inside Gloo never touches freed memory; the operations' tensors
  // are released on this thread, except the ones a detached thread still uses (kept for good).
  void shutdown();
  // Fails every queued and running operation with Error(reason), now; later operations raise
  // it. Thread-safe, idempotent (the first reason wins).
  void abort(const std::string& reason);
  bool aborted() const;
  bool is_shut_down();
  std::string abort_reason() const;  // empty until aborted
  // How long an operation that failed inside Gloo waits for an abort to explain it (a peer's
  // connection closes before the watchdog hears which rank was lost first); 0 by default.
  void set_failure_grace(Millis grace) { abort_->grace_ms = grace.count(); }

  int rank() const { return rank_; }
  int size() const { return size_; }
  Millis timeout() const { return timeout_; }

  // Millis(-1) means the group's timeout.
  std::shared_ptr<Work> all_reduce(const Tensor& t, ReduceOp op, Millis timeout = Millis(-1),
                                   AllreduceAlgorithm algorithm = AllreduceAlgorithm::Auto);
  std::shared_ptr<Work> broadcast(const Tensor& t, int root, Millis timeout = Millis(-1));
  // outputs: `size` tensors shaped like input, or one tensor with size * input.numel elements.
  std::shared_ptr<Work> all_gather(const std::vector<Tensor>& outputs, const Tensor& input,
                                   Millis timeout = Millis(-1));
  std::shared_ptr<Work> reduce_scatter(const Tensor& output, const std::vector<Tensor>& inputs,
                                       ReduceOp op, Millis timeout = Millis(-1));
  std::shared_ptr<Work> barrier(Millis timeout = Millis(-1));
  std::shared_ptr<Work> send(const Tensor& t, int dst, uint32_t tag = 0,
                             Millis timeout = Millis(-1));
  std::shared_ptr<Work> recv(const Tensor& t, int src, uint32_t tag = 0,
                             Millis timeout = Millis(-1));

 private:
  Millis op_timeout(Millis t) const { return t.count() < 0 ? timeout_ : t; }
  // release_leftovers (shutdown, called without the GIL): after an abort, wait for a thread
  // releasing a task and destroy on this thread what the dropped tasks held. Not from the
  // destructor, which may run under the GIL (Python's dealloc) or on a watchdog's thread.
  void stop_queues(bool release_leftovers);
  std::string describe(const char* op) const;
  std::shared_ptr<Work> enqueue(const char* op, std::function<void()> fn);
  void close_connections();
  WorkQueue& queue(bool p2p);
  std::shared_ptr<Work> point_to_point(const Tensor& t, int peer, uint32_t tag, Millis timeout,
                                       bool sending);

  std::shared_ptr<TCPStore> store_;
  int rank_, size_;
  Millis timeout_;
  std::shared_ptr<gloo::Context> context_;
  std::vector<std::pair<std::string, int>> peer_addresses_;  // "[ip]:port" -> rank
  std::mutex queues_mu_;
  std::unique_ptr<WorkQueue> collectives_;
  std::unique_ptr<WorkQueue> p2p_;
  std::atomic<uint64_t> reduce_scatters_{0};  // names each one's Gloo slot

  // Shared with the tasks, which may outlive this object on an abandoned thread.
  struct AbortState {
    std::mutex mu;  // guards reason and error
    std::condition_variable cv;
    std::string reason;
    std::exception_ptr error;
    std::atomic<int64_t> grace_ms{0};
    // The abort reason, waiting up to the grace for one to arrive; "" if none.
    std::string wait_for_reason(bool with_grace);
  };
  std::shared_ptr<AbortState> abort_ = std::make_shared<AbortState>();
};

}  // namespace phalanx::dist
