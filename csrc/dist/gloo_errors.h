// Gloo's failures in phalanx's terms. Gloo reports every failure as an exception whose only
// content is a message: it exposes no error codes and no peer ids. So the two things phalanx
// needs from a failure -- was it a timeout, and which peer failed -- are read from the text.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace phalanx::dist {

// Whether Gloo's message reports a timeout. Parsed from text because Gloo throws
// gloo::IoException for timeouts and broken connections alike, differing only in the message
// ("Timed out waiting ...", "... timeout ...").
bool mentions_timeout(const std::string& gloo_message);

// Runs fn, turning Gloo's exceptions into phalanx errors that say which operation failed:
// TimeoutError for a timeout, Error otherwise. phalanx's own errors pass unchanged.
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

// The rank behind an address in a Gloo error message, or -1. `peers` maps each peer's
// listening address, "[ip]:port" as Gloo prints it, to its rank.
int peer_in_message(const std::string& gloo_message,
                    const std::vector<std::pair<std::string, int>>& peers);

// "[ip]:port" (Gloo's form) or "host:port" -> the host part.
std::string host_of(const std::string& addr);

}  // namespace phalanx::dist
