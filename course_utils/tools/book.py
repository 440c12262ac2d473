"""The HTML book: the executed chapter notebooks and the exercise sets as one offline website.

`make book` runs `python -m course_utils.tools.book`, which
1. writes a jupyter-book 1.x project into a build folder (`_build/book/src`, git-ignored):
   `_config.yml` (execution OFF: the notebooks are shown as `make course` executed them; no
   launch/repository buttons, nothing fetched at build time), `_toc.yml`, and `intro.md` with the
   chapter list — each chapter's title, learning goals (the "What you will learn" bullets of its
   first markdown cell), CPU run time (`metadata.papermill.duration` of its last full run) and a
   link to its exercise set;
2. copies each chapter with a short header cell (run time, link to the exercises) and each
   exercise set;
3. builds the site into `_build/book/html` (open `_build/book/html/index.html`).

Offline: the theme's CSS, JS and fonts are bundled with sphinx-book-theme, and MathJax (the one
script Sphinx would otherwise take from a CDN) is copied from the `jupyter-server-mathjax` package
into the site, so formulas render without a network. A small stylesheet wraps long code lines
and outputs, so they fit the page instead of scrolling sideways.

    >>> chapter_info(Path("notebooks/01_embeddings.ipynb"))["title"]    # doctest: +SKIP
    '01 · Embeddings: turning text into vectors'
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from course_utils.paths import REPO

__all__ = ["chapter_info", "without_widgets", "write_project", "build", "main"]

_GOALS = re.compile(r"\*\*What you will learn\*\*\s*\n((?:\s*[-*] .*\n?)+)")


def _markdown_sources(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def chapter_info(path: Path) -> dict:
    """Title, learning goals, CPU run time (s, or None) and stem of one executed notebook.

    The title is the first `# ` heading; the goals are the bullets under "**What you will learn**"
    in the first two markdown cells; the run time is papermill's `metadata.papermill.duration`.
    """
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    head = "\n".join(_markdown_sources(nb)[:2])
    title = next((line[2:].strip() for line in head.splitlines() if line.startswith("# ")),
                 Path(path).stem)
    match = _GOALS.search(head + "\n")
    goals = [re.sub(r"^\s*[-*] ", "", g).strip() for g in match.group(1).splitlines()
             if g.strip()] if match else []
    duration = nb.get("metadata", {}).get("papermill", {}).get("duration")
    return {"title": title, "goals": goals, "seconds": duration, "stem": Path(path).stem}


def _fmt_time(seconds) -> str:
    if seconds is None:
        return "not executed yet"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _intro(chapters: list[dict], exercises: dict[str, str]) -> str:
    lines = ["# Embeddings and retrieval on a CPU", "",
             "A hands-on course: every chapter below is a Jupyter notebook, shown here as it was "
             "last executed in full mode (`make course`) on a 2-core CPU. Run them yourself with "
             "`make lab`; the exercise sets are checked automatically (`course_utils.grading`).",
             "", "## Chapters", "", "| Chapter | CPU run time (last full-mode run) | Exercises |",
             "| --- | --- | --- |"]
    for ch in chapters:
        ex = f"{ch['stem']}_exercises"
        link = f"[exercises](exercises/{ex}.ipynb)" if ex in exercises else "—"
        lines.append(f"| [{ch['title']}](chapters/{ch['stem']}.ipynb) | "
                     f"{_fmt_time(ch['seconds'])} | {link} |")
    lines += ["", "## What each chapter teaches", ""]
    for ch in chapters:
        lines += [f"### {ch['title']}", ""]
        ex = f"{ch['stem']}_exercises"
        more = f" · **Exercises:** [{exercises[ex]}](exercises/{ex}.ipynb)" if ex in exercises else ""
        lines += [f"**CPU run time (last full-mode run):** {_fmt_time(ch['seconds'])}{more}", ""]
        lines += [f"- {g}" for g in ch["goals"]] or ["(no learning goals listed)"]
        lines.append("")
    return "\n".join(lines) + "\n"


def _header_cell(ch: dict, exercises: dict[str, str]) -> dict:
    text = (f"*CPU run time of this chapter's last full-mode execution (`make course`, 2-core "
            f"CPU): {_fmt_time(ch['seconds'])}.*")
    ex = f"{ch['stem']}_exercises"
    if ex in exercises:
        text += f" *Exercises: [{exercises[ex]}](../exercises/{ex}.ipynb).*"
    return {"cell_type": "markdown", "id": "book-header", "metadata": {}, "source": [text]}


# MathJax 2.7 as jupyter-server-mathjax ships it: one combined config file (TeX input, HTML-CSS
# output) and the STIX-Web fonts only -- so the fonts must be named, as Jupyter itself does.
_MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full"
_MATHJAX_OPTIONS = {"HTML-CSS": {"availableFonts": [], "webFont": "STIX-Web", "imageFont": None,
                                 "preferredFont": None},
                    # MyST-NB marks a notebook "tex2jax_ignore" and its formulas "math"
                    "tex2jax": {"processClass": "tex2jax_process|mathjax_process|math|output_area",
                                "inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
                    "menuSettings": {"zoom": "None"}, "messageStyle": "none"}

# Long code lines and outputs wrap at the page's width instead of scrolling sideways.
_CSS = """div.cell_input pre, div.cell_output pre, div.highlight pre, div.output pre {
  white-space: pre-wrap;
  overflow-wrap: anywhere;
}
"""


def _local_mathjax() -> Path:
    """Folder holding MathJax.js, from the `jupyter-server-mathjax` package (a dev dependency)."""
    try:
        import jupyter_server_mathjax
    except ImportError as err:
        raise ModuleNotFoundError(
            "the book bundles MathJax from the package jupyter-server-mathjax, which is not "
            "installed: run `make setup` (or `pip install jupyter-server-mathjax`)") from err
    found = sorted(Path(jupyter_server_mathjax.__file__).parent.rglob("MathJax.js"))
    if not found:
        raise FileNotFoundError("jupyter-server-mathjax is installed but holds no MathJax.js; "
                                "reinstall it: pip install --force-reinstall jupyter-server-mathjax")
    return found[0].parent


def _config() -> str:
    config = {
        "title": "Embeddings and retrieval — the course",
        "author": "the course authors",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "html": {"use_repository_button": False, "use_issues_button": False,
                 "use_edit_page_button": False, "use_download_button": False,
                 "use_fullscreen_button": False, "use_multitoc_numbering": False},
        "launch_buttons": {"notebook_interface": "classic", "binderhub_url": "",
                           "jupyterhub_url": "", "thebe": False, "colab_url": ""},
        "parse": {"myst_enable_extensions": ["dollarmath", "amsmath"]},
        "sphinx": {"config": {
            "html_show_copyright": False, "nb_merge_streams": True,
            "suppress_warnings": ["mystnb.unknown_mime_type", "myst.header"],
            "html_theme_options": {"use_download_button": False, "search_bar_text": "Search…"},
            # relative to _static/; MathJax lives beside it (html_extra_path), because Jupyter
            # Book would add every .js file inside _static to every page
            "mathjax_path": f"../mathjax/MathJax.js?config={_MATHJAX_CONFIG}",
            "mathjax2_config": _MATHJAX_OPTIONS,
            "html_static_path": ["_static"],  # course.css (Jupyter Book adds it to every page)
            "html_extra_path": ["_extra"],
        }},
    }
    return json.dumps(config, indent=2, ensure_ascii=False)  # JSON is valid YAML


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def without_widgets(nb: dict) -> dict:
    """The notebook without live widget views (a saved progress bar, say): their plain-text form
    stays, and the page needs no widget manager fetched from a CDN (the book is offline)."""
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            out.get("data", {}).pop(WIDGET_VIEW, None)
    return nb


def write_project(src: Path, notebooks: Path = REPO / "notebooks",
                  exercises_dir: Path = REPO / "exercises") -> list[dict]:
    """Write the jupyter-book project (config, toc, intro, notebook copies) into `src`."""
    chapter_paths = sorted(Path(notebooks).glob("[0-9][0-9]*_*.ipynb"))  # 09b_: a section chapter
    if not chapter_paths:
        raise FileNotFoundError(f"no chapter notebooks (NN_topic.ipynb) in {notebooks}")
    exercise_paths = sorted(Path(exercises_dir).glob("[0-9][0-9]_*_exercises.ipynb"))
    exercises = {p.stem: chapter_info(p)["title"] for p in exercise_paths}
    if src.exists():
        shutil.rmtree(src)
    (src / "chapters").mkdir(parents=True)
    (src / "exercises").mkdir()
    chapters = [chapter_info(p) for p in chapter_paths]
    for path, ch in zip(chapter_paths, chapters):
        nb = without_widgets(json.loads(path.read_text(encoding="utf-8")))
        nb["cells"].insert(1, _header_cell(ch, exercises))
        (src / "chapters" / path.name).write_text(json.dumps(nb), encoding="utf-8")
    for path in exercise_paths:
        nb = without_widgets(json.loads(path.read_text(encoding="utf-8")))
        (src / "exercises" / path.name).write_text(json.dumps(nb), encoding="utf-8")
    shutil.copytree(_local_mathjax(), src / "_extra" / "mathjax")
    (src / "_static").mkdir()
    (src / "_static" / "course.css").write_text(_CSS, encoding="utf-8")
    (src / "_config.yml").write_text(_config(), encoding="utf-8")
    toc = {"format": "jb-book", "root": "intro", "parts": [
        {"caption": "Chapters", "chapters": [{"file": f"chapters/{c['stem']}"} for c in chapters]}]}
    if exercise_paths:
        toc["parts"].append({"caption": "Exercises",
                             "chapters": [{"file": f"exercises/{p.stem}"} for p in exercise_paths]})
    (src / "_toc.yml").write_text(json.dumps(toc, indent=2), encoding="utf-8")
    (src / "intro.md").write_text(_intro(chapters, exercises), encoding="utf-8")
    return chapters


def build(out: Path = REPO / "_build" / "book", quiet: bool = True, **dirs) -> Path:
    """Write the project into `out/src` and build the site into `out/html`; return the html path."""
    out = Path(out)
    src, html = out / "src", out / "html"
    write_project(src, **dirs)
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(src), "--path-output",
           str(work), "--builder", "html"] + (["--quiet"] if quiet else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not (work / "_build" / "html" / "index.html").exists():
        raise RuntimeError(f"jupyter-book failed (exit {done.returncode}):\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    shutil.rmtree(html, ignore_errors=True)
    shutil.move(str(work / "_build" / "html"), str(html))
    shutil.rmtree(work, ignore_errors=True)
    return html


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.book", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "_build" / "book",
                        help="build folder (default: _build/book); the site goes to OUT/html")
    args = parser.parse_args(argv)
    html = build(args.out)
    print(f"book built: {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
