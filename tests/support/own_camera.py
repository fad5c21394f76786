"""The synthetic folder dataset with its true camera and with KITTI's camera forced on the same images,
and one stereo training + evaluation run on either (tests/test_folder_training.py, bench/own_camera.py)."""
import json
import os

import synthetic
import test as test_script
import train


def make_roots(base, size=(128, 96), baseline=0.3, sequences=3, frames=8):
    """(true root, KITTI-camera root, camera dict) of the generated folder dataset."""
    info = synthetic.generate_folder(os.path.join(base, "true_camera"), num_sequences=sequences, frames=frames,
                                     width=size[0], height=size[1], baseline=baseline, progress=False)
    kitti = os.path.join(base, "kitti_camera")
    os.makedirs(kitti, exist_ok=True)
    for seq in info["sequences"]:
        if not os.path.exists(os.path.join(kitti, seq)):
            os.symlink(os.path.join(info["data_path"], seq), os.path.join(kitti, seq))
    camera = dict(info["camera"], fx=0.58 * size[0], fy=1.92 * size[1])
    with open(os.path.join(kitti, "camera.json"), "w") as f:
        json.dump(camera, f)
    return info["data_path"], kitti, info["camera"]


def train_and_evaluate(root, out, seed, steps, size=64, modes=("unscaled", "median"), extra=()):
    """Train stereo on `root` for `steps` steps (more train.py arguments in `extra`); {mode: test.py's
    results} on its test split for each of `modes` ("unscaled", "median"), with the last weights saved."""
    train.main(["--dataset", "folder", "--data_path", root, "--log_dir", out, "--model_name", "run",
                "--height", str(size), "--width", str(size), "--batch_size", "2", "--num_workers", "0",
                "--weights_init", "scratch", "--frame_ids", "0", "--use_stereo", "--no-use_depth_hints",
                "--max_steps", str(steps), "--num_epochs", "1000", "--seed", str(seed), *extra])
    models = os.path.join(out, "run", "models")
    # the last weights written (weights_<epoch> or weights_<epoch>_step<n>): a fixed budget, not the best on val
    weights = max((os.path.join(models, n) for n in os.listdir(models) if n != "best"), key=os.path.getmtime)
    results = {}
    for flag, name in (("--eval_metric", "unscaled"), ("--eval_mono", "median")):
        if name not in modes:
            continue
        test_script.main(["--data_path", root, "--load_weights_folder", weights, flag, "--eval_out_dir", out,
                          "--num_workers", "0"])
        tag = "metric" if name == "unscaled" else "mono"
        with open(os.path.join(out, f"eval_{os.path.basename(os.path.normpath(root))}_{tag}.json")) as f:
            results[name] = json.load(f)
    return results
