"""int8 (and bf16 where the CPU has it) against fp32 ONNX Runtime for trained weights: latency ratio and
the gate split's task metrics of each model (export.py --precision's gate, deployment/gate.py).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/quantized.py \\
        --weights logs/quickstart/models/best logs/quickstart_qat/models/weights_0

Per weights folder, at --height x --width (192 x 640): the fp32 ONNX model; "int8, every convolution"
(onnxruntime.quantization, min-max on --calib_count photos: plain post-training quantisation); "int8,
accuracy control" (what export.py --precision int8 writes: NNCF's accuracy control keeps the
convolutions float that the gate needs); bf16 (Paddle Inference, oneDNN) only on CPUs with AVX-512 BF16
or AMX. The ONNX Runtime models are timed alternately in one process (medians of --repeats rounds,
B = 1) and the ratio to fp32 is printed with the abs_rel / a1 of each on the gate split and the gate's
verdict. The floors: the network's FLOPs (bench/flops.py) over numpy's sgemm rate, and its MACs over
ONNX Runtime's uint8 x int8 MatMulInteger rate. Prints markdown rows for bench/RESULTS.md.
"""
import argparse
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def timed_rounds(runs, x, repeats):
    """{name: median seconds} of the callables `runs` run alternately, one call each per round."""
    for run in runs.values():
        run(x)
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run(x)
            times[name].append(time.perf_counter() - t)
    return {name: float(np.median(v)) for name, v in times.items()}


def bench_weights(folder, args, log):
    """Markdown rows of one weights folder."""
    import networks
    from deployment import gate, int8, quantize
    from deployment.export import export_models
    from utils.geometry.depth import depth_scale
    from utils.geometry.metrics import mean_metrics
    from utils.io import image_io

    weights, nets = networks.load_weights_folder(folder, ("depth",))
    factor, metric, _ = depth_scale(weights.get("use_stereo"), metric=weights.get("metric"))
    extra = {"min_depth": float(weights.min_depth), "max_depth": float(weights.max_depth), "metric": metric,
             "depth_scale_factor": factor}
    lo, hi = extra["min_depth"], extra["max_depth"]
    split = gate.GateSplit(args.gate_split, args.height, args.width, metric, factor)
    calib = [image_io.preprocess(image_io.load_image(p), args.height, args.width) for p in
             int8.calibration_images(int8.find_images(args.calib_images), split.paths, args.calib_count)]
    bounds = gate.Bounds(args.max_abs_rel_change, args.max_delta1_change)
    rows, x = [], split.inputs[0]
    with tempfile.TemporaryDirectory() as tmp:
        fp32_dir, ctrl_dir, work = (os.path.join(tmp, d) for d in ("fp32", "int8", "work"))
        os.makedirs(ctrl_dir)
        os.makedirs(work)
        export_models(nets["depth"], fp32_dir, args.height, args.width, "combined", ("paddle", "onnx"), extra)
        fp32_path = os.path.join(fp32_dir, "model.onnx")
        prepared, every = os.path.join(work, "prepared.onnx"), os.path.join(work, "every_conv.onnx")
        int8.prepare_onnx(fp32_path, prepared)
        int8.quantize_int8(prepared, every, int8.calibrate(prepared, [{"image": c} for c in calib], work), [])
        sessions = {"fp32": int8.session(fp32_path, args.threads), "every": int8.session(every, args.threads)}
        errors = {name: split.errors(int8.disparities(s, split.inputs), lo, hi) for name, s in sessions.items()}
        labels = {"fp32": "fp32 ONNX Runtime", "every": "int8, every convolution (post-training, min-max)"}
        if args.control:
            t0 = time.perf_counter()
            config, _, errors["ctrl"], _, kept = int8.build_int8(fp32_dir, ctrl_dir, calib, split, bounds,
                                                                 args.threads, log)
            sessions["ctrl"] = int8.session(os.path.join(ctrl_dir, config["parts"]["model"]["files"]["onnx"]),
                                            args.threads)
            names = ", ".join(kept["float_convs"][:3]) + (", ..." if len(kept["float_convs"]) > 3 else "")
            labels["ctrl"] = (f"int8, accuracy control ({len(kept['float_convs'])} of {kept['convs']} convolutions "
                              f"float{': ' + names if names else ''}; built in {time.perf_counter() - t0:.0f} s)")
        runs = {name: (lambda a, s=s: s.run(None, {"image": a})) for name, s in sessions.items()}
        times = timed_rounds(runs, x, args.repeats)
        before = mean_metrics(errors["fp32"])
        for name in sessions:
            m = mean_metrics(errors[name])
            verdict = "" if name == "fp32" else ("accepted" if gate.score(before, m, bounds) <= 1 else "refused")
            change = "" if name == "fp32" else " ({:+.2%}, {:+.2f} pt)".format(*gate.changes(before, m))
            rows.append(f"| {os.path.normpath(folder)} | {labels[name]} | {times[name] * 1e3:.0f} ms | "
                        f"{times['fp32'] / times[name]:.2f}x | {m['abs_rel']:.4f} / {100 * m['a1']:.2f} %{change} | "
                        f"{verdict} |")
        if quantize.bf16_supported():
            os.makedirs(ctrl_dir + "_bf16")
            _, e32, e16, _, _ = quantize.build_bf16(fp32_dir, ctrl_dir + "_bf16", split, args.threads)
            rows.append(f"| {os.path.normpath(folder)} | bf16 (Paddle Inference) | | | "
                        f"{mean_metrics(e16)['abs_rel']:.4f} | |")
        else:
            rows.append(f"| {os.path.normpath(folder)} | bf16 | not run: no AVX-512 BF16 / AMX on this CPU | | | |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", required=True, help="weights folders")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--gate_split", default=os.path.join("data", "synthetic_kitti"))
    parser.add_argument("--calib_images", default=os.path.join("data", "synthetic_kitti"))
    parser.add_argument("--calib_count", type=int, default=16)
    parser.add_argument("--max_abs_rel_change", type=float, default=0.01)
    parser.add_argument("--max_delta1_change", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--no_control", dest="control", action="store_false",
                        help="skip the accuracy-controlled int8 model (its search takes long at 192 x 640)")
    args = parser.parse_args()

    import paddle

    import networks
    from bench.flops import count_flops, int8_matmul_rate, sgemm_rate

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(args.threads)
    rate, rate8 = sgemm_rate(), int8_matmul_rate(threads=args.threads)
    net = networks.build_nets(use_pose=False)["depth"]
    image = paddle.rand([1, 3, args.height, args.width])
    flops = count_flops(lambda: net.disparity(image), [net])
    out = []
    for folder in args.weights:
        out += bench_weights(folder, args, print)
    rate, rate8 = max(rate, sgemm_rate()), max(rate8, int8_matmul_rate(threads=args.threads))
    cpu = platform.processor() or platform.machine()
    print(f"\n{args.height} x {args.width}, batch 1, {args.threads} threads, {cpu}; "
          f"network {flops / 1e9:.1f} GFLOP: fp32 floor {flops / rate * 1e3:.0f} ms (numpy sgemm {rate / 1e9:.0f} "
          f"GFLOP/s), int8 floor {flops / 2 / rate8 * 1e3:.0f} ms (MatMulInteger {rate8 / 1e9:.0f} GMAC/s); "
          f"gate split {args.gate_split}, bounds {args.max_abs_rel_change:.2%} abs_rel / {args.max_delta1_change:g} "
          "points a1")
    print("\n| weights | model | median latency | speed-up vs fp32 | abs_rel / a1 on the gate split | gate |\n"
          "| --- | --- | --- | --- | --- | --- |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
