"""The course's own cross-references: chapter 00's map and widget list, chapter 07's pointer to the vmap trap,
chapter 02's colormap for the (non-cyclic) phase."""

from __future__ import annotations

import json
import re

from mlcourse.config import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"


def _cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _chapters() -> dict[str, str]:
    return {p.name[:2]: p.name for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}


def test_map_of_the_course_has_one_row_per_chapter() -> None:
    text = "\n".join(_source(c) for c in _cells("00_welcome.ipynb"))
    map_section = text.split("## 5 · Map of the course", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d\d)[ -]", map_section, flags=re.M)
    assert rows == sorted(_chapters()), f"map rows {rows}, chapters {sorted(_chapters())}"


def test_chapter_00_lists_every_chapter_with_widgets() -> None:
    with_widgets = sorted(
        num
        for num, name in _chapters().items()
        if any(c["cell_type"] == "code" and re.search(r"widget\(", _source(c)) for c in _cells(name))
    )
    assert {"02", "03", "04", "05", "06", "08"} <= set(with_widgets)
    cells = _cells("00_welcome.ipynb")
    running = next(_source(c) for c in cells if _source(c).startswith("## 4 · Running the notebooks"))
    sentence = running.split("Interactive widgets", 1)[1].split("* **Headless", 1)[0]
    listed = sorted(set(re.findall(r"\b(0\d)\b", sentence)))
    assert listed == with_widgets, f"chapter 00 lists widgets in {listed}; the notebooks have them in {with_widgets}"
    table = next(_source(c) for c in cells if _source(c).startswith("## 5 · Map of the course"))
    marked = sorted(m for m in re.findall(r"^\| (\d\d) .*with sliders \|$", table, flags=re.M))
    assert marked == with_widgets


def test_chapter_07_points_to_where_the_batchnorm_trap_is_shown() -> None:
    text = "\n".join(_source(c) for c in _cells("07_tools.ipynb"))
    assert 'chapter 03, section "Batch norm under vmap"' in text
    assert "tests/test_algorithms_vmap_trap.py" in text
    assert (REPO_ROOT / "tests" / "test_algorithms_vmap_trap.py").is_file()


def test_phase_is_never_coloured_with_a_cyclic_colormap() -> None:
    """The phase b in [0, pi] is not cyclic (b = 0 and b = pi are opposite tasks): sequential colormaps only."""
    cyclic = ("twilight", "hsv", "cyclic")
    text = "\n".join(_source(c) for c in _cells("02_core_concepts.ipynb") if c["cell_type"] == "code")
    for module in ("plots.py", "widgets.py"):
        text += (REPO_ROOT / "mlcourse" / "course" / module).read_text(encoding="utf-8")
    assert not [name for name in cyclic if name in text]
    assert 'colour_label="phase b", cmap="viridis"' in text


def test_chapter_00_glossary_has_each_term_once_with_existing_chapters() -> None:
    cells = _cells("00_welcome.ipynb")
    glossary = next(_source(c) for c in cells if _source(c).startswith("## 7 · Glossary"))
    rows = [
        r
        for r in re.findall(r"^\| (.+?) \| (.+?) \| .+ \| (.+?) \|$", glossary, flags=re.M)
        if re.search(r"[\u4e00-\u9fff]", r[0])
    ]
    chinese = [t for row in rows for t in re.split(r"[（）/]", row[0].replace("★", "")) if t.strip()]
    english = [row[1] for row in rows]
    assert len(set(chinese)) == len(chinese) and len(set(english)) == len(english), "a glossary term appears twice"
    must = (
        "任务嵌入",
        "元优化",
        "元知识",
        "快速适应",
        "元训练",
        "元测试",
        "支持集",
        "查询集",
        "少样本学习",
        "双层优化",
        "内循环",
        "外循环",
        "分层抽样",
    )
    assert set(must) <= {t.strip() for t in chinese}
    for row in rows:
        assert set(re.findall(r"\b(0\d)\b", row[2])) <= set(_chapters()), row
    # every Chinese term the other chapters quote from the article (not section titles) is in the glossary
    quoted = {"任务嵌入", "元优化", "元知识", "快速适应", "元训练", "元测试", "分层采样", "算法复杂度降低"}
    others = "\n".join(_source(c) for num, name in _chapters().items() if num != "00" for c in _cells(name))
    assert all(term in others for term in quoted) and quoted <= {t.strip() for t in chinese}
    starred = [re.split(r"[（ ]", row[0])[0] for row in rows if "★" in row[0]]
    assert all(term in others for term in starred), "a ★ term is not quoted from the article in any chapter"


def test_field_map_chapters_match_the_notebooks() -> None:
    """Each algorithm on chapter 00's map of the field is named in every chapter the map sends the reader to."""
    from mlcourse.course.plots import FIELD_MAP

    aliases = {
        "Prototypical Networks": ("Prototypical", "ProtoNet"),
        "Matching Networks": ("Matching Net",),
        "first-order MAML": ("first-order MAML", "FOMAML"),
        "RL² (recurrent meta-RL)": ("RL²",),
        "in-context sequence models": ("in-context",),
    }
    text = {num: "\n".join(_source(c) for c in _cells(name)) for num, name in _chapters().items()}
    for _, _, algorithms in FIELD_MAP:
        for name, _, where in algorithms:
            for num in re.findall(r"\b(0\d)\b", where):
                assert any(a in text[num] for a in aliases.get(name, (name,))), f"{name} is not in chapter {num}"
    # named on the map (and in chapter 00's text) only: "not run in this course"
    assert not any("SNAIL" in body for num, body in text.items() if num != "00")
    assert not any("Santoro" in body for num, body in text.items() if num not in ("00", "08"))  # 08 cites it
