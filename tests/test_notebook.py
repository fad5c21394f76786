"""notebooks/mlda_net_tutorial.ipynb runs end to end at its quick settings (MLDA_TUTORIAL_QUICK=1): every cell
executed by nbclient in a fresh kernel, any cell error fails the test. The notebook's own cells assert what they
show (velodyne points in view, a depth hint, a finite loss curve, the point cloud's size, and Paddle Inference and
ONNX Runtime agreeing with the eager network within 1e-4). Everything it writes goes to a temporary folder, and
the executed copy is never saved, so the stored notebook keeps no outputs."""
import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "mlda_net_tutorial.ipynb")


def test_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_notebook_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MLDA_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("MLDA_TUTORIAL_WORK", str(tmp_path / "work"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}})
    client.execute()   # raises CellExecutionError naming the cell on any error
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert sum(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs) >= 5
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "abs_rel" in text and "ONNX Runtime" in text
    assert sorted(os.listdir(tmp_path / "work")) == ["inference_model", "inference_onnx", "inference_paddle", "logs",
                                                     "one_frame.txt", "predictions", "synthetic_kitti"]
