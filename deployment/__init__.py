"""Deployment of the depth network: `config` (deploy.json), `runtime` (DepthPredictor on Paddle
Inference or ONNX Runtime) and `export` (needs Paddle; import deployment.export explicitly).
Importing this package does not import Paddle."""
from deployment.config import CONFIG_NAME, DeployError, read_config  # noqa: F401
from deployment.runtime import DepthPredictor  # noqa: F401
