#include "dist/process_group.h"

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/address.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include <cstring>

#include "core/error.h"

namespace phalanx::dist {

namespace {

using ReduceFn = std::function<void(void*, const void*, const void*, size_t)>;

bool mentions_timeout(const std::string& s) {
  return s.find("imed out") != std::string::npos || s.find("imeout") != std::string::npos;
}

// Runs fn, turning Gloo's exceptions into phalanx errors that say which operation failed.
template <typename F>
void translate_errors(const std::string& what, F&& fn) {
  try {
    fn();
  } catch (const phalanx::Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = detail::cat(what, ": ", e.what());
    if (mentions_timeout(e.what())) throw TimeoutError(msg);
    throw Error(msg);
  }
}

template <typename T, typename Op>
ReduceFn elementwise(Op op) {
  return [op](void* c, const void* a, const void* b, size_t n) {
    T* out = static_cast<T*>(c);
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    for (size_t i = 0; i < n; ++i) out[i] = op(x[i], y[i]);
  };
}

// float16/bfloat16: computed in float32, rounded back per step.
template <float (*Load)(uint16_t), uint16_t (*Store)(float), typename Op>
ReduceFn reduced_float(Op op) {
  return [op](void* c, const void* a, const void* b, size_t n) {
    uint16_t* out = static_cast<uint16_t*>(c);
    const uint16_t* x = static_cast<const uint16_t*>(a);
    const uint16_t* y = static_cast<const uint16_t*>(b);
    for (size_t i = 0; i < n; ++i) out[i] = Store(op(Load(x[i]), Load(y[i])));
  };
}

template <typename T>
ReduceFn typed_reduce(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      return elementwise<T>([](T a, T b) { return static_cast<T>(a + b); });
    case ReduceOp::Product:
      return elementwise<T>([](T a, T b) { return static_cast<T>(a * b); });
    case ReduceOp::Max:
      return elementwise<T>([](T a, T b) { return a < b ? b : a; });
    case ReduceOp::Min:
      return elementwise<T>([](T a, T b) { return b < a ? b : a; });
  }
  return {};
}

template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
ReduceFn half_reduce(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      return reduced_float<Load, Store>([](float a, float b) { return a + b; });
    case ReduceOp::Product:
      return reduced_float<Load, Store>([](float a, float b) { return a * b; });
    case ReduceOp::Max:
      return reduced_float<Load, Store>([](float a, float b) { return a < b ? b : a; });
    case ReduceOp::Min:
      return reduced_float<Load, Store>([](float a, float b) { return b < a ? b : a; });
  }
  return {};
}

ReduceFn reduce_fn(DType t, ReduceOp op) {
  PHX_CHECK(op != ReduceOp::Avg || is_floating(t), TypeError,
            "ReduceOp.AVG needs a floating-point tensor, got ", dtype_name(t),
            " (use SUM and divide)");
  switch (t) {
    case DType::Float32:
      return typed_reduce<float>(op);
    case DType::Float16:
      return half_reduce<half_to_float, float_to_half>(op);
    case DType::BFloat16:
      return half_reduce<bfloat16_to_float, float_to_bfloat16>(op);
    case DType::Int64:
      return typed_reduce<int64_t>(op);
    case DType::Int32:
      return typed_reduce<int32_t>(op);
    case DType::UInt8:
      return typed_reduce<uint8_t>(op);
    case DType::Bool:
      break;
  }
  throw TypeError(detail::cat("reductions do not support ", dtype_name(t), " tensors"));
}

// Calls f with a pointer type whose size is the element size, for Gloo's templated setters.
template <typename F>
void with_element(size_t itemsize, F&& f) {
  switch (itemsize) {
    case 1:
      return f(static_cast<uint8_t*>(nullptr));
    case 2:
      return f(static_cast<uint16_t*>(nullptr));
    case 4:
      return f(static_cast<uint32_t*>(nullptr));
    case 8:
      return f(static_cast<uint64_t*>(nullptr));
  }
  throw TypeError(detail::cat("unsupported element size ", itemsize));
}

void divide_in_place(void* p, DType t, size_t n, int by) {
  if (t == DType::Float32) {
    float* x = static_cast<float*>(p);
    for (size_t i = 0; i < n; ++i) x[i] /= static_cast<float>(by);
    return;
  }
  uint16_t* x = static_cast<uint16_t*>(p);
  bool half = t == DType::Float16;
  for (size_t i = 0; i < n; ++i) {
    float v = (half ? half_to_float(x[i]) : bfloat16_to_float(x[i])) / static_cast<float>(by);
    x[i] = half ? float_to_half(v) : float_to_bfloat16(v);
  }
}

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

void run_allreduce(const std::shared_ptr<gloo::Context>& ctx, void* data, size_t elements,
                   DType dtype, ReduceOp op, Millis timeout,
                   AllreduceAlgorithm algorithm = AllreduceAlgorithm::Auto) {
  if (elements == 0) return;
  ReduceFn fn = reduce_fn(dtype, op);
  with_element(itemsize(dtype), [&](auto* type_tag) {
    using T = std::remove_pointer_t<decltype(type_tag)>;
    gloo::AllreduceOptions opts(ctx);
    opts.setOutput<T>(static_cast<T*>(data), elements);
    opts.setReduceFunction(fn);
    opts.setTimeout(timeout);
    if (algorithm == AllreduceAlgorithm::Ring)
      opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
    if (algorithm == AllreduceAlgorithm::Bcube)
      opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::BCUBE);
    gloo::allreduce(opts);
  });
  if (op == ReduceOp::Avg) divide_in_place(data, dtype, elements, ctx->size);
}

// The rank behind an address in a Gloo error message, or -1. Gloo names a pair by the peer's
// listening address when this side connected, by the peer's ephemeral port when the peer did:
// an exact "[ip]:port" match, else an IP only one peer has (ranks on different hosts), else
// the only peer there is.
int peer_in_message(const std::string& msg, const std::vector<std::pair<std::string, int>>& peers) {
  for (auto& [addr, r] : peers)
    if (msg.find(addr) != std::string::npos) return r;
  int found = -1, hits = 0;
  for (auto& [addr, r] : peers) {
    std::string ip = addr.substr(0, addr.rfind(':'));  // "[ip]"
    if (msg.find(ip + ":") != std::string::npos) {
      found = r;
      ++hits;
    }
  }
  if (hits == 1) return found;
  if (peers.size() == 1 && msg.find('[') != std::string::npos) return peers[0].second;
  return -1;
}

constexpr uint64_t kP2PSlotPrefix = 0xE0ull << 56;  // keeps clear of Gloo's collective slots

}  // namespace

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return "SUM";
    case ReduceOp::Avg:
      return "AVG";
    case ReduceOp::Max:
      return "MAX";
    case ReduceOp::Min:
      return "MIN";
    case ReduceOp::Product:
      return "PRODUCT";
  }
  return "?";
}

// -------------------------------------------------------------------------------- Work

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
  thread_.join();
}

std::shared_ptr<Work> WorkQueue::push(std::function<void()> task) {
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
    }
    std::exception_ptr error;
    try {
      item.first();
    } catch (...) {
      error = std::current_exception();
    }
    item.second->finish(error);
  }
}

// -------------------------------------------------------------------------------- ProcessGroup

ProcessGroup::ProcessGroup(std::shared_ptr<TCPStore> store, int rank, int size,
                           ProcessGroupOptions options)
    : store_(std::move(store)), rank_(rank), size_(size), timeout_(options.timeout) {
  PHX_CHECK(store_, ValueError, "ProcessGroup: no store");
  PHX_CHECK(size >= 1, ValueError, "ProcessGroup: world_size must be >= 1, got ", size);
  PHX_CHECK(rank >= 0 && rank < size, ValueError, "ProcessGroup: rank ", rank,
            " is out of range for world_size ", size);
  const std::string& prefix = options.prefix;

  // Every rank publishes the world size it was started with; comparing with rank 0 catches a
  // mismatch on every rank before the full-mesh connect would hang.
  auto size_key = [&](int r) { return detail::cat(prefix, "/world_size/", r); };
  std::string mine = std::to_string(size);
  Millis saved = store_->timeout();
  store_->set_timeout(timeout_);
  store_->set(size_key(rank), std::vector<char>(mine.begin(), mine.end()));
  auto check_rank = [&](int r) {
    std::vector<char> v = store_->get(size_key(r));
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
  context->setTimeout(timeout_);
  gloo::rendezvous::PrefixStore gloo_store(prefix + "/gloo", *store_);
  translate_errors(detail::cat("ProcessGroup: rank ", rank, " of ", size,
                               " could not connect to its peers within ", timeout_.count(), " ms"),
                   [&] { context->connectFullMesh(gloo_store, device); });
  // Gloo's errors name a peer by its listening address; remember which rank that is.
  for (int r = 0; r < size && size > 1; ++r) {
    if (r == rank) continue;
    try {
      std::vector<char> all = gloo_store.get(std::to_string(r));
      size_t each = all.size() / static_cast<size_t>(size - 1);
      if (each == 0) continue;
      std::string addr =
          gloo::transport::tcp::Address(std::vector<char>(all.begin(), all.begin() + each)).str();
      peer_addresses_.emplace_back(addr.substr(0, addr.find('$')), r);
    } catch (const std::exception&) {
      // Only used to make error messages nicer.
    }
  }
  store_->set_timeout(saved);
  context_ = context;
  collectives_ = std::make_unique<WorkQueue>("collectives");
  p2p_ = std::make_unique<WorkQueue>("p2p");
}

ProcessGroup::~ProcessGroup() {
  shutdown();
}

void ProcessGroup::shutdown() {
  std::lock_guard<std::mutex> lock(queues_mu_);
  collectives_.reset();
  p2p_.reset();
}

WorkQueue& ProcessGroup::queue(bool p2p) {
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
  return queue(false).push([what, peers, fn = std::move(fn)] {
    try {
      translate_errors(what, fn);
    } catch (const Error& e) {
      int peer = peer_in_message(e.what(), peers);
      if (peer < 0) throw;
      std::string msg = detail::cat(e.what(), " (the failing peer is rank ", peer, ")");
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
    run_allreduce(ctx, t.raw_data(), static_cast<size_t>(t.numel()), t.dtype(), op, limit,
                  algorithm);
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
  // Composed: all-reduce the concatenated inputs, keep this rank's block.
  return enqueue("reduce_scatter", [=] {
    size_t n = nbytes(output);
    if (n == 0) return;
    std::vector<char> all(n * inputs.size());
    for (size_t r = 0; r < inputs.size(); ++r)
      std::memcpy(all.data() + r * n, inputs[r].raw_data(), n);
    run_allreduce(ctx, all.data(), static_cast<size_t>(output.numel()) * inputs.size(),
                  output.dtype(), op, limit);
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
