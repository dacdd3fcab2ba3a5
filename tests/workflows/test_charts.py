"""The SVG charts are valid SVG, accessible, and carry the right bars and points."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from workflows import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str):
    root = etree.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None and title.text and desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert "Noto Sans CJK SC" in root.get("font-family") and root.get("font-family").endswith("sans-serif")
    return root


def texts(root) -> list[str]:
    return [element.text for element in root.iter(f"{SVG}text") if element.text]


def test_points_histogram_has_one_bar_per_band_with_its_count():
    counts = [3, 0, 5, 1, 0, 0, 0, 0, 0, 2]
    root = parse(charts.points_histogram(counts, title="市南区团委积分分布"))
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    assert [int(bar.get("data-value")) for bar in bars] == counts
    assert bars[0].get("data-band") == "0–9" and bars[-1].get("data-band") == "90–100"
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[2] == max(heights) and heights[1] == 0 and heights[0] == heights[2] * 3 / 5
    assert "市南区团委积分分布" in texts(root) and "5" in texts(root) and "90–100" in texts(root)
    assert "共11名团干部" in root.find(f"{SVG}desc").text


def test_rank_over_time_draws_a_point_per_day_with_rank_one_on_top():
    history = [(date(2026, 3, 1), 3), (date(2026, 3, 2), 1), (date(2026, 3, 3), None), (date(2026, 3, 4), 2)]
    root = parse(charts.rank_over_time(history, title="青岛团市委排名变化", of=3))
    points = root.findall(f".//{SVG}circle[@class='point']")
    assert [(p.get("data-day"), int(p.get("data-value"))) for p in points] == [
        ("2026-03-01", 3), ("2026-03-02", 1), ("2026-03-04", 2)]
    ys = {int(p.get("data-value")): float(p.get("cy")) for p in points}
    assert ys[1] < ys[2] < ys[3]
    assert root.find(f".//{SVG}polyline") is not None
    assert "3月2日第1名" in root.find(f"{SVG}desc").text and "3月4日" in texts(root)


def test_rank_over_time_without_data_says_so():
    root = parse(charts.rank_over_time([]))
    assert root.findall(f".//{SVG}circle") == [] and "暂无排名数据" in texts(root)


def test_compliance_bars_scale_to_the_rate_and_write_it():
    items = [("青岛团市委", Decimal("0.6667")), ("济南团市委", Decimal("0")), ("<省直>", None)]
    root = parse(charts.compliance_bars(items))
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    assert [bar.get("data-label") for bar in bars] == ["青岛团市委", "济南团市委", "<省直>"]
    assert [bar.get("data-value") for bar in bars] == ["0.6667", "0", ""]
    widths = [float(bar.get("width")) for bar in bars]
    assert widths[1] == widths[2] == 0 and widths[0] > 0
    assert {"66.7%", "0.0%", "—", "<省直>"} <= set(texts(root))


def test_percent():
    assert charts.percent(Decimal("0.12345")) == "12.3%" and charts.percent(None) == "—"
