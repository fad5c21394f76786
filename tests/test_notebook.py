"""notebooks/mlda_net_tutorial.ipynb runs end to end at its quick settings (MLDA_TUTORIAL_QUICK=1): every cell
executed by nbclient in a fresh kernel, any cell error fails the test. The notebook's own cells assert what they
show (velodyne points in view, a depth hint, a finite loss curve, the point cloud's size, and Paddle Inference and
ONNX Runtime agreeing with the eager network within 1e-4). Everything it writes goes to a temporary folder, and
the executed copy is never saved, so the stored notebook keeps no outputs."""
import os
import pathlib
import re
import shlex

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
    # the last cell tells what the run left on disk: its size against one computed here
    last = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    reported = re.search(r"holds (\d+) MB; to free it: rm -rf (\S+)", last)
    size = sum(p.stat().st_size for p in (tmp_path / "work").rglob("*") if p.is_file())
    assert reported and reported.group(2) == str(tmp_path / "work"), last
    assert abs(int(reported.group(1)) - size / 1e6) <= 0.5


def test_readme_says_how_to_open_it_locally():
    """The notebook's section (docs/page_and_notebook.md) installs JupyterLab from a requirements file that
    has it and opens or executes the notebook at its real path."""
    with open(os.path.join(ROOT, "docs", "page_and_notebook.md")) as f:
        page = f.read()
    section = page[page.index("## Notebook"):]
    block = section[section.index("```bash\n") + 8:]
    block = block[:block.index("```")].replace("\\\n", " ")
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.split("#")[0].strip()]
    installs = [c[-1] for c in commands if c[:3] == ["pip", "install", "-r"]]
    assert installs, block
    with open(os.path.join(ROOT, installs[0])) as f:
        assert any(line.split(">=")[0].strip() == "jupyterlab" for line in f if not line.startswith("#"))
    lab = [c for c in commands if c[:2] == ["jupyter", "lab"]]
    headless = [c for c in commands if "nbconvert" in c and "--execute" in c]
    assert lab and headless
    for command in lab + headless:
        assert os.path.relpath(NOTEBOOK, ROOT) in command, command
