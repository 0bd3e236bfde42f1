#include "dist/process_group.h"

#include <gloo/allgather.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "dist/allreduce_algorithm.h"
#include "dist/deadline_store.h"
#include "dist/gloo_errors.h"
#include "dist/gloo_peer_address.h"
#include "dist/reduce_scatter_ring.h"
#include "dist/reductions.h"

namespace phalanx::dist {

namespace {

// A tensor Gloo can use as a flat buffer: plain (converting a oneDNN layout) and contiguous.
void check_flat(const Tensor& t, const char* op, const char* name) {
  PHX_CHECK(t.defined(), ValueError, op, ": ", name, " is an undefined tensor");
  t.materialize_plain();
  PHX_CHECK(t.is_contiguous(), ValueError, op, ": ", name, " must be contiguous, got ",
            t.describe(), " with strides ", shape_str(t.strides()), " (call .contiguous())");
}

size_t nbytes(const Tensor& t) {
  return static_cast<size_t>(t.numel()) * itemsize(t.dtype());
}

// What an aborted group must never free while a detached thread may still use it (the queues
// and the Gloo context): kept reachable from a global for the life of the process. Why not
// free it: Gloo offers no way to interrupt a thread waiting inside it, so after an abort the
// communication thread may sit in Gloo until its timeout and then touch the context and its
// queue; joining it instead would make shutdown wait that long. Reachable from a global (not
// just leaked) so leak checkers stay quiet.
void keep_forever(std::shared_ptr<void> thing) {
  static auto* mu = new std::mutex;
  static auto* kept = new std::vector<std::shared_ptr<void>>;
  std::lock_guard<std::mutex> lock(*mu);
  kept->push_back(std::move(thing));
}

constexpr uint64_t kP2PSlotPrefix = 0xE0ull << 56;  // keeps clear of Gloo's collective slots
constexpr uint64_t kReduceScatterSlotPrefix = 0xE1ull << 56;

}  // namespace

// -------------------------------------------------------------------------------- ProcessGroup

ProcessGroup::ProcessGroup(std::shared_ptr<TCPStore> store, int rank, int size,
                           ProcessGroupOptions options)
    : store_(std::move(store)), rank_(rank), size_(size), timeout_(options.timeout) {
  PHX_CHECK(store_, ValueError, "ProcessGroup: no store");
  PHX_CHECK(size >= 1, ValueError, "ProcessGroup: world_size must be >= 1, got ", size);
  PHX_CHECK(rank >= 0 && rank < size, ValueError, "ProcessGroup: rank ", rank,
            " is out of range for world_size ", size);
  const std::string& prefix = options.prefix;
  // Everything below -- the store calls and Gloo's connects -- ends by one deadline.
  const Millis connect_timeout =
      options.connect_timeout.count() < 0 ? timeout_ : options.connect_timeout;
  DeadlineStore rendezvous(*store_, DeadlineStore::Clock::now() + connect_timeout, timeout_);
  const std::string who = detail::cat("ProcessGroup: rank ", rank, " of ", size);

  // Every rank publishes the world size it was started with; comparing with rank 0 catches a
  // mismatch on every rank before the full-mesh connect would hang.
  auto size_key = [&](int r) { return detail::cat(prefix, "/world_size/", r); };
  std::string mine = std::to_string(size);
  rendezvous.set(size_key(rank), std::vector<char>(mine.begin(), mine.end()));
  auto check_rank = [&](int r) {
    std::vector<char> v;
    try {
      v = rendezvous.get(size_key(r));
    } catch (const TimeoutError& e) {
      throw TimeoutError(detail::cat(who, ": rank ", r, " did not join within the timeout of ",
                                     timeout_.count(), " ms (", e.what(), ")"));
    }
    std::string theirs(v.begin(), v.end());
    PHX_CHECK(theirs == mine, ValueError, "world size mismatch: rank ", rank_,
              " was started with world_size=", size, " but rank ", r, " with world_size=", theirs);
  };
  if (rank == 0) {
    for (int r = 1; r < size; ++r) check_rank(r);
  } else {
    check_rank(0);
  }

  gloo::transport::tcp::attr attr;
  if (!options.iface.empty()) {
    attr.iface = options.iface;
  } else {
    attr.hostname = options.address.empty() ? "127.0.0.1" : options.address;
  }
  std::shared_ptr<gloo::transport::Device> device;
  translate_errors(detail::cat("ProcessGroup: cannot create a TCP device on ",
                               options.iface.empty() ? "address " + attr.hostname
                                                     : "interface " + options.iface),
                   [&] { device = gloo::transport::tcp::CreateDevice(attr); });

  auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
  // Gloo's pair connect waits five times the context's timeout (transport/tcp/pair.h,
  // waitUntil: "a longer timeout when waiting for initial connect"), so a timeout of T took 5 T
  // to fail against an unreachable peer: give it a fifth of what is left. Its store waits end
  // by the deadline anyway (DeadlineStore), and every operation later passes its own timeout.
  context->setTimeout(std::max(Millis(1), (rendezvous.remaining() + Millis(4)) / 5));
  gloo::rendezvous::PrefixStore gloo_store(prefix + "/gloo", rendezvous);
  translate_errors(detail::cat(who, " could not connect to its peers within the timeout of ",
                               timeout_.count(), " ms"),
                   [&] { context->connectFullMesh(gloo_store, device); });
  context->setTimeout(timeout_);
  // Gloo's errors name a peer by its listening address; remember which rank that is, from the
  // record each rank published for connectFullMesh (its layout depends on Gloo's version).
  for (int r = 0; r < size && size > 1; ++r) {
    if (r == rank) continue;
    try {
      std::string addr = gloo_listening_address(gloo_store.get(std::to_string(r)), size);
      if (!addr.empty()) peer_addresses_.emplace_back(addr, r);
    } catch (const std::exception&) {
      // Only used to make error messages nicer.
    }
  }
  context_ = context;
  collectives_ = std::make_unique<WorkQueue>("collectives");
  p2p_ = std::make_unique<WorkQueue>("p2p");
}

ProcessGroup::~ProcessGroup() {
  stop_queues(/*release_leftovers=*/false);
}

void ProcessGroup::shutdown() {
  stop_queues(/*release_leftovers=*/true);
}

void ProcessGroup::stop_queues(bool release_leftovers) {
  std::unique_ptr<WorkQueue> collectives, p2p;
  {
    // Joined outside the lock, so an abort can still reach the queues meanwhile.
    std::lock_guard<std::mutex> lock(queues_mu_);
    collectives.swap(collectives_);
    p2p.swap(p2p_);
  }
  // Let queued work finish, unless an abort comes first (the watchdog may still fire while
  // an operation waits on a lost rank).
  auto busy = [&] { return (collectives && !collectives->idle()) || (p2p && !p2p->idle()); };
  while (busy() && !aborted()) std::this_thread::sleep_for(Millis(10));
  if (aborted()) {
    // The threads may be inside Gloo for up to its timeout: let them go, and keep what they
    // use (the queues themselves, the context) alive for good.
    std::exception_ptr error;
    {
      std::lock_guard<std::mutex> lock(abort_->mu);
      error = abort_->error;
    }
    for (auto* q : {&collectives, &p2p}) {
      if (!*q) continue;
      // Again: the abort may have come after the queues were taken out of its reach above,
      // and a running task must be handed over before its thread is let go.
      (*q)->abort(error);
      if (release_leftovers) (*q)->settle();  // the destructor may hold the GIL: not there
      (*q)->abandon();
      if (release_leftovers) (*q)->release_finished();
      keep_forever(std::shared_ptr<WorkQueue>(q->release()));
    }
    keep_forever(context_);
  }
}

bool ProcessGroup::is_shut_down() {
  std::lock_guard<std::mutex> lock(queues_mu_);
  return !collectives_;
}

bool ProcessGroup::aborted() const {
  std::lock_guard<std::mutex> lock(abort_->mu);
  return abort_->error != nullptr;
}

std::string ProcessGroup::abort_reason() const {
  std::lock_guard<std::mutex> lock(abort_->mu);
  return abort_->reason;
}

void ProcessGroup::abort(const std::string& reason) {
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(abort_->mu);
    if (abort_->error) return;
    abort_->reason = reason;
    abort_->error = std::make_exception_ptr(
        Error(detail::cat("process group (rank ", rank_, " of ", size_, ") aborted: ", reason)));
    error = abort_->error;
  }
  abort_->cv.notify_all();
  {
    std::lock_guard<std::mutex> lock(queues_mu_);
    if (collectives_) collectives_->abort(error);
    if (p2p_) p2p_->abort(error);
  }
  close_connections();
}

// Closing our end fails the peers' operations on these connections at once (each then learns
// the reason from its own watchdog). Gloo offers no way to wake this process's own thread if
// it waits inside Gloo on a frozen peer: it stays until Gloo's timeout, which is why shutdown
// after an abort detaches it.
void ProcessGroup::close_connections() {
  if (!context_) return;
  try {
    context_->closeConnections();
  } catch (const std::exception&) {
    // Already closed or failed: nothing left to tell the peers.
  }
}

std::string ProcessGroup::AbortState::wait_for_reason(bool with_grace) {
  std::unique_lock<std::mutex> lock(mu);
  Millis grace(with_grace ? grace_ms.load() : 0);
  cv.wait_for(lock, grace, [&] { return error != nullptr; });
  return reason;
}

WorkQueue& ProcessGroup::queue(bool p2p) {
  {
    std::lock_guard<std::mutex> lock(abort_->mu);
    if (abort_->error) std::rethrow_exception(abort_->error);
  }
  std::lock_guard<std::mutex> lock(queues_mu_);
  WorkQueue* q = p2p ? p2p_.get() : collectives_.get();
  PHX_CHECK(q, Error, "ProcessGroup rank ", rank_, " of ", size_,
            " has been shut down (destroy_process_group was called)");
  return *q;
}

std::string ProcessGroup::describe(const char* op) const {
  return detail::cat(op, " on rank ", rank_, " of ", size_);
}

std::shared_ptr<Work> ProcessGroup::enqueue(const char* op, std::function<void()> fn) {
  std::string what = describe(op);
  auto peers = peer_addresses_;
  auto abort_state = abort_;
  return queue(false).push([abort_state, what, peers, fn = std::move(fn)] {
    try {
      translate_errors(what, fn);
    } catch (const Error& e) {
      // A peer's closed connection is often a consequence (it gave up because another rank
      // was lost): the watchdog's verdict, when it comes within the grace, names the cause.
      // (A timeout gets no grace: a frozen peer is named only after the heartbeat timeout.)
      bool timed_out = dynamic_cast<const TimeoutError*>(&e) != nullptr;
      std::string reason = abort_state->wait_for_reason(!timed_out);
      if (!reason.empty()) throw Error(detail::cat(what, " aborted: ", reason));
      int peer = peer_in_message(e.what(), peers);
      if (peer < 0) throw;
      std::string host;
      for (auto& [addr, r] : peers)
        if (r == peer) host = host_of(addr);
      std::string msg =
          detail::cat(e.what(), " (the failing peer is rank ", peer, " (host ", host, "))");
      if (dynamic_cast<const TimeoutError*>(&e)) throw TimeoutError(msg);
      throw Error(msg);
    }
  });
}

std::shared_ptr<Work> ProcessGroup::all_reduce(const Tensor& t, ReduceOp op, Millis timeout,
                                               AllreduceAlgorithm algorithm) {
  check_flat(t, "all_reduce", "tensor");
  reduce_fn(t.dtype(), op);  // rejects an unsupported dtype on the caller's thread
  Millis limit = op_timeout(timeout);
  auto ctx = context_;
  return enqueue("all_reduce", [=] {
    allreduce(ctx, t.raw_data(), static_cast<size_t>(t.numel()), t.dtype(), op, limit, algorithm);
    t.bump_version();
  });
}

std::shared_ptr<Work> ProcessGroup::broadcast(const Tensor& t, int root, Millis timeout) {
  check_flat(t, "broadcast", "tensor");
  PHX_CHECK(root >= 0 && root < size_, ValueError, "broadcast: src rank ", root,
            " is out of range for a group of size ", size_);
  Millis limit = op_timeout(timeout);
  auto ctx = context_;
  return enqueue("broadcast", [=] {
    if (t.numel() == 0) return;
    with_element(itemsize(t.dtype()), [&](auto* type_tag) {
      using T = std::remove_pointer_t<decltype(type_tag)>;
      gloo::BroadcastOptions opts(ctx);
      opts.setOutput<T>(t.data<T>(), static_cast<size_t>(t.numel()));
      opts.setRoot(root);
      opts.setTimeout(limit);
      gloo::broadcast(opts);
    });
    t.bump_version();
  });
}

std::shared_ptr<Work> ProcessGroup::all_gather(const std::vector<Tensor>& outputs,
                                               const Tensor& input, Millis timeout) {
  check_flat(input, "all_gather", "input");
  bool stacked = outputs.size() == 1 && size_ > 1;
  if (stacked || size_ == 1) {
    PHX_CHECK(outputs.size() == 1, ValueError, "all_gather: expected 1 output tensor");
    check_flat(outputs[0], "all_gather", "output");
    PHX_CHECK(outputs[0].numel() == input.numel() * size_ && outputs[0].dtype() == input.dtype(),
              ValueError, "all_gather: output ", outputs[0].describe(), " must hold ", size_,
              " x input ", input.describe());
  } else {
    PHX_CHECK(static_cast<int>(outputs.size()) == size_, ValueError, "all_gather: expected ", size_,
              " output tensors (one per rank), got ", outputs.size());
    for (auto& o : outputs) {
      check_flat(o, "all_gather", "output");
      PHX_CHECK(o.numel() == input.numel() && o.dtype() == input.dtype(), ValueError,
                "all_gather: every output must match the input ", input.describe(), ", got ",
                o.describe());
    }
  }
  Millis limit = op_timeout(timeout);
  auto ctx = context_;
  int size = size_;
  return enqueue("all_gather", [=] {
    size_t n = nbytes(input);
    if (n == 0) return;
    std::vector<char> scratch;
    char* out = static_cast<char*>(outputs[0].raw_data());
    if (!stacked) {
      scratch.resize(n * size);
      out = scratch.data();
    }
    with_element(itemsize(input.dtype()), [&](auto* type_tag) {
      using T = std::remove_pointer_t<decltype(type_tag)>;
      gloo::AllgatherOptions opts(ctx);
      opts.setInput<T>(input.data<T>(), static_cast<size_t>(input.numel()));
      opts.setOutput<T>(reinterpret_cast<T*>(out), static_cast<size_t>(input.numel()) * size);
      opts.setTimeout(limit);
      gloo::allgather(opts);
    });
    if (!stacked)
      for (int r = 0; r < size; ++r) std::memcpy(outputs[r].raw_data(), out + r * n, n);
    for (auto& o : outputs) o.bump_version();
  });
}

std::shared_ptr<Work> ProcessGroup::reduce_scatter(const Tensor& output,
                                                   const std::vector<Tensor>& inputs, ReduceOp op,
                                                   Millis timeout) {
  check_flat(output, "reduce_scatter", "output");
  PHX_CHECK(static_cast<int>(inputs.size()) == size_, ValueError, "reduce_scatter: expected ",
            size_, " input tensors (one per rank), got ", inputs.size());
  for (auto& in : inputs) {
    check_flat(in, "reduce_scatter", "input");
    PHX_CHECK(in.numel() == output.numel() && in.dtype() == output.dtype(), ValueError,
              "reduce_scatter: every input must match the output ", output.describe(), ", got ",
              in.describe());
  }
  reduce_fn(output.dtype(), op);
  Millis limit = op_timeout(timeout);
  auto ctx = context_;
  int rank = rank_;
  // Every rank numbers its reduce-scatters alike (collectives run in the same order on all).
  uint64_t slot = kReduceScatterSlotPrefix | (reduce_scatters_++ & 0xffffffffffffull);
  return enqueue("reduce_scatter", [=] {
    size_t n = nbytes(output);
    if (n == 0) return;
    size_t count = static_cast<size_t>(output.numel());
    std::vector<char> all(n * inputs.size());
    for (size_t r = 0; r < inputs.size(); ++r)
      std::memcpy(all.data() + r * n, inputs[r].raw_data(), n);
    reduce_scatter_ring(ctx, all.data(), count, output.dtype(), op, slot, limit);
    std::memcpy(output.raw_data(), all.data() + rank * n, n);
    output.bump_version();
  });
}

std::shared_ptr<Work> ProcessGroup::barrier(Millis timeout) {
  Millis limit = op_timeout(timeout);
  auto ctx = context_;
  return enqueue("barrier", [=] {
    gloo::BarrierOptions opts(ctx);
    opts.setTimeout(limit);
    gloo::barrier(opts);
  });
}

std::shared_ptr<Work> ProcessGroup::send(const Tensor& t, int dst, uint32_t tag, Millis timeout) {
  return point_to_point(t, dst, tag, timeout, /*sending=*/true);
}

std::shared_ptr<Work> ProcessGroup::recv(const Tensor& t, int src, uint32_t tag, Millis timeout) {
  return point_to_point(t, src, tag, timeout, /*sending=*/false);
}

// Posts the transfer at once (so the peer can match it) and waits for it on the
// point-to-point queue, where a pending receive never blocks a collective.
std::shared_ptr<Work> ProcessGroup::point_to_point(const Tensor& t, int peer, uint32_t tag,
                                                   Millis timeout, bool sending) {
  const char* op = sending ? "send" : "recv";
  check_flat(t, op, "tensor");
  PHX_CHECK(peer >= 0 && peer < size_ && peer != rank_, ValueError, op, ": ",
            sending ? "dst" : "src", " rank ", peer, " is not another rank of this group of size ",
            size_, " (this is rank ", rank_, ")");
  Millis limit = op_timeout(timeout);
  std::shared_ptr<gloo::transport::UnboundBuffer> buf =
      context_->createUnboundBuffer(t.raw_data(), nbytes(t));
  std::string what =
      sending ? detail::cat("send from rank ", rank_, " to rank ", peer, " (tag ", tag, ")")
              : detail::cat("recv on rank ", rank_, " from rank ", peer, " (tag ", tag, ")");
  translate_errors(what, [&] {
    if (sending)
      buf->send(peer, kP2PSlotPrefix | tag);
    else
      buf->recv(peer, kP2PSlotPrefix | tag);
  });
  auto ctx = context_;  // keeps the pairs alive until the transfer is done
  return queue(true).push([=] {
    translate_errors(what, [&] {
      if (!(sending ? buf->waitSend(limit) : buf->waitRecv(limit))) throw Error("aborted");
    });
    if (!sending) t.bump_version();
    (void)ctx;
  });
}

}  // namespace phalanx::dist
