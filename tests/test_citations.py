"""The checkout's code and documentation speak for themselves: no paths of the machine it was written on, no
tracker numbers in place of saying what a thing is, and every citation `docs/NAME.md §N` names a file of
docs/ that has a section N (so a reader can follow it)."""
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
# folders a user's checkout may hold that are not the project's (.gitignore's)
SKIPPED = {"data", "outputs", "logs", "weights", "inference_model", "build", "profiler_log", "predictions",
           "__pycache__", "node_modules"}

MACHINE_PATH = re.compile(r"/work/|\.\./shared\b")
TRACKER_NUMBER = re.compile(r"\bissues? ?#?\d", re.IGNORECASE)
SPEC_SECTION = re.compile(r"\bspec(?:'s)?[ -](?:sections? ?)?\d|\bspec sections?\b", re.IGNORECASE)
CITATION = re.compile(r"(?:docs/)?(\w+\.md)`?,? ((?:§\d+(?:-\d+)?(?:,\s*)?)+)")
SECTION = re.compile(r"§(\d+)(?:-(\d+))?")


def project_files():
    """(relative path, text) of every .py, .md and .ipynb of the checkout (a notebook's cell sources)."""
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED and not d.endswith(".egg-info")]
        for name in names:
            if name.endswith((".py", ".md", ".ipynb")):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                if name.endswith(".ipynb"):
                    text = "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
                yield os.path.relpath(path, ROOT), text


def sections(doc_name):
    """The section numbers of docs/<doc_name> ('## N. Title' headings), or None when there is no such file."""
    path = os.path.join(DOCS, doc_name)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return {int(m.group(1)) for m in re.finditer(r"^## (\d+)\.", f.read(), re.MULTILINE)}


def bad_citations(text):
    """The citations `NAME.md §N` in `text` whose file is not in docs/ or has no section N."""
    bad = []
    for match in CITATION.finditer(text):
        found = sections(match.group(1))
        for first, last in SECTION.findall(match.group(2)):
            wanted = range(int(first), int(last or first) + 1)
            if found is None or not set(wanted) <= found:
                bad.append(match.group(0))
    return bad


def offending_lines(pattern):
    """The lines matching `pattern` in the project's files, but for this file's examples of what is refused."""
    this = os.path.relpath(os.path.abspath(__file__), ROOT)
    return [f"{path}:{i + 1}: {line.strip()[:100]}" for path, text in project_files() if path != this
            for i, line in enumerate(text.splitlines()) if pattern.search(line)]


def test_files_are_found():
    paths = {path for path, _ in project_files()}
    assert {"README.md", "train.py", os.path.join("docs", "MLDA_NET.md"),
            os.path.join("notebooks", "mlda_net_tutorial.ipynb")} <= paths


def test_no_paths_of_the_development_machine():
    assert MACHINE_PATH.search("see /work/" + "shared/spec/X.md") and MACHINE_PATH.search("../" + "shared/golden")
    assert not offending_lines(MACHINE_PATH)


def test_no_tracker_numbers():
    assert TRACKER_NUMBER.search("(Issue 11, part 4)") and TRACKER_NUMBER.search("issues 10")
    assert not TRACKER_NUMBER.search("DiffusionDepth thread #16; an issue of scale")
    assert not offending_lines(TRACKER_NUMBER)


def test_the_spec_is_cited_by_its_file_in_docs():
    assert SPEC_SECTION.search("(spec section 8)") and SPEC_SECTION.search("Spec 6: ssim")
    assert SPEC_SECTION.search("the spec-6 losses") and not SPEC_SECTION.search("input_spec=specs")
    assert not offending_lines(SPEC_SECTION)


def test_every_section_citation_exists():
    assert sections("MLDA_NET.md") == set(range(1, 11))
    assert sections("DIFFUSION_REFINEMENT.md") == set(range(1, 7))
    # the checker itself: a section past the end, a missing file, a range running past the end
    assert bad_citations("docs/MLDA_NET.md §11 and `docs/NOPE.md` §1 and docs/DIFFUSION_REFINEMENT.md §5-7") == [
        "docs/MLDA_NET.md §11", "docs/NOPE.md` §1", "docs/DIFFUSION_REFINEMENT.md §5-7"]
    assert bad_citations("`docs/MLDA_NET.md` §1-4 and docs/MLDA_NET.md §8, §9") == []
    this = os.path.relpath(os.path.abspath(__file__), ROOT)
    bad = [f"{path}: {citation}" for path, text in project_files() if path != this
           for citation in bad_citations(text)]
    assert not bad
    cited = {m.group(1) for _, text in project_files() for m in CITATION.finditer(text)}
    assert {"MLDA_NET.md", "DIFFUSION_REFINEMENT.md"} <= cited   # the code cites both documents this way


def doc_commands(page, after, script):
    """The `python <script> ...` commands (continuation lines joined, comments dropped) of the first bash
    block of `page` (relative to the checkout) after the line starting with `after`."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    block = text[text.index(after):]
    block = block[block.index("```bash\n") + 8:]
    block = block[:block.index("```")].replace("\\\n", " ")
    lines = [line.split("#")[0].split() for line in block.splitlines()]
    return [words[2:] for words in lines if words[:2] == ["python", script]]


def test_folder_worked_example_is_sized_for_a_cpu():
    """docs/own_camera.md's worked example trains at the synthetic quick start's CPU size (its pixels a step
    and loader workers), and its commands are valid train.py command lines."""
    import options
    runs = doc_commands("docs/own_camera.md", "Worked example (the synthetic 4:3 camera", "train.py")
    assert len(runs) == 2   # stereo and monocular
    preset = options.PRESETS["synthetic"]
    budget = preset["batch_size"] * preset["height"] * preset["width"]
    for argv in runs:
        opt = options.parse("train", argv)
        assert opt.dataset == "folder"
        assert opt.batch_size * opt.height * opt.width <= budget, argv
        assert opt.num_workers <= preset["num_workers"] and opt.num_epochs <= preset["num_epochs"], argv
