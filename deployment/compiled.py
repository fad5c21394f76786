"""The compiled network of a weights folder: what deployment.Predictor runs unless told eager=True.

The depth network (and the diffusion head's step programs, when used) is exported once with
deployment/export.py (export_refine.py) at the folder's input size into a cache entry, then run through
DepthPredictor's sessions (deployment/runtime.py: ONNX Runtime, or Paddle Inference with oneDNN and its
in-place pass off, which otherwise miscomputes the guided filter). One export, one runtime: the same code as
export.py and inference.py.

Cache: $MLDA_CACHE_DIR, else ~/.cache/mlda-net; one folder per entry, named
<height>x<width>_<backend>_<key prefix>. The key hashes what the program depends on: the content of the
folder's encoder.pdparams and depth.pdparams (refine.pdparams and refine.json when the head is used), the
options of its opt.json that the program is built from (PROGRAM_OPTIONS: what opt.json records about the run
is not), the guided filter's batch coupling, the backend and the versions of Paddle (and paddle2onnx), so a
changed folder gets a new entry and an old one is never served. An entry is written in a temporary folder and
published by one rename (utils.io.fileio.new_folder): processes compiling the same key at once each get a
complete entry; one that fails its check (compiled.json lists every file and its size) is rebuilt. Each
entry holds the model once (about the size of encoder.pdparams + depth.pdparams: ~150 MB for ResNet-18);
nothing is deleted automatically: remove the folder, or entries of old weights, any time.
"""
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import asdict, dataclass
from importlib import metadata
from importlib.util import find_spec

from deployment.config import CONFIG_NAME, DeployError
from deployment.runtime import REFINE_CONFIG, DepthPredictor
from utils.io.fileio import atomic_write_text, discard_folder, new_folder

CACHE_ENV = "MLDA_CACHE_DIR"
CACHE_FORMAT = 1          # raise when an entry's content changes meaning: older entries are then not used
ENTRY_FILE = "compiled.json"   # written last into an entry: its check
HASHED_FILES = ("encoder.pdparams", "depth.pdparams")
# the options of opt.json that the exported program is built from (export_entry); the rest of opt.json (where
# the run logged, what it was trained on) is metadata, and editing it must not cost a rebuild
PROGRAM_OPTIONS = ("num_layers", "scales", "min_depth", "max_depth")
HEAD_FILES = ("refine.pdparams", "refine.json")


def cache_root():
    """The cache folder: $MLDA_CACHE_DIR, else ~/.cache/mlda-net."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mlda-net")


def backends(device="cpu"):
    """The backends to compile for on `device` ("cpu" or "gpu"), fastest first: ONNX Runtime when onnxruntime
    and paddle2onnx are installed (on a GPU only with its CUDA provider; measured faster than Paddle
    Inference with oneDNN at 192 x 640 on the CPU, bench/RESULTS.md), then Paddle Inference."""
    found = []
    if find_spec("onnxruntime") and find_spec("paddle2onnx"):
        import onnxruntime
        if device == "cpu" or "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            found.append("onnxruntime")
    return found + ["paddle"]


@dataclass
class CompileSpec:
    """What a compiled program depends on besides the weights' files."""
    height: int
    width: int
    batch_coupled_filter: bool
    refine: bool        # the diffusion head's step programs too (its steps, strength and seed are run-time inputs)
    backend: str        # "onnxruntime" or "paddle"


def _versions(backend):
    names = ("paddlepaddle", "paddle2onnx") if backend == "onnxruntime" else ("paddlepaddle",)
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:   # a source build: its module's own version
            found[name] = getattr(sys.modules.get(name.replace("paddlepaddle", "paddle")), "__version__", "?")
    return found


def cache_key(weights_folder, spec):
    """sha256 (hex) of the weights' files the program is built from, the options of opt.json it depends on
    (PROGRAM_OPTIONS), `spec`, the cache format and the versions of the exporting tools."""
    digest = hashlib.sha256()
    for name in HASHED_FILES + (HEAD_FILES if spec.refine else ()):
        path = os.path.join(weights_folder, name)
        digest.update(name.encode() + b"\0")
        if os.path.isfile(path):
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        digest.update(b"\0end\0" if os.path.isfile(path) else b"\0missing\0")
    from networks import read_opt   # CheckpointError for an opt.json that is not JSON, as export_entry's
    opt = read_opt(weights_folder)
    settings = dict(asdict(spec), format=CACHE_FORMAT, versions=_versions(spec.backend),
                    options={name: opt.get(name) for name in PROGRAM_OPTIONS})
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def entry_folder(key, spec, root=None):
    return os.path.join(root or cache_root(), f"{spec.height}x{spec.width}_{spec.backend}_{key[:24]}")


def entry_problem(entry):
    """Why cache entry `entry` cannot be used (missing, incomplete, a file of the wrong size), or None."""
    try:
        with open(os.path.join(entry, ENTRY_FILE)) as f:
            files = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {ENTRY_FILE}"
    for name, size in files.items():
        path = os.path.join(entry, name)
        if not os.path.isfile(path) or os.path.getsize(path) != size:
            return f"{name} is missing or not {size} bytes"
    return None


@contextmanager
def _captured(sink):
    """What the block prints, kept off the screen: Python's sys.stdout / sys.stderr and the process's file
    descriptors 1 and 2 (where paddle2onnx and Paddle's C++ code print); the text is appended to `sink`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    python_text = io.StringIO()
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            with redirect_stdout(python_text), redirect_stderr(python_text):
                yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            capture.seek(0)
            sink.append(capture.read().decode(errors="replace") + python_text.getvalue())


def _drop_paddle_files(folder, config_name):
    """An ONNX Runtime entry keeps only the .onnx models: the Paddle programs they were converted from go."""
    path = os.path.join(folder, config_name)
    with open(path) as f:
        config = json.load(f)
    for part in config["parts"].values():
        for kind in ("program", "params"):
            name = part["files"].pop(kind, None)
            if name:
                os.remove(os.path.join(folder, name))
    config["formats"] = ["onnx"]
    atomic_write_text(path, json.dumps(config, indent=2))


def export_entry(weights_folder, spec, folder):
    """Export the folder's network (and head) for spec.backend into `folder`, an empty folder of the cache.
    Raises networks.CheckpointError for weights that do not load."""
    import networks
    from deployment.export import export_models
    from deployment.export_refine import export_refine

    opt, nets = networks.load_weights_folder(weights_folder, ("depth",), spec.batch_coupled_filter)
    formats = ("paddle", "onnx") if spec.backend == "onnxruntime" else ("paddle",)
    depth_range = {"min_depth": float(opt.min_depth), "max_depth": float(opt.max_depth)}
    export_models(nets["depth"], folder, spec.height, spec.width, "combined", formats, depth_range)
    if spec.refine:
        head = networks.RefinedDepthNet(nets["depth"], networks.load_refine_head(weights_folder))
        export_refine(head, folder, spec.height, spec.width, (), formats)
    if spec.backend == "onnxruntime":
        _drop_paddle_files(folder, CONFIG_NAME)
        if spec.refine:
            _drop_paddle_files(folder, REFINE_CONFIG)


@dataclass
class Compiled:
    """A compiled network ready to run: `predictor` (a DepthPredictor: predictor(B x 3 x H x W float32) ->
    sigmoid disparity), the cache `entry` it runs from, `built` (True when this call compiled it) and `note`,
    the one line to tell the user."""
    predictor: DepthPredictor
    entry: str
    built: bool
    note: str


def compile_network(weights_folder, spec, device="cpu", cpu_threads=0, ddim_steps=None, strength=None,
                    noise_seed=None):
    """The compiled network of `weights_folder` for `spec` from the cache, compiled into it first when absent or
    damaged (a damaged entry is discarded and rebuilt). Raises networks.CheckpointError for weights that do not
    load and DeployError (one line) when the export or its runtime fails."""
    key = cache_key(weights_folder, spec)
    entry = entry_folder(key, spec)
    size = f"{spec.height} x {spec.width}"

    def open_entry():
        return DepthPredictor(entry, spec.backend, device, cpu_threads, refine=spec.refine, ddim_steps=ddim_steps,
                              strength=strength, noise_seed=noise_seed)

    if os.path.isdir(entry):
        if entry_problem(entry) is None:
            try:
                return Compiled(open_entry(), entry, False,
                                f"using the network compiled for {size} on {spec.backend} (cached in {entry})")
            except Exception:  # noqa: BLE001  (an entry the runtime cannot read is rebuilt like a damaged one)
                pass
        discard_folder(entry)
    start = time.perf_counter()
    printed = []
    try:
        with new_folder(entry) as tmp, _captured(printed):
            export_entry(weights_folder, spec, tmp)
            files = {name: os.path.getsize(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))}
            record = {"files": files, "key": key, "spec": asdict(spec), "versions": _versions(spec.backend),
                      "weights_folder": os.path.abspath(weights_folder), "format": CACHE_FORMAT}
            atomic_write_text(os.path.join(tmp, ENTRY_FILE), json.dumps(record, indent=2))
    except Exception as e:  # noqa: BLE001  (Paddle's tracer and paddle2onnx raise many kinds)
        from networks import CheckpointError
        if isinstance(e, CheckpointError):
            raise
        raise DeployError(_reason(e, printed)) from None
    try:
        predictor = open_entry()
    except Exception as e:  # noqa: BLE001
        discard_folder(entry)   # not kept: every later run would rebuild it only to fail again
        raise DeployError(_reason(e, [])) from None
    seconds = time.perf_counter() - start
    return Compiled(predictor, entry, True,
                    f"compiled the network for {size} on {spec.backend} in {seconds:.1f} s (cached in {entry})")


def _reason(error, printed):
    """One line: the error, and the last line the exporting tools printed."""
    lines = [line.strip() for line in "".join(printed).splitlines() if line.strip()]
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{text[:200]}" + (f"; last message: {lines[-1][:200]}" if lines else "")
