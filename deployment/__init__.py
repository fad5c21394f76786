"""Deployment of the depth network: `config` (deploy.json), `runtime` (DepthPredictor on Paddle
Inference or ONNX Runtime), `predictor` (Predictor: a weights folder in eager Paddle) and `export`
(needs Paddle; import deployment.export explicitly). Importing this package does not import Paddle:
`Predictor` is imported on first use."""
from deployment.config import CONFIG_NAME, DeployError, read_config  # noqa: F401
from deployment.runtime import DepthPredictor  # noqa: F401


def __getattr__(name):
    """deployment.Predictor, imported when first asked for (it needs Paddle; DepthPredictor does not)."""
    if name == "Predictor":
        from deployment.predictor import Predictor
        return Predictor
    raise AttributeError(f"module 'deployment' has no attribute {name!r}")
