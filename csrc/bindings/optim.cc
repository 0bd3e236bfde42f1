// phalanx._C.optim bindings.
#include "bindings/convert.h"

namespace phalanx::bindings {

void init_optim(py::module_& m) { m.def_submodule("optim"); }

}  // namespace phalanx::bindings
