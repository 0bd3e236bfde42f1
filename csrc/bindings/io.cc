// phalanx._C.io bindings.
#include "bindings/convert.h"

namespace phalanx::bindings {

void init_io(py::module_& m) { m.def_submodule("io"); }

}  // namespace phalanx::bindings
