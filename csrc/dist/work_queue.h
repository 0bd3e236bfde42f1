// Work and WorkQueue: the handle of one queued operation, and the thread that runs a group's
// operations in order (ProcessGroup has one for collectives and one for point-to-point).
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace phalanx::dist {

using Millis = std::chrono::milliseconds;

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

}  // namespace phalanx::dist
