"""The exercise helpers under their first name; they live in :mod:`page_numbers`, with the rest of the page's numbers.

``answers(stem)`` reads the `` `name = number` `` answers of a page's ``## Exercises`` section and
``check(stem, name, value)`` compares one with what kakusan computes; see :mod:`page_numbers` for the mechanism
that every number on a docs page follows.
"""

from page_numbers import answers, check, exercises, printed  # noqa: F401  (re-exported)
