#include "dist/work_queue.h"

#include "core/error.h"

namespace phalanx::dist {

bool Work::is_completed() {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void Work::wait(Millis timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (timeout.count() < 0) {
    cv_.wait(lock, [&] { return done_; });
  } else if (!cv_.wait_for(lock, timeout, [&] { return done_; })) {
    throw TimeoutError(
        detail::cat("Work.wait: the operation is still running after ", timeout.count(), " ms"));
  }
  if (error_) std::rethrow_exception(error_);
}

void Work::finish(std::exception_ptr error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    done_ = true;
    error_ = error;
  }
  cv_.notify_all();
}

WorkQueue::WorkQueue(std::string name) : name_(std::move(name)), thread_([this] { loop(); }) {}

WorkQueue::~WorkQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WorkQueue::abort(std::exception_ptr error) {
  std::vector<std::shared_ptr<Work>> dropped;
  std::shared_ptr<Work> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The aborting thread (the watchdog's) must not destroy the tasks either.
    for (auto& item : tasks_) {
      finished_.emplace_back();
      finished_.back().swap(item.first);
      dropped.push_back(std::move(item.second));
    }
    tasks_.clear();
    if (!releasing_ && running_) {
      running = running_;
      running_aborted_ = true;
    }
  }
  if (running) running->finish(error);
  for (auto& work : dropped) work->finish(error);
}

void WorkQueue::settle() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !releasing_; });
}

void WorkQueue::release_finished() {
  std::vector<Task> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished.swap(finished_);
  }
  // Destroyed here, outside the lock: a task's tensors may wait for the GIL.
}

bool WorkQueue::idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.empty() && !running_;
}

void WorkQueue::abandon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.detach();
}

std::shared_ptr<Work> WorkQueue::push(std::function<void()> task) {
  release_finished();
  auto work = std::make_shared<Work>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.emplace_back(std::move(task), work);
  }
  cv_.notify_one();
  return work;
}

void WorkQueue::loop() {
  while (true) {
    std::pair<std::function<void()>, std::shared_ptr<Work>> item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stop_ and drained
      item = std::move(tasks_.front());
      tasks_.pop_front();
      running_ = item.second;
      running_aborted_ = false;
    }
    std::exception_ptr error;
    try {
      item.first();
    } catch (...) {
      error = std::current_exception();
    }
    bool handed_over;
    {
      std::lock_guard<std::mutex> lock(mu_);
      handed_over = running_aborted_;
      if (handed_over) {
        // The caller was woken by the abort and may be gone, the interpreter finalizing.
        finished_.emplace_back();
        finished_.back().swap(item.first);
      } else {
        releasing_ = true;  // from here an abort leaves this Work to this thread
      }
    }
    // What the task captured (the caller's tensors) goes before the caller is woken: once
    // wait() returns, this thread holds none of them, so their last owner is the caller.
    if (!handed_over) item.first = nullptr;
    item.second->finish(error);
    std::lock_guard<std::mutex> lock(mu_);
    releasing_ = false;
    running_.reset();
    cv_.notify_all();  // settle() may wait for this
  }
}

}  // namespace phalanx::dist
