"""Depth as an HTTP service on Ray Serve: programs POST a photo and get its depth back.

    python serve.py --load_weights_folder WEIGHTS            # local Ray, http://127.0.0.1:8000
    python serve.py --infer_files_dir deploy/ --backend onnxruntime --replicas 2
    python serve.py --load_weights_folder WEIGHTS --address auto --max_replicas 8   # join a running cluster

    curl -s --data-binary @photo.jpg http://127.0.0.1:8000/depth -o depth.png     # uint16, depth x 256
    curl -s --data-binary @photo.jpg "http://127.0.0.1:8000/depth?format=npy" -o depth.npy
    curl -s http://127.0.0.1:8000/info

POST /depth takes the photo as the body or as the 'image' field of a multipart form and answers the
bytes predict.py writes for it: ?format=png16 (default, <stem>_depth.png), npy (<stem>_depth.npy),
disp_npy (<stem>_disp.npy) or color (?colormap=NAME, the colour map of <stem>_disp.jpeg as PNG);
headers X-Depth-Units (metres | relative), X-Depth-Scale-Factor and X-Depth-Model say what it holds.
Metres or relative depth follow the weights as for predict.py (deploy.json for an exported model;
--pred_depth_scale_factor F always wins). Bad requests get a 4xx and a one-line JSON
{"error": ...}; a full queue answers 503 at once. The whole API: docs/serving.md.

Options are checked before Ray (or Paddle) is imported; without Ray installed this says how to get it
(pip install -r requirements-serve.txt).
"""
import os
import socket
import sys

import options


def port_taken(host, port):
    """True when something on this machine already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def main(argv=None):
    opt = options.parse("serve", argv)
    for name in ("load_weights_folder", "infer_files_dir"):   # replicas run in other folders (on other nodes)
        opt[name] = opt[name] and os.path.abspath(opt[name])
    if not (opt.address or os.environ.get("RAY_ADDRESS")) and port_taken(opt.host, opt.port):
        sys.exit(f"serve.py: error: {opt.host}:{opt.port} is already in use: pick another --port")
    if opt.infer_files_dir:   # a broken export is said before Ray starts
        from deployment import DeployError, read_config
        try:
            read_config(opt.infer_files_dir, opt.backend)
        except DeployError as e:
            sys.exit(f"serve.py: error: {e}")
    from deployment import ray_serve
    try:
        ray_serve.serve_forever(opt)
    except ray_serve.DeployFailed as e:
        sys.exit(f"serve.py: error: the service could not start: {e}")


if __name__ == "__main__":
    main()
