"""The output layer's three GEMMs at PTB size through numpy (OpenBLAS), for comparison with
`cellc bench --profile`'s output-layer lines on the same machine.

    $CELLC_VENV/bin/python bench/output_gemms.py [--threads 2] [--rows 700] [--hidden 200] [--vocab 10000]

Prints each product's median time over 20 runs and its GFLOP/s (2 * m * n * k flops).
"""
import argparse
import os
import statistics
import time

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--rows", type=int, default=700, help="T*B (PTB: 35 * 20)")
parser.add_argument("--hidden", type=int, default=200)
parser.add_argument("--vocab", type=int, default=10000)
parser.add_argument("--repeats", type=int, default=20)
args = parser.parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
import numpy as np  # noqa: E402  (after the thread count is set)

rng = np.random.default_rng(1)
n, h, v = args.rows, args.hidden, args.vocab
hs = rng.standard_normal((n, h), dtype=np.float32)
w = rng.standard_normal((v, h), dtype=np.float32)  # out_w [V, H], as cellc stores it
dlogits = rng.standard_normal((n, v), dtype=np.float32)
products = {
    "logits = h . W^T      [T*B,H]x[H,V]": lambda: hs @ w.T,
    "dW = dlogits^T . h    [V,T*B]x[T*B,H]": lambda: dlogits.T @ hs,
    "dh = dlogits . W      [T*B,V]x[V,H]": lambda: dlogits @ w,
}
flops = 2.0 * n * h * v
total = 0.0
for name, f in products.items():
    f()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    total += med
    print(f"{name}: {med * 1e3:7.2f} ms  {flops / med / 1e9:6.1f} GFLOP/s  (min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f})")
print(f"three GEMMs: {total * 1e3:.2f} ms, {3 * flops / total / 1e9:.1f} GFLOP/s ({np.__version__}, {args.threads} threads)")
