"""True camera vs KITTI's camera forced on the same images: stereo training on the synthetic folder layout.

    python bench/own_camera.py --seeds 0 1 2 --steps 60

The synthetic street is written in the folder layout with a camera unlike KITTI's (4:3, fx = fy =
0.75 W, baseline 0.3 m). A copy of the dataset (its sequences symlinked) carries KITTI's intrinsics
instead (fx = 0.58 W, fy = 1.92 H, the loader's fixed camera before the folder layout), with the same
baseline. The same stereo run (frames 0 + "s", from scratch, batch 2) is trained on each at one
budget, then test.py evaluates both on the test split, unscaled (stereo with a real baseline gives
metres) and median-scaled. Prints one row per camera and seed.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.own_camera import make_roots, train_and_evaluate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--size", type=int, default=64, help="network height and width")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        true_root, kitti_root, camera = make_roots(base)
        print(f"camera {camera}; KITTI's forced: fx {0.58 * camera['width']:.1f} fy {1.92 * camera['height']:.1f}")
        rows = []
        for seed in args.seeds:
            for name, root in (("true", true_root), ("KITTI forced", kitti_root)):
                r = train_and_evaluate(root, os.path.join(base, f"{name.split()[0]}_{seed}"), seed, args.steps,
                                       args.size)
                rows.append((name, seed, r["unscaled"]["metrics"]["abs_rel"], r["median"]["metrics"]["abs_rel"],
                             r["unscaled"]["ratio_median"]))
        print("\n| camera | seed | unscaled abs_rel | median-scaled abs_rel | median ratio gt/pred |")
        print("|---|---|---|---|---|")
        for name, seed, unscaled, median, ratio in rows:
            print(f"| {name} | {seed} | {unscaled:.3f} | {median:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
