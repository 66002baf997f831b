# A verbatim copy of the team's shared benchmark script (../shared/bench/mesa_peer.py), kept so the
# performance figures can be reproduced from a clone; benchmarks/bench_engine.py prefers the
# shared original when it is there.
"""Agent-steps per second of Mesa's own network example (virus_on_network, shipped with mesa)
at a given size, with its O(N^2) construction steps swapped for equivalent fast ones so that
only the stepping is timed. Prints one JSON line."""
import json, sys, time
import networkx as nx
from mesa.discrete_space import Network

nx.erdos_renyi_graph = nx.fast_gnp_random_graph  # same G(n, p) distribution
d = list(Network.__init__.__defaults__); d[-1] = None; Network.__init__.__defaults__ = tuple(d)
from mesa.examples.basic.virus_on_network.model import VirusOnNetwork

n, deg, steps = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
m = VirusOnNetwork(num_nodes=n, avg_node_degree=deg, initial_outbreak_size=max(1, n // 100), rng=1)
t = time.perf_counter()
for _ in range(steps):
    m.step()
sec = (time.perf_counter() - t) / steps
print(json.dumps({"agents": n, "seconds_per_step": sec, "agent_steps_per_s": n / sec}))
