// phalanx._C.dist bindings: TCPStore, ProcessGroup, Work, ReduceOp. Every call that may block
// on the network releases the GIL.
#include <cmath>
#include <optional>

#include "bindings/convert.h"
#include "dist/process_group.h"
#include "dist/watchdog.h"

namespace phalanx::bindings {

using dist::Millis;

namespace {

// Seconds from Python (None: no limit / the default) to milliseconds, -1 meaning "unset".
Millis to_ms(std::optional<double> seconds) {
  if (!seconds) return Millis(-1);
  PHX_CHECK(*seconds >= 0, ValueError, "timeout must be >= 0 seconds, got ", *seconds);
  return Millis(static_cast<int64_t>(*seconds * 1000.0 + 0.5));
}

std::string as_bytes(py::handle v) {
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::bytes>(v)) return v.cast<std::string>();
  throw TypeError("TCPStore values are str or bytes, got " + std::string(py::str(py::type::of(v))));
}

}  // namespace

void init_dist(py::module_& m) {
  using namespace dist;
  auto d = m.def_submodule("dist");

  py::enum_<ReduceOp>(d, "ReduceOp")
      .value("SUM", ReduceOp::Sum)
      .value("AVG", ReduceOp::Avg)
      .value("MAX", ReduceOp::Max)
      .value("MIN", ReduceOp::Min)
      .value("PRODUCT", ReduceOp::Product);

  py::enum_<AllreduceAlgorithm>(d, "AllreduceAlgorithm")
      .value("AUTO", AllreduceAlgorithm::Auto)
      .value("RING", AllreduceAlgorithm::Ring)
      .value("BCUBE", AllreduceAlgorithm::Bcube);
  d.def(
      "choose_allreduce_algorithm",
      [](size_t bytes, int world_size) {
        return std::string(algorithm_name(choose_allreduce_algorithm(bytes, world_size)));
      },
      py::arg("nbytes"), py::arg("world_size"));

  py::class_<Work, std::shared_ptr<Work>>(d, "Work")
      .def(
          "wait",
          [](Work& w, std::optional<double> timeout) {
            Millis t = to_ms(timeout);
            py::gil_scoped_release release;
            w.wait(t);
            return true;
          },
          py::arg("timeout") = py::none())
      .def("is_completed", &Work::is_completed);

  py::class_<TCPStore, std::shared_ptr<TCPStore>>(d, "TCPStore")
      .def(py::init([](const std::string& host, int port, bool is_master, double timeout,
                       const std::string& job_id, const std::string& token) {
             Millis t = to_ms(timeout);
             py::gil_scoped_release release;
             return std::make_shared<TCPStore>(host, port, is_master, t, job_id, token);
           }),
           py::arg("host"), py::arg("port"), py::arg("is_master"), py::arg("timeout"),
           py::arg("job_id"), py::arg("token"))
      .def("set",
           [](TCPStore& s, const std::string& key, py::handle value) {
             std::string v = as_bytes(value);
             py::gil_scoped_release release;
             s.set(key, std::vector<char>(v.begin(), v.end()));
           })
      .def("get",
           [](TCPStore& s, const std::string& key) {
             std::vector<char> v;
             {
               py::gil_scoped_release release;
               v = s.get(key);
             }
             return py::bytes(v.data(), v.size());
           })
      .def(
          "wait",
          [](TCPStore& s, const std::vector<std::string>& keys, std::optional<double> timeout) {
            Millis t = timeout ? to_ms(timeout) : s.timeout();
            py::gil_scoped_release release;
            s.wait(keys, t);
          },
          py::arg("keys"), py::arg("timeout") = py::none())
      .def(
          "add",
          [](TCPStore& s, const std::string& key, int64_t n) {
            py::gil_scoped_release release;
            return s.add(key, n);
          },
          py::arg("key"), py::arg("amount"))
      .def("check",
           [](TCPStore& s, const std::vector<std::string>& keys) {
             py::gil_scoped_release release;
             return s.check(keys);
           })
      .def_property_readonly("host", &TCPStore::host)
      .def_property_readonly("port", &TCPStore::port)
      .def_property_readonly("job_id", &TCPStore::job_id)
      .def_property_readonly("token", &TCPStore::token)
      .def_property(
          "timeout", [](const TCPStore& s) { return s.timeout().count() / 1000.0; },
          [](TCPStore& s, double t) { s.set_timeout(to_ms(t)); });

  py::class_<ProcessGroup, std::shared_ptr<ProcessGroup>>(d, "ProcessGroup")
      .def(py::init([](std::shared_ptr<TCPStore> store, int rank, int size,
                       const std::string& address, const std::string& iface, double timeout,
                       const std::string& prefix) {
             ProcessGroupOptions o;
             o.address = address;
             o.iface = iface;
             o.timeout = to_ms(timeout);
             o.prefix = prefix;
             py::gil_scoped_release release;
             return std::make_shared<ProcessGroup>(std::move(store), rank, size, o);
           }),
           py::arg("store"), py::arg("rank"), py::arg("size"), py::arg("address"), py::arg("iface"),
           py::arg("timeout"), py::arg("prefix"))
      .def("rank", &ProcessGroup::rank)
      .def("size", &ProcessGroup::size)
      .def(
          "all_reduce",
          [](ProcessGroup& pg, const Tensor& t, ReduceOp op, std::optional<double> timeout,
             AllreduceAlgorithm algorithm) {
            return pg.all_reduce(t, op, to_ms(timeout), algorithm);
          },
          py::arg("tensor"), py::arg("op"), py::arg("timeout") = py::none(),
          py::arg("algorithm") = AllreduceAlgorithm::Auto)
      .def(
          "broadcast",
          [](ProcessGroup& pg, const Tensor& t, int root, std::optional<double> timeout) {
            return pg.broadcast(t, root, to_ms(timeout));
          },
          py::arg("tensor"), py::arg("root"), py::arg("timeout") = py::none())
      .def(
          "all_gather",
          [](ProcessGroup& pg, const std::vector<Tensor>& outs, const Tensor& in,
             std::optional<double> timeout) { return pg.all_gather(outs, in, to_ms(timeout)); },
          py::arg("outputs"), py::arg("input"), py::arg("timeout") = py::none())
      .def(
          "reduce_scatter",
          [](ProcessGroup& pg, const Tensor& out, const std::vector<Tensor>& ins, ReduceOp op,
             std::optional<double> timeout) {
            return pg.reduce_scatter(out, ins, op, to_ms(timeout));
          },
          py::arg("output"), py::arg("inputs"), py::arg("op"), py::arg("timeout") = py::none())
      .def(
          "barrier",
          [](ProcessGroup& pg, std::optional<double> timeout) {
            return pg.barrier(to_ms(timeout));
          },
          py::arg("timeout") = py::none())
      .def(
          "send",
          [](ProcessGroup& pg, const Tensor& t, int dst, uint32_t tag,
             std::optional<double> timeout) { return pg.send(t, dst, tag, to_ms(timeout)); },
          py::arg("tensor"), py::arg("dst"), py::arg("tag") = 0, py::arg("timeout") = py::none())
      .def(
          "recv",
          [](ProcessGroup& pg, const Tensor& t, int src, uint32_t tag,
             std::optional<double> timeout) { return pg.recv(t, src, tag, to_ms(timeout)); },
          py::arg("tensor"), py::arg("src"), py::arg("tag") = 0, py::arg("timeout") = py::none())
      .def("shutdown",
           [](ProcessGroup& pg) {
             py::gil_scoped_release release;
             pg.shutdown();
           })
      .def(
          "abort",
          [](ProcessGroup& pg, const std::string& reason) {
            py::gil_scoped_release release;
            pg.abort(reason);
          },
          py::arg("reason"))
      .def_property_readonly("aborted", &ProcessGroup::aborted)
      .def_property_readonly("abort_reason", &ProcessGroup::abort_reason);

  d.def(
      "check_heartbeat_settings",
      [](double interval, double timeout) {
        // Not to_ms: a negative setting must reach the check, which names it.
        auto ms = [](double s, const char* name) {
          PHX_CHECK(std::isfinite(s) && std::fabs(s) < 1e12, ValueError, name,
                    " must be a finite number of seconds, got ", s);
          return Millis(static_cast<int64_t>(std::llround(s * 1000.0)));
        };
        return check_heartbeat_settings(ms(interval, "heartbeat_interval"),
                                        ms(timeout, "heartbeat_timeout"));
      },
      py::arg("interval"), py::arg("timeout"));

  py::class_<Watchdog, std::shared_ptr<Watchdog>>(d, "Watchdog")
      .def(py::init([](const std::string& host, int port, const std::string& job_id,
                       const std::string& token, const std::string& group, int rank,
                       const std::string& address, const std::string& store_owner, double interval,
                       double timeout) {
             WatchdogOptions o;
             o.interval = to_ms(interval);
             o.timeout = to_ms(timeout);
             o.group = group;
             o.rank = rank;
             o.host = address;
             o.store_owner = store_owner;
             py::gil_scoped_release release;
             return std::make_shared<Watchdog>(host, port, job_id, token, o);
           }),
           py::arg("host"), py::arg("port"), py::arg("job_id"), py::arg("token"), py::arg("group"),
           py::arg("rank"), py::arg("address"), py::arg("store_owner"), py::arg("interval"),
           py::arg("timeout"))
      .def("watch", &Watchdog::watch, py::arg("group"))
      .def("goodbye",
           [](Watchdog& w) {
             py::gil_scoped_release release;
             w.goodbye();
           })
      .def("stop",
           [](Watchdog& w) {
             py::gil_scoped_release release;
             w.stop();
           })
      .def_property_readonly("failure", &Watchdog::failure);
}

}  // namespace phalanx::bindings
