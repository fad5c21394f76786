"""pyproject.toml and README "Install": the editable install registers exactly the checkout's packages and
the API modules, and README names every top-level name it registers (they are generic: `datasets` is
also Hugging Face's package)."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_INSTALLED = {"tests", "bench", "notebooks", "docs", "splits"}   # the checkout's, not the API's


def checkout_packages():
    found = []
    for folder, dirs, files in os.walk(ROOT):
        rel = os.path.relpath(folder, ROOT)
        dirs[:] = [d for d in dirs if not d.startswith((".", "_")) and (rel != "." or d not in NOT_INSTALLED)]
        if rel != "." and "__init__.py" in files:
            found.append(rel.replace(os.sep, "."))
    return sorted(found)


def test_pyproject_installs_every_package_and_readme_names_them():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()   # tomllib is Python 3.11+: the two lists by hand
    config = {key: re.findall(r'"([^"]+)"', re.search(rf"^{key} = \[(.*?)\]", text, re.S | re.M).group(1))
              for key in ("packages", "py-modules")}
    assert sorted(config["packages"]) == checkout_packages()     # a new subpackage is not left out
    for module in config["py-modules"]:
        assert os.path.isfile(os.path.join(ROOT, f"{module}.py")) and module != "test"
    readme = open(os.path.join(ROOT, "README.md")).read()
    start = readme.index("## Install")
    install = readme[start:readme.index("\n## ", start + 1)]   # up to the next section
    top = {p.split(".")[0] for p in config["packages"]} | set(config["py-modules"])
    assert {n for n in top if not re.search(rf"`{n}`", install)} == set()
    assert "virtual environment of its own" in install and "Hugging Face" in install
