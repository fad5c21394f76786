"""The README and docs/*.md: every relative link (image or page) names a file of the checkout, every
#anchor a heading of the page it points to, and the README stays a front door (the rest lives in docs/)."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_MAX_LINES = 260   # Monodepth2's is 259: what a newcomer needs first; the rest goes to a docs page
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose_lines(text):
    """The lines outside fenced code blocks, with inline code spans blanked (no links live there)."""
    inside = False
    for line in text.split("\n"):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield re.sub(r"`[^`]*`", "``", line)


def heading_anchors(text):
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens, and
    -1, -2, ... after repeats."""
    anchors, seen = set(), {}
    for line in prose_lines(text.replace("`", "")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def broken_links(page):
    """'page: target (why)' for each relative link of the markdown file `page` that leads nowhere."""
    text = open(page, encoding="utf-8").read()
    problems = []
    for line in prose_lines(text):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):   # http:, https:, mailto: ...
                continue
            path, _, anchor = target.partition("#")
            where = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            name = f"{os.path.relpath(page, ROOT)}: {target}"
            if not os.path.exists(where):
                problems.append(f"{name} (no such file)")
            elif anchor and where.endswith(".md"):
                if anchor not in heading_anchors(open(where, encoding="utf-8").read()):
                    problems.append(f"{name} (no heading with this anchor)")
    return problems


def documentation_pages():
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def test_every_relative_link_of_readme_and_docs_leads_somewhere():
    pages = documentation_pages()
    assert len(pages) > 5
    linked = [p for p in pages if LINK.search("\n".join(prose_lines(open(p, encoding="utf-8").read())))]
    assert os.path.join(ROOT, "README.md") in linked   # the checker sees the README's links at all
    problems = [problem for page in pages for problem in broken_links(page)]
    assert problems == []


def test_the_readme_links_every_docs_page():
    """A page nobody links to is a page nobody finds: the README's table of pages names each one."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    targets = {t.partition("#")[0] for line in prose_lines(readme) for t in LINK.findall(line)}
    pages = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))}
    assert pages - targets == set()


def test_the_readme_is_a_front_door():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        count = len(f.read().splitlines())
    assert count <= README_MAX_LINES, (f"README.md has {count} lines: move the detail into a docs/ page "
                                       f"and link it (at most {README_MAX_LINES})")


def test_the_checker_finds_a_missing_file_a_missing_anchor_and_ignores_code(tmp_path):
    (tmp_path / "other.md").write_text("# A title\n\n## Depth in metres (`--x`)\n\n## Twice\n\n## Twice\n")
    (tmp_path / "shot.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n"
                    "[fine](other.md#depth-in-metres---x) [repeat](other.md#twice-1) ![img](shot.png)\n"
                    "[here](#page) [web](https://example.com/nothing.md) [mail](mailto:a@b.c)\n"
                    "[gone](missing.md) [bad anchor](other.md#nowhere) ![no image](gone.png)\n"
                    "`[code](inline.md)`\n\n```python\nnets['depth'](image)  [x](fenced.md)\n```\n")
    problems = broken_links(str(page))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "missing.md (no such file)", "other.md#nowhere (no heading with this anchor)", "gone.png (no such file)"]
