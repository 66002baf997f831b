# A verbatim copy of the team's shared benchmark script (../shared/bench/limit_kernel.py), kept so the
# performance figures can be reproduced from a clone; benchmarks/bench_engine.py prefers the
# shared original when it is there.
"""Floor for one step of a vectorised network-influence ABM: the work no implementation can skip.

Per step: three weighted neighbour aggregations (CSR sparse matrix-vector products, one per
state variable: vision, value, action) and three uniform draws per agent, plus elementwise updates.
Prints the median seconds per step. Used by the performance bar as the 'limit' side of a ratio.
"""
import sys, time, json
import numpy as np
import scipy.sparse as sp


def graph_csr(n: int, degree: float, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = int(n * degree / 2)
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    w = rng.random(src.size)
    a = sp.coo_matrix((np.r_[w, w], (np.r_[src, dst], np.r_[dst, src])), shape=(n, n)).tocsr()
    a.sum_duplicates()
    deg = np.asarray(a.sum(axis=1)).ravel()
    deg[deg == 0] = 1.0
    return sp.diags(1.0 / deg) @ a


def run(n: int, degree: float, steps: int) -> float:
    a = graph_csr(n, degree)
    rng = np.random.default_rng(1)
    s = rng.random((3, n))
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        for k in range(3):
            nb = a @ s[k]
            u = rng.random(n)
            s[k] += 0.1 * (nb - s[k]) * (u < 0.5)
        np.clip(s, 0.0, 1.0, out=s)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    degree = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    sec = run(n, degree, steps)
    print(json.dumps({"agents": n, "degree": degree, "seconds_per_step": sec,
                      "agent_steps_per_s": n / sec}))
