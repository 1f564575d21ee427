"""The documentation holds together: its links resolve, the README stays short, and its Python runs."""

import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
README_MAX_LINES = 320

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), with an optional "title".
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def documentation_files():
    """README.md, docs/*.md and every benchmarks/results/*/README.md, as absolute paths."""
    return [README] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + sorted(
        glob.glob(os.path.join(ROOT, "benchmarks", "results", "*", "README.md"))
    )


def _prose(text):
    """The text outside fenced code blocks, with inline code blanked (neither holds links)."""
    return _INLINE_CODE.sub("`code`", _FENCE.sub("", text))


def anchors(path):
    """The anchors GitHub gives the headings of the Markdown file at `path`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found, seen = set(), {}
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path):
    """`(target, reason)` for every relative link in the Markdown file at `path` that does not resolve.

    A link resolves when the file or folder it names exists (relative to `path`'s folder) and, for
    a `#anchor` into a Markdown file, when that file has a heading with that anchor. Links with a
    scheme (`https:`, `mailto:`) are not checked.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    broken = []
    for target in _LINK.findall(_prose(text)):
        if _SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(resolved):
            broken.append((target, "no such file or folder"))
        elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            broken.append((target, f"no heading with the anchor #{anchor}"))
    return broken


def test_the_documentation_files_are_there():
    names = {os.path.relpath(path, ROOT) for path in documentation_files()}
    assert {"README.md", "docs/cli.md", "docs/models.md", "benchmarks/results/cifar10/README.md"} <= names
    # Every results folder says what it holds, how it was made, on what machine and budget.
    for folder in glob.glob(os.path.join(ROOT, "benchmarks", "results", "*", "")):
        assert os.path.isfile(os.path.join(folder, "README.md")), folder


def test_every_relative_link_resolves():
    broken = {
        os.path.relpath(path, ROOT): problems for path in documentation_files() if (problems := broken_links(path))
    }
    assert broken == {}


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# A heading: with `code`\n\n## A heading: with `code`\n")
    (tmp_path / "page.md").write_text(
        "[fine](other.md#a-heading-with-code) [second](other.md#a-heading-with-code-1) [web](https://example.com/x)\n"
        "[gone](missing.md) ![gone too](img/missing.png) [bad anchor](other.md#nowhere)\n"
        "`[in code](missing_in_code.md)`\n\n```bash\n# Not a heading\n[in a block](missing_in_block.md)\n```\n"
    )
    assert broken_links(str(tmp_path / "page.md")) == [
        ("missing.md", "no such file or folder"),
        ("img/missing.png", "no such file or folder"),
        ("other.md#nowhere", "no heading with the anchor #nowhere"),
    ]


def test_the_readme_is_short():
    with open(README, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move long-form text to docs/"


def test_the_readme_python_runs(tmp_path):
    """Each ```python block of the README runs in a fresh process, in order, with 1 epoch of 2 steps."""
    with open(README, encoding="utf-8") as f:
        blocks = re.findall(r"^```python\n(.*?)^```", f.read(), re.MULTILINE | re.DOTALL)
    assert blocks, "README.md has no Python block"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
    }
    for number, block in enumerate(blocks, 1):
        # Tiny settings: every fit gets one epoch of two steps, so no fit may go without `epochs=`.
        tiny = re.sub(r"\bepochs=\d+", "epochs=1, steps_per_epoch=2", block)
        assert tiny.count("steps_per_epoch=2") == block.count(".fit("), f"a fit without epochs= in block {number}"
        result = subprocess.run(
            [sys.executable, "-c", tiny], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        # The end of the traceback, each line cut short: Keras errors can carry a whole model config.
        error = "\n".join(line[:300] for line in result.stderr.splitlines()[-30:])
        assert result.returncode == 0, f"README Python block {number} failed:\n{block}\n{error}"
