import json

from kakusan.cli import main
from kakusan.tour import CHAPTERS, PLANNED


def test_tiny_tour_writes_one_report_with_a_section_per_chapter(tmp_path, capsys):
    assert main(["tour", "--size", "tiny", "--run-dir", str(tmp_path / "tour")]) == 0
    html = (tmp_path / "tour" / "report.html").read_text()
    assert html.count("<section") == len(CHAPTERS)
    assert html.count("data:image/png;base64,") >= 2 * len(CHAPTERS)
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in html
    assert html.count('<li><a href="#s') == len(CHAPTERS) and "<nav aria-label='contents'><h2>Contents</h2><ol>" in html
    assert html.count("(not yet built)") == len(PLANNED)
    assert "<td>kakusan tour --size tiny --run-dir " in html and "<th scope='row'>seed</th><td>0</td>" in html
    assert "<figcaption>The gap to the closed form, which is exactly KL(q<sub>MLE</sub>" in html  # HTML, not escaped
    metrics = [json.loads(line) for line in (tmp_path / "tour" / "metrics.jsonl").read_text().splitlines()]
    assert [m["chapter"] for m in metrics] == list(CHAPTERS)
    assert "Infinity" not in (tmp_path / "tour" / "metrics.jsonl").read_text()
    assert json.loads((tmp_path / "tour" / "config.json").read_text())["size"] == "tiny"
