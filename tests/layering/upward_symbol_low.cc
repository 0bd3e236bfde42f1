// A "lower layer" that calls a function of a "higher" one through a hand-written declaration,
// without any include: the link check (check_layer_links.py) must catch it.
int phalanx_probe_higher_layer_function();

int phalanx_probe_lower_layer_function() {
  return phalanx_probe_higher_layer_function() + 1;
}
