"""Sphinx configuration of the kakusan documentation site (``make docs`` → docs/_build/html).

The pages stay Markdown (MyST-Parser); the maths is LaTeX rendered in the browser by a MathJax copy that
ships inside the site (from the PyPI package sphinx-mathjax-offline), so the built site needs no network.
The API reference is generated from the numpydoc-style docstrings (napoleon, after docs/_ext/kakusan_docstrings.py
has made the plain-text ones valid reST): at each build docs/_ext/kakusan_pages.py writes one page per
public package into ``docs/api/`` (gitignored), from the modules that exist now, and one page per
``benchmarks/results_*.md`` into ``docs/results/``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (autodoc imports kakusan)

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(DOCS / "_ext"))

import kakusan  # noqa: E402

project = "kakusan"
author = "the kakusan authors"
copyright = "the kakusan authors"
release = version = kakusan.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.napoleon",
    "kakusan_docstrings",  # docs/_ext: the plain-text docstrings made into valid reST before napoleon reads them
    "kakusan_pages",       # docs/_ext: the API pages (docs/api/) and the benchmark results pages (docs/results/)
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]
templates_path = ["_templates"]
language = "en"

# -- MyST: the conventions every page follows (see docs/index.md, "How these pages are written") -----------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3          # [text](page.md#a-heading) links, GitHub's anchors
myst_dmath_double_inline = True   # $$…$$ inside a paragraph is display maths too

# Equations numbered per page, (1), (2), …; {eq}`page-name` refers to one, across pages too. With
# math_numfig = True Sphinx would number equations through the whole site (the toctree is not :numbered:),
# so the chapters' equations would read (24), (25), … after the first chapter's.
numfig = True
math_numfig = False
math_eqref_format = "({number})"

# -- MathJax, offline ---------------------------------------------------------------------------------------
# The package's directory is named with hyphens, so it is found by spec, not imported.
_mathjax_spec = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax_spec is None or not _mathjax_spec.submodule_search_locations:
    raise RuntimeError("sphinx-mathjax-offline is not installed: make docs installs the docs extra "
                       "(pip install -e '.[docs]')")
MATHJAX_STATIC = Path(next(iter(_mathjax_spec.submodule_search_locations))) / "static"
mathjax_path = "mathjax/tex-chtml.js"  # under _static/, copied from MATHJAX_STATIC

# -- HTML ---------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"kakusan {release}"
html_static_path = ["_static", str(MATHJAX_STATIC)]
html_css_files = ["kakusan.css"]
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
html_sidebars = {"**": ["kakusan-nav"]}
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_center": [],          # the chapter titles are long: the contents sit in the left sidebar instead
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],            # no "Created using" links to other sites
    "icon_links": [],             # no icons fetched from anywhere
    "pygments_light_style": "default",
    "pygments_dark_style": "monokai",
}

# -- API reference ------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "ignore-module-all": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "separated"
autosummary_generate = False
napoleon_google_docstring = False   # the docstrings follow numpydoc's layout
napoleon_numpy_docstring = True
# Parameters, Returns and Attributes as plain field lists: their types are prose ("Tensor, shape (n, D)"),
# not names to cross-reference (":type:" fields would look up "n" and "D" as Python objects).
napoleon_use_param = False
napoleon_use_keyword = False
napoleon_use_rtype = False
napoleon_custom_sections = [("Attributes", "params_style")]
