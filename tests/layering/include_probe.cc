// Compiled with one layer's header view (tests/layering/CMakeLists.txt) to prove the build
// enforces the layering: including a header the layer may use compiles, including one from a
// higher or sibling layer fails with "No such file".
#include PHALANX_PROBE_HEADER

int phalanx_layering_probe() {
  return 0;
}
