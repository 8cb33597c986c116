"""Numbers docs/training.md quotes from a benchmark (page_numbers.cite)."""

from page_numbers import cite

PAGE = "training"


def test_what_the_fused_adam_is_worth():
    cite(PAGE, "results_vae.md", "What the fused Adam is worth", "1.12")
