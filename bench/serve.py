"""Requests per second and latency of serve.py's service against the one-process rate, and its memory.

    python bench/serve.py [--height 192 --width 640] [--model onnxruntime|paddle|eager] [--replicas 1]

One run, one machine: fresh tamed weights at the network size (as bench/inference.py; timing does not
depend on the values) and their export (export.py's export_models, combined, Paddle + ONNX), a KITTI-sized
JPEG (skimage's astronaut at 1242 x 375, quality 95). A request's work is the same everywhere: decode the
JPEG bytes, predict, encode the 16-bit depth PNG (image_io.encode_prediction).
1. One process, every core, a loop over the photo: Predictor (eager Paddle) and the inference.py path
   (DepthPredictor on the export, Paddle Inference with oneDNN and ONNX Runtime): requests/s. Measured
   before and after the service, so that a change of the machine's load shows.
2. The service on a local Ray (--model's backend, --replicas replicas sharing every core, --max_batch_size 4,
   5 ms batch wait), called with `requests` from threads of this process: --requests requests at
   concurrency 1, 4 and 16; requests/s, p50/p95/p99 latency, errors.
3. Resident memory of the service (replicas + Serve's proxy) after 100 and after --memory_requests requests.
CPU seconds per request (the service's Ray processes, and this process's client threads) are printed
beside the rates: unlike requests/s, they hardly change when other work shares the machine.
Prints markdown tables for bench/RESULTS.md, with the load average before and after.
"""
import argparse
import io
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

IDLE_SECONDS = 10
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def photo_bytes():
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((1242, 375), Image.LANCZOS).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def one_process_rate(predict_disp, model, jpeg, count):
    """(requests/s, CPU seconds per request) of decode + predict + encode in a loop (after one warm-up)."""
    from utils.io import image_io

    def request():
        image = image_io.load_image(jpeg)
        disp = predict_disp(image)
        image_io.encode_prediction(disp, image.size, ["depth_png"], model.scale_factor, "magma", model.min_depth,
                                   model.max_depth)
    request()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        request()
    return count / (time.perf_counter() - start), (time.process_time() - cpu) / count


def one_process_rows(weights, export_dir, jpeg, count, threads):
    """{path: (requests/s, CPU s per request)} of the one-process loops."""
    from deployment import DepthPredictor
    from deployment import Predictor

    eager = Predictor(weights, eager=True)
    rows = {"Predictor (eager Paddle)": one_process_rate(eager.predict_disp, eager, jpeg, max(2, count // 4))}
    for name, backend in (("inference.py path, Paddle Inference oneDNN", "paddle"),
                          ("inference.py path, ONNX Runtime", "onnxruntime")):
        deployed = DepthPredictor(export_dir, backend, cpu_threads=threads)
        rows[name] = one_process_rate(lambda image: deployed(image)[0, 0], deployed, jpeg, count)
    return rows


def burst(url, jpeg, count, concurrency):
    """(requests/s, latencies in s, errors) of `count` POSTs from `concurrency` threads."""
    import requests

    sessions = {}

    def one(_):
        import threading
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        start = time.perf_counter()
        try:
            ok = session.post(url, data=jpeg, timeout=600).status_code == 200
        except requests.RequestException:
            ok = False
        return time.perf_counter() - start, ok

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(count)))
    wall = time.perf_counter() - start
    return count / wall, np.array([t for t, _ in results]), sum(not ok for _, ok in results)


ROLES = (("replica", "ray::ServeReplica"), ("proxy", "ray::ProxyActor"))


def ray_cpu_seconds():
    """{role: CPU seconds so far} of this process's local Ray: the replicas, Serve's proxy, and the rest
    (controller, raylet, GCS, agents)."""
    import psutil

    total = {"replica": 0.0, "proxy": 0.0, "rest": 0.0}
    for p in psutil.Process().children(recursive=True):
        try:
            title, times = " ".join(p.cmdline()), p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        role = next((r for r, prefix in ROLES if title.startswith(prefix)), "rest")
        total[role] += times.user + times.system
    return total


def since(cpu_before, divisor):
    after = ray_cpu_seconds()
    return {role: (after[role] - cpu_before[role]) / divisor for role in after}


def service_rss():
    """Resident bytes of the replicas and of Serve's proxy (children of this process's Ray)."""
    import psutil

    total = {"replicas": 0, "proxy": 0}
    for p in psutil.Process().children(recursive=True):
        try:
            title = " ".join(p.cmdline())
            if title.startswith("ray::ServeReplica"):
                total["replicas"] += p.memory_info().rss
            elif title.startswith("ray::ProxyActor"):
                total["proxy"] += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def processor():
    """The CPU's model name (/proc/cpuinfo), else what platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        flags = open("/proc/cpuinfo").read()
        return names[0] + (", AVX-512" if " avx512f" in flags else ", AVX2" if " avx2" in flags else "")
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--model", choices=["onnxruntime", "paddle", "eager"], default="onnxruntime",
                        help="what the service runs: the export on ONNX Runtime or Paddle Inference, or the weights "
                             "on eager Paddle (default: %(default)s)")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
    parser.add_argument("--memory_requests", type=int, default=1000)
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    load_start = os.getloadavg()[0]

    import paddle
    from skimage import data

    import networks
    import options
    from deployment import ray_cluster, ray_serve
    from deployment.export import export_models
    from tests.support.local_ray import free_port, shutdown
    from tests.support.lsuv import tame_weights
    from utils.io import image_io
    from utils.system import set_cpu_threads

    set_cpu_threads(threads)
    paddle.seed(0)
    net = networks.build_nets(use_pose=False)["depth"]
    tame_weights(net, paddle.to_tensor(image_io.preprocess(image_io.load_image(data.astronaut()), args.height,
                                                           args.width)))
    jpeg = photo_bytes()
    tmp = tempfile.mkdtemp(prefix="bench_serve_")
    weights, export_dir = os.path.join(tmp, "weights"), os.path.join(tmp, "export")
    networks.save_weights_folder(weights, {"depth": net}, {"height": args.height, "width": args.width})
    export_models(net, export_dir, args.height, args.width, "combined", ("paddle", "onnx"))

    before = one_process_rows(weights, export_dir, jpeg, args.requests // 3, threads)
    port = free_port()
    model = ["--load_weights_folder", weights, "--eager"] if args.model == "eager" else ["--infer_files_dir", export_dir,
                                                                             "--backend", args.model]
    opt = options.parse("serve", model + ["--port", str(port), "--replicas", str(args.replicas),
                                          "--worker_cpus", str(threads / args.replicas)])
    ray_cluster.connect()
    url = f"http://127.0.0.1:{port}/depth"
    levels, memory = {}, {}
    try:
        ray_serve.start(opt)
        burst(url, jpeg, 4, 4)   # warm-up
        burst(url, jpeg, 96, 16)
        memory[100] = service_rss()
        cpu = ray_cpu_seconds()
        time.sleep(IDLE_SECONDS)
        idle = since(cpu, IDLE_SECONDS)   # CPU s per s of the service doing nothing
        for concurrency in (1, 4, 16):
            cpu, client = ray_cpu_seconds(), time.process_time()
            levels[concurrency] = burst(url, jpeg, args.requests, concurrency) + (
                since(cpu, args.requests), (time.process_time() - client) / args.requests)
        memory_errors = burst(url, jpeg, args.memory_requests - 100 - 3 * args.requests, 16)[2]
        memory[args.memory_requests] = service_rss()
    finally:
        left = shutdown()
    after = one_process_rows(weights, export_dir, jpeg, args.requests // 3, threads)

    cpu = processor()
    print(f"\nload average (1 min) at the start {load_start:.1f}, at the end {os.getloadavg()[0]:.1f}")
    print(f"\n{args.height} x {args.width} network, 1242 x 375 JPEG, {threads} cores ({cpu}), service: {args.model}, "
          f"{args.replicas} replica(s) x {threads / args.replicas:g} CPUs, --max_batch_size 4, 5 ms wait; "
          f"Paddle {paddle.__version__}")
    print("\n| one process (decode, predict, encode PNG16) | requests/s before | after | CPU s / request before | after |"
          "\n| --- | --- | --- | --- | --- |")
    for name in before:
        print(f"| {name} | {before[name][0]:.2f} | {after[name][0]:.2f} | {before[name][1]:.3f} | {after[name][1]:.3f} |")
    reference = {"eager": "Predictor (eager Paddle)", "paddle": "inference.py path, Paddle Inference oneDNN",
                 "onnxruntime": "inference.py path, ONNX Runtime"}[args.model]
    one = (before[reference][0] + after[reference][0]) / 2
    one_cpu = (before[reference][1] + after[reference][1]) / 2
    print(f"\n| concurrency | requests/s | x one process ({reference}, mean {one:.2f}/s) | p50 | p95 | p99 | errors |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for concurrency, (rate, latency, errors, _, _) in levels.items():
        p50, p95, p99 = (np.percentile(latency, q) * 1e3 for q in (50, 95, 99))
        print(f"| {concurrency} | {rate:.2f} | {rate / one:.2f} | {p50:.0f} ms | {p95:.0f} ms | {p99:.0f} ms | "
              f"{errors} |")
    print(f"\nCPU seconds per request (one process, {reference}: {one_cpu:.3f}); the service idle uses "
          f"{sum(idle.values()):.3f} CPU s per s (replica {idle['replica']:.3f}, proxy {idle['proxy']:.3f}, rest "
          f"{idle['rest']:.3f})\n\n| concurrency | service | replica | proxy | rest of Ray | client (this process) |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for concurrency, (_, _, _, service_cpu, client_cpu) in levels.items():
        print(f"| {concurrency} | {sum(service_cpu.values()):.3f} | {service_cpu['replica']:.3f} | "
              f"{service_cpu['proxy']:.3f} | {service_cpu['rest']:.3f} | {client_cpu:.3f} |")
    print("\n| requests served | replicas RSS | proxy RSS |\n| --- | --- | --- |")
    for count, rss in memory.items():
        print(f"| {count} | {rss['replicas'] / 2 ** 20:.0f} MiB | {rss['proxy'] / 2 ** 20:.0f} MiB |")
    first, last = memory[100], memory[args.memory_requests]
    growth = (last["replicas"] + last["proxy"]) / (first["replicas"] + first["proxy"]) - 1
    print(f"\ngrowth from 100 to {args.memory_requests} requests: {growth:+.1%} (errors of the requests after the "
          f"levels: {memory_errors}); Ray processes left after shutdown: {len(left)}")


if __name__ == "__main__":
    main()
