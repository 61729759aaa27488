"""Scratch probe: cost of B=1 matrix-vector products and of dependent kernel chains."""
import time, json, os
import jax, jax.numpy as jnp, numpy as np

def bench(f, *a, reps=50):
  jax.block_until_ready(f(*a))
  ts = []
  for _ in range(reps):
    t = time.perf_counter(); jax.block_until_ready(f(*a)); ts.append(time.perf_counter() - t)
  return float(np.median(ts)) * 1e6

res = {}
k = jax.random.PRNGKey(0)
for (n_in, n_out) in [(864, 2592), (1728, 864), (864, 50257)]:
  W = jax.random.normal(k, (n_in, n_out)); WT = W.T.copy(); x = jax.random.normal(k, (1, n_in))
  for name, f in [("x@W", lambda x, W, WT: x @ W), ("WT@x", lambda x, W, WT: (WT @ x.T).T),
                  ("sum(WT*x)", lambda x, W, WT: jnp.sum(WT * x, axis=1)[None]),
                  ("x8@W", lambda x, W, WT: jnp.tile(x, (8, 1)) @ W)]:
    g = jax.jit(lambda x, W, WT, f=f: jax.lax.fori_loop(0, 20, lambda i, y: y + 1e-3 * f(x + y * 0, W, WT)[:1, :1], jnp.zeros((1, 1))))
    us = bench(g, x, W, WT) / 20
    gbps = n_in * n_out * 4 / (us * 1e-6) / 1e9
    res[f"{name} {n_in}x{n_out}"] = (us, gbps)
    print(f"{name:10s} {n_in}x{n_out}: {us:8.2f} us  {gbps:7.0f} GB/s", flush=True)
# launch gap: a chain of N dependent small elementwise kernels that XLA cannot fuse
for n in [10, 100]:
  def chain(x):
    for i in range(n):
      x = jax.lax.optimization_barrier(jnp.sin(x) + 1.0)
    return x
  us = bench(jax.jit(chain), jnp.ones((864,)))
  res[f"chain{n}"] = us / n
  print(f"dependent kernel chain of {n}: {us / n:.2f} us per kernel", flush=True)
json.dump(res, open(os.path.join(os.environ.get("OUT", "/tmp"), "matvec.json"), "w"), indent=1)
