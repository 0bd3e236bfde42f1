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
#include "dist/reductions.h"
#include "dist/tcp_store.h"

namespace gloo {
class Context;
}

namespace phalanx::dist {

// Gloo's all-reduce algorithms; Auto picks one by message size and world size (see
// choose_allreduce_algorithm).
enum class AllreduceAlgorithm { Auto, Ring, RingChunked, HalvingDoubling, Bcube };
const char* algorithm_name(AllreduceAlgorithm a);
// The rule behind Auto (exposed for tests and for the documentation of the choice).
AllreduceAlgorithm choose_allreduce_algorithm(size_t bytes, int world_size);

// The handle of one queued operation.
class Work {
 public:
  bool is_completed();
  // Blocks until done (timeout < 0: without limit) and rethrows the operation's error.
  // TimeoutError if it is still running after `timeout`; the operation itself keeps its own.
  void wait(Millis timeout = Millis(-1));
  // The first call decides the outcome (an abort may finish a Work before the thread that
  // runs it does); later calls are ignored.
  void finish(std::exception_ptr error);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::exception_ptr error_;
};

// One thread draining a FIFO of tasks, each completing its Work.
//
// What a task captured (the caller's tensors; memory of a numpy array is released under the
// GIL) must never be released by a thread that runs on after its caller moved on: CPython ends
// a thread that asks for the GIL while the interpreter finalizes with pthread_exit, whose
// unwinding through a destructor aborts the process ("terminate called without an active
// exception"). So the queue's thread releases a task before completing its Work, while the
// caller still waits; a task whose Work an abort completed first (the thread was still inside
// Gloo) is never released by that thread: it is handed over, like the tasks an abort dropped,
// to release_finished on a caller's thread, or kept for good with an abandoned queue.
class WorkQueue {
 public:
  explicit WorkQueue(std::string name);
  ~WorkQueue();  // runs what is queued, then joins (unless abandoned)
  // Also releases the tasks handed over since the last call, on this thread.
  std::shared_ptr<Work> push(std::function<void()> task);
  // Fails the running and every queued Work with `error` now; queued tasks never run. (A
  // running task already past its work, releasing what it captured, completes on its own.)
  void abort(std::exception_ptr error);
  // Lets the thread go without waiting for it (it may be stuck in Gloo): the caller must
  // keep this object alive for good, see ProcessGroup::shutdown. The task it is running is
  // then never released (a thread that outlives its Work may outlive the interpreter too).
  void abandon();
  // Destroys, on this thread, the tasks handed over after an abort (see above).
  void release_finished();
  // Waits while the thread releases a task that completed as an abort came (it may need the
  // GIL for that: call without it), so that abandon() never lets go of a releasing thread.
  void settle();
  bool idle();  // nothing queued or running

 private:
  using Task = std::function<void()>;
  void loop();
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Task, std::shared_ptr<Work>>> tasks_;
  std::shared_ptr<Work> running_;
  bool running_aborted_ = false;  // an abort completed running_'s Work: the task is handed over
  bool releasing_ = false;        // the thread is releasing the running task: abort leaves it be
  std::vector<Task> finished_;    // handed over, for a caller's thread to destroy
  bool stop_ = false;
  std::thread thread_;
};

struct ProcessGroupOptions {
  std::string address = "127.0.0.1";  // this rank's address for Gloo's listening socket...
  std::string iface;                  // ...or an interface name, which wins when set
  Millis timeout = Millis(60000);     // rendezvous and default per-operation timeout
  std::string prefix = "default_pg";  // store namespace of this group
};

class ProcessGroup {
 public:
  // Rendezvous: checks every rank has the same world size (ValueError naming both), then
  // connects the full mesh. Blocks up to options.timeout.
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
