"""serve.py's Ray Serve application (needs Ray): one deployment, DepthService, whose replicas each hold
one service.DepthModel and answer POST /depth, GET /info and GET /healthz (docs/serving.md).

Load: a replica holds at most --max_ongoing_requests requests and runs up to --max_batch_size of them
through the network at once (Ray Serve's @serve.batch, waiting at most --batch_wait_ms to fill a batch);
each proxy queues at most --max_queued_requests more and answers the rest 503 with Retry-After at
once, so the backlog is bounded. Every failure of a request becomes its own JSON answer, never an
exception out of the replica; a replica that dies anyway (its process killed) is restarted by Ray
Serve's controller. Decoding and encoding run on threads, the network on one thread of its own, so a
replica keeps answering /healthz while it computes.
"""
import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import ray
from ray import serve
from ray.serve.config import BackpressureConfig
from starlette.responses import Response

from deployment import ray_cluster, service
from utils.io import image_io

APP_NAME = "mlda_depth"
LOGGING = {"log_level": "WARNING", "enable_access_log": False}   # replicas' warnings and errors only
logger = logging.getLogger("ray.serve")


def _json(status, payload, headers=None):
    import json

    return Response((json.dumps(payload) + "\n").encode(), status, headers=headers, media_type="application/json")


def _refusal(status, message, headers=None):
    return Response(service.error_body(message), status, headers=headers, media_type="application/json")


@serve.deployment
class DepthService:
    """A replica: the model of `opt` on `threads` CPU threads, and the routes of docs/serving.md."""

    def __init__(self, opt, threads):
        self.opt = opt
        self.model = service.DepthModel(opt, threads)
        self.network = ThreadPoolExecutor(1, thread_name_prefix="network")   # one batch at a time
        self.disparities.set_max_batch_size(opt.max_batch_size)
        self.disparities.set_batch_wait_timeout_s(opt.batch_wait_ms / 1000.0)
        self.max_body = int(opt.max_upload_mb * 2 ** 20)
        self.about = dict(self.model.info(), formats=list(service.FORMATS), colormaps=list(image_io.COLORMAPS),
                          max_upload_mb=opt.max_upload_mb, max_image_pixels=opt.max_image_pixels,
                          max_batch_size=opt.max_batch_size)
        self.batches = {}   # batch size -> network calls of this replica, for GET /info
        self.routes = {"/depth": ("POST", self.depth), "/info": ("GET", self.info), "/healthz": ("GET", self.health)}

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.005)   # set from the options in __init__
    async def disparities(self, images):
        self.batches[len(images)] = self.batches.get(len(images), 0) + 1
        return await asyncio.get_running_loop().run_in_executor(self.network, self.model.disparities, images)

    async def __call__(self, request):
        try:
            return await self.route(request)
        except service.RequestError as e:
            return _refusal(e.status, e.message)
        except Exception as e:   # a request never takes the replica down
            logger.exception("request failed")
            reason = str(e).splitlines()[0] if str(e) else ""
            return _refusal(500, f"internal error: {type(e).__name__} {reason}".strip())

    async def route(self, request):
        path = request.scope["path"][len(request.scope.get("root_path", "")):].rstrip("/") or "/"
        if path not in self.routes:
            raise service.RequestError(404, f"no route {path}: POST /depth, GET /info, GET /healthz")
        method, handler = self.routes[path]
        if request.method != method:
            return _refusal(405, f"{path} takes {method}", headers={"Allow": method})
        return await handler(request)

    async def health(self, request):
        return _json(200, {"status": "ok"})

    async def info(self, request):
        return _json(200, dict(self.about, replica_batches={str(k): v for k, v in sorted(self.batches.items())}))

    async def depth(self, request):
        fmt, colormap = service.parse_query(request.query_params)
        body = await self.read_body(request)
        loop = asyncio.get_running_loop()
        image, scale = await loop.run_in_executor(None, service.read_photo, self.model, body,
                                                  request.headers.get("content-type"), self.opt.max_image_pixels)
        del body
        disp = await self.disparities(image)
        data, media_type, headers = await loop.run_in_executor(None, service.encode, self.model, disp, image.size,
                                                               fmt, colormap, scale)
        return Response(data, media_type=media_type, headers=headers)

    async def read_body(self, request):
        """The body, refused (413) as soon as it passes --max_upload_mb, before it is all read when its
        Content-Length says so."""
        too_large = service.RequestError(413, f"body over --max_upload_mb {self.opt.max_upload_mb} MB: send a "
                                              "smaller file")
        length = request.headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise service.RequestError(400, f"Content-Length {length!r} is not a number")
            if int(length) > self.max_body:
                raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)


def build_app(opt):
    """The Serve application of the options: replicas (or autoscaling bounds), CPUs, queue bounds."""
    cpus = ray_cluster.worker_cpus(opt.worker_cpus, opt.replicas)
    options = dict(max_ongoing_requests=opt.max_ongoing_requests, max_queued_requests=opt.max_queued_requests,
                   backpressure_config=BackpressureConfig(retry_after_s=1), logging_config=LOGGING,
                   ray_actor_options={"num_cpus": cpus, "num_gpus": 1 if opt.device == "gpu" else 0})
    if opt.max_replicas:
        options["autoscaling_config"] = {"min_replicas": opt.replicas, "max_replicas": opt.max_replicas,
                                         "target_ongoing_requests": opt.max_batch_size}
    else:
        options["num_replicas"] = opt.replicas
    return DepthService.options(**options).bind(opt, max(1, int(round(cpus))))


def start(opt, name=APP_NAME, route_prefix="/"):
    """Deploy the application on the Ray this process is connected to (Serve's proxy on --host
    --port) and wait until its replicas answer. Raises DeployFailed with the replica's one-line reason."""
    serve.start(http_options={"host": opt.host, "port": opt.port}, logging_config=LOGGING)
    try:
        serve.run(build_app(opt), name=name, route_prefix=route_prefix, logging_config=LOGGING)
    except Exception as e:   # Serve keeps a replica's failed constructor as a traceback in the status
        try:
            text = "\n".join(d.message for d in serve.status().applications[name].deployments.values())
        except Exception:
            text = ""
        raise DeployFailed(_last_error_line(text or str(e))) from None


class DeployFailed(RuntimeError):
    """The replicas could not be started; the message is the last error line of their failure."""


def _last_error_line(text):
    """The message of the last 'SomeError: message' line of a traceback (else its last line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line.partition(": ")[2] for line in lines if line.split(":")[0].endswith(("Error", "Exception"))]
    return (errors or lines or ["unknown failure"])[-1]


def serve_forever(opt):
    """serve.py: connect (or start Ray), deploy, print where, then wait for Ctrl-C or SIGTERM; a local
    Ray is shut down at the end with all its processes, an application on a cluster deleted."""
    local = ray_cluster.connect(opt.address)
    ray_cluster.interrupt_on_sigterm()
    try:
        start(opt)
        print(f"serving {service.folder_name(opt.load_weights_folder or opt.infer_files_dir)} at "
              f"http://{opt.host}:{opt.port}/depth (POST a photo; GET /info, /healthz; docs/serving.md); "
              "Ctrl-C stops", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if not local and ray.is_initialized():
            serve.delete(APP_NAME)   # the cluster's Serve and other applications stay
        ray_cluster.shutdown(local)   # a local Ray goes whole: its replicas with it
    return os.EX_OK
