// phalanx._C.data bindings.
#include "bindings/convert.h"

namespace phalanx::bindings {

void init_data(py::module_& m) { m.def_submodule("data"); }

}  // namespace phalanx::bindings
