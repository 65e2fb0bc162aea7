"""What torchsde's BrownianTree and numpy's SeedSequence give, for
tests/unit/test_brownian_tree.c: the pieces of diffusers' DPMSolverSDEScheduler noise.

  - seed_sequence: SeedSequence(entropy, spawn_key=..., pool_size=...).generate_state(4);
  - randint: torch.manual_seed(s); torch.randint(0, 2**63 - 1, []).item() (the scheduler's
    seed when its config has none), and the generator's next draws;
  - trees: torchsde.BrownianTree(t0, zeros(shape), t1, entropy=e) queried over a run's
    intervals (sigmas, as the scheduler asks: the smaller time first), the whole
    interval, times outside it (clamped) and an empty interval.

    .venv-torch/bin/python scripts/reference/make_brownian_cases.py

Needs torchsde==0.2.6 (pip) besides the venv's torch. Seeded: a rerun writes the same files.
"""
import json
import os
import warnings

import numpy as np
import torch
import torchsde

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "reference", "brownian")


def f32(x):
    return float(np.float32(x))


def main():
    os.makedirs(OUT, exist_ok=True)
    man = {"generator": {"torch": torch.__version__, "torchsde": torchsde.__version__,
                         "numpy": np.__version__},
           "seed_sequence": [], "randint": [], "trees": []}
    for entropy, key, pool in [(0, [], 4), (12345, [], 24), (12345, [0, 0], 24),
                               (2**62 + 12345, [5, 3], 24), (4294967296, [1234567, 23], 24),
                               (7, [1], 8), (9223372036854775806, [2**40 + 3, 41], 24)]:
        state = np.random.SeedSequence(entropy, spawn_key=tuple(key), pool_size=pool)
        man["seed_sequence"].append({"entropy": str(entropy), "spawn_key": [str(k) for k in key],
                                     "pool_size": pool,
                                     "state": [int(v) for v in state.generate_state(4)]})
    for seed in (0, 1, 100, 2**32 + 5):
        torch.manual_seed(seed)
        v = torch.randint(0, 2**63 - 1, []).item()
        man["randint"].append({"seed": seed, "value": str(v),
                               "after": [f32(x) for x in torch.randn(4)]})

    warnings.simplefilter("ignore")  # the clamped queries warn
    cases = [
        ("sd14", 12345, 0.029167532, 14.614641, (1, 4, 4, 4)),
        ("big_entropy", 2**62 + 987654321, 0.0436, 7.25, (2, 4, 3, 5)),
        ("scalar_path", 3, 0.5, 2.0, (3,)),
    ]
    for name, entropy, t0, t1, shape in cases:
        t0, t1 = torch.tensor(t0), torch.tensor(t1)  # float32, as diffusers' sigmas are
        tree = torchsde.BrownianTree(t0, torch.zeros(shape), t1, entropy=entropy)
        sig = np.exp(np.linspace(np.log(float(t1)), np.log(float(t0)), 7)).astype(np.float32)
        queries = []
        for a, b in zip(sig[1:], sig[:-1]):
            mid = np.float32(np.exp(0.5 * (np.log(a) + np.log(b))))
            queries += [(mid, b), (a, b)]
        queries += [(t0, t1), (float(t0) - 0.5, 1.0), (1.0, float(t1) + 3), (1.25, 1.25),
                    (0.7000004, 0.7000006)]
        outs, qs = [], []
        for a, b in queries:
            a = a if isinstance(a, float) else float(a)
            b = b if isinstance(b, float) else float(b)
            outs.append(tree(torch.tensor(a, dtype=torch.float64).item(), b).numpy().copy())
            qs.append([a, b])
        fname = "tree_%s.npy" % name
        np.save(os.path.join(OUT, fname), np.stack(outs).astype(np.float32))
        man["trees"].append({"name": name, "entropy": str(entropy), "t0": float(t0),
                             "t1": float(t1), "shape": list(shape), "queries": qs,
                             "out": fname})
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
