// Starts N ranks as separate processes on this machine, each doing TCPStore rendezvous, the
// Gloo full-mesh connect and one all-reduce; reports the wall time. Exit status 0 only if every
// rank got the right sum.
//   phalanx_rendezvous_bench N [timeout_seconds]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dist/process_group.h"

using namespace phalanx;
using Clock = std::chrono::steady_clock;

static int run_rank(int rank, int size, int port, int timeout_s) {
  try {
    auto t0 = Clock::now();
    auto store = std::make_shared<dist::TCPStore>("127.0.0.1", port, false,
                                                  dist::Millis(timeout_s * 1000), "bench");
    dist::ProcessGroupOptions opts;
    opts.timeout = dist::Millis(timeout_s * 1000);
    // PHALANX_BENCH_SPREAD=1 gives each rank its own loopback address (127.0.x.y), as ranks on
    // separate phones have: with one address, the kernel's bind() port search for ~N^2 sockets
    // on a single IP dominates the time at 100+ ranks.
    const char* spread = std::getenv("PHALANX_BENCH_SPREAD");
    if (spread && std::string(spread) == "1")
      opts.address = "127.0." + std::to_string(rank / 250) + "." + std::to_string(rank % 250 + 1);
    dist::ProcessGroup pg(store, rank, size, opts);
    auto t1 = Clock::now();
    Tensor t = Tensor::empty({4}, DType::Float32);
    for (int i = 0; i < 4; ++i) t.data<float>()[i] = static_cast<float>(rank + 1);
    pg.all_reduce(t, dist::ReduceOp::Sum)->wait();
    float expect = static_cast<float>(size) * (size + 1) / 2;
    if (t.data<float>()[0] != expect) {
      std::fprintf(stderr, "rank %d: all_reduce gave %f, expected %f\n", rank, t.data<float>()[0],
                   expect);
      return 1;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count();
    std::string v = std::to_string(ms);
    store->set("connect_ms/" + std::to_string(rank), std::vector<char>(v.begin(), v.end()));
    pg.barrier()->wait();  // no rank tears down its pairs while another still uses them
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    return 1;
  }
}

int main(int argc, char** argv) {
  if (argc >= 5 && std::string(argv[1]) == "--rank")
    return run_rank(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]),
                    argc > 5 ? std::atoi(argv[5]) : 60);
  int size = argc > 1 ? std::atoi(argv[1]) : 16;
  int timeout_s = argc > 2 ? std::atoi(argv[2]) : 120;
  dist::TCPStore store("127.0.0.1", 0, true, dist::Millis(timeout_s * 1000), "bench");
  std::string port = std::to_string(store.port());
  auto t0 = Clock::now();
  std::vector<pid_t> pids;
  for (int r = 0; r < size; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      std::string rank = std::to_string(r), n = std::to_string(size), t = std::to_string(timeout_s);
      execl("/proc/self/exe", argv[0], "--rank", rank.c_str(), n.c_str(), port.c_str(), t.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    pids.push_back(pid);
  }
  int failed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  double total = std::chrono::duration<double>(Clock::now() - t0).count();
  long max_connect = 0;
  for (int r = 0; r < size && !failed; ++r) {
    auto v = store.get("connect_ms/" + std::to_string(r));
    max_connect = std::max(max_connect, std::atol(std::string(v.begin(), v.end()).c_str()));
  }
  std::printf("ranks=%d failed=%d total_s=%.2f max_rendezvous_s=%.2f\n", size, failed, total,
              max_connect / 1000.0);
  return failed ? 1 : 0;
}
