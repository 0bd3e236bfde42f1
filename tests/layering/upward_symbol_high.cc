// The "higher layer" of upward_symbol_low.cc.
int phalanx_probe_lower_layer_function();

int phalanx_probe_higher_layer_function() {
  return 41;
}
int phalanx_probe_uses_lower() {
  return phalanx_probe_lower_layer_function();
}
