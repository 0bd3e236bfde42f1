// phalanx._C.dist bindings.
#include "bindings/convert.h"

namespace phalanx::bindings {

void init_dist(py::module_& m) { m.def_submodule("dist"); }

}  // namespace phalanx::bindings
