"""The course's own cross-references: chapter 00's map and widget list, chapter 07's pointer to the vmap trap,
chapter 02's colormap for the (non-cyclic) phase."""

from __future__ import annotations

import json
import re

import pytest

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
    for module in ("plots.py", "sinusoid.py", "ch02/plots.py", "ch02/widgets.py"):
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
    from mlcourse.course.ch00.figures import FIELD_MAP

    aliases = {
        "Prototypical Networks": ("Prototypical", "ProtoNet"),
        "Matching Networks": ("Matching Net",),
        "first-order MAML": ("first-order MAML", "FOMAML"),
        "RL² (recurrent meta-RL)": ("RL²",),
        "in-context sequence models": ("in-context",),
        "iMAML (implicit gradients)": ("iMAML",),
    }
    text = {num: "\n".join(_source(c) for c in _cells(name)) for num, name in _chapters().items()}
    for _, _, algorithms in FIELD_MAP:
        for name, _, where in algorithms:
            for num in re.findall(r"\b(0\d)\b", where):
                assert any(a in text[num] for a in aliases.get(name, (name,))), f"{name} is not in chapter {num}"
    # named on the map (and in chapter 00's text) only: "not run in this course"
    assert not any("SNAIL" in body for num, body in text.items() if num != "00")
    assert not any("Santoro" in body for num, body in text.items() if num not in ("00", "08"))  # 08 cites it


# --- sentences that state or compare measured numbers: generated from the files, or checked here -----------------


def _markdown(name: str) -> str:
    return "\n".join(_source(c) for c in _cells(name) if c["cell_type"] == "markdown")


def _code(name: str) -> str:
    return "\n".join(_source(c) for c in _cells(name) if c["cell_type"] == "code")


def test_chapter_07_comparisons_are_printed_from_the_benchmark_files() -> None:
    from mlcourse import bench
    from mlcourse.course import bench_reports

    files = {p["file"].split("/")[-1]: p for p in bench.load_reports()}
    before, after = files["bench-cpu-compiled-2026-12-03.json"], files["bench-cpu-malloc-2026-12-03.json"]
    rankings = "\n".join(bench_reports.bench_rankings(before))
    assert "ch03 reptile: compiled " in rankings and "(fastest: compiled)" in rankings  # not the compiled loop
    changes = {line.split(":")[0]: line for line in bench_reports.bench_changes(before, after)}
    assert (
        "per-task loop (eager)" in changes["ch03 maml"] and "slower" in changes["ch03 maml"].split("per-task loop")[1]
    )
    assert "vectorised (eager)" in changes["ch03 maml"] and "faster" in changes["ch03 maml"].split(";")[0]
    code = _code("07_tools.ipynb")
    assert "ch07.bench_rankings(" in code and "ch07.bench_changes(" in code
    reading = next(_source(c) for c in _cells("07_tools.ipynb") if _source(c).startswith("What to read from these"))
    assert not re.search(r"\d\.\d", reading), "a measured figure is typed into chapter 07's reading of the benchmarks"
    for claim in ("is the fastest row", "much faster", "hardly changed"):
        assert claim not in reading


def test_bench_changes_says_about_the_same_within_the_tolerance() -> None:
    from mlcourse.course import bench_reports

    row = {"shape": "s", "algorithm": "maml", "unit": "tasks/s"}
    before = {
        "rows": [
            {**row, "implementation": "vectorised", "rate": 10.0},
            {**row, "implementation": "compiled", "rate": 10.0},
        ]
    }
    after = {
        "rows": [
            {**row, "implementation": "vectorised", "rate": 10.4},
            {**row, "implementation": "compiled", "rate": 8.0},
        ]
    }
    (line,) = bench_reports.bench_changes(before, after)
    assert (
        "vectorised (eager) 10.0 -> 10.4 tasks/s (about the same" in line and "compiled (compiled) 10.0 -> 8.0" in line
    )
    assert "(slower, -20 %)" in line
    with pytest.raises(ValueError, match="same_within=1.5"):
        bench_reports.bench_changes(before, after, same_within=1.5)


def test_chapter_08_distributed_text_matches_the_committed_measurement() -> None:
    from mlcourse.course.ch08 import processes as ch08_processes

    report = ch08_processes.load_distributed_results()[-1]
    assert report["speedup"]["2"] < 1  # what chapter 08 says of the committed file: two processes slower than one
    assert ch08_processes.speedup_lines(report)[0].endswith("slower than one process")
    text = _markdown("08_scalability.ipynb")
    assert "were *slower* than one process" in text and "the committed 2-process CPU measurement" in text
    assert "ch08.speedup_lines(report)" in _code("08_scalability.ipynb")


def test_chapter_08_gpu_peak_and_imaml_are_stated_correctly() -> None:
    from mlcourse.course import bench_reports

    text, code = _markdown("08_scalability.ipynb"), _code("08_scalability.ipynb")
    assert (
        "TF32 setting" in bench_reports.load_gpu_reference()["how_measured"]
    )  # the file records that it did not record it
    assert "Which peak applies is not known" in text and "upper bound" in text
    assert "torch.backends.cudnn.allow_tf32" in code and "at most" in code
    assert r"H = \nabla^2_\phi\mathcal{L}^{\text{tr}}(\phi^\ast)" in text
    assert "not on $K$" not in text and "the inner solve still takes its $K$ steps" in text


def test_chapter_05_example_is_the_published_protocol_without_stratified() -> None:
    from mlcourse.course.ch05 import results as ch05_results

    line = ch05_results.published_protocol_command("maml", "cifar-fs", k_shot=1)
    assert "--stratified" not in line and "--split cifar-fs" in line and "--k-shot 1" in line
    assert "ch05.published_protocol_command(" in _code("05_cifar100_project.ipynb")
    assert '--stratified "' not in _code("05_cifar100_project.ipynb")
    with pytest.raises(ValueError, match="split='nope'"):
        ch05_results.published_protocol_command(split="nope")


def test_chapter_02_account_of_the_full_runs_matches_the_files() -> None:
    from mlcourse.course.ch02 import paper as ch02_paper

    runs = ch02_paper.load_paper_runs()
    assert len(runs) == 5 and len(ch02_paper.full_runs_summary(runs)) > 5
    text = _markdown("02_core_concepts.ipynb")
    assert "2026-11-27" not in text and "~25 min" not in _code("02_core_concepts.ipynb")
    assert "ch02.full_runs_summary(full_runs)" in _code("02_core_concepts.ipynb")
    k5 = [r["comparison"]["K=5"]["maml"] for r in runs.values()]
    # "in some runs a handful of the 1,000 tasks blow up", "a task can also blow up ... and recover"
    assert any(0 < c["diverged"][10] <= 20 for c in k5) and any(c["diverged"][10] == 0 for c in k5)
    assert any(max(c["diverged"][1:]) > c["diverged"][10] for c in k5)
    # "the median task keeps improving, to below the paper's means"; "the K=10 curves show none"
    paper = ch02_paper.PAPER_SINUSOID["maml"]
    assert all(c["median"][5] < paper[1] and c["median"][10] < paper[2] for c in k5)
    assert all(max(r["comparison"]["K=10"]["maml"]["diverged"]) == 0 for r in runs.values())
    assert "the loss surface in θ is sharper" not in text


def test_chapter_03_names_the_runs_it_makes() -> None:
    from mlcourse.course.ch03 import comparison as ch03_comparison

    text = _markdown("03_algorithms.ipynb")
    assert "all five algorithms" not in text
    assert set(ch03_comparison.SINUSOID_COMPARISON) == {"maml", "metasgd", "reptile", "pretrain"}
    assert "The sinusoid comparison below runs MAML,\nMeta-SGD and Reptile, with the pretrain-then-fine-tune" in text
    runs = re.search(r"OMNIGLOT_RUNS = \{(.*?)\}", _code("03_algorithms.ipynb"), flags=re.S).group(1)
    assert len(re.findall(r'"\w+": "', runs)) == 8 and "eight runs" in text
    assert r"temperature $\tau = 10$" in text  # exercise 2: the MatchingNet's starting temperature


def test_chapter_00_names_what_the_course_runs() -> None:
    cells = _cells("00_welcome.ipynb")
    field = next(_source(c) for c in cells if _source(c).startswith("## 6 · A map of the field"))
    assert "only names the third family" not in field and "chapter 08 meta-trains" in field
    table = next(_source(c) for c in cells if _source(c).startswith("## 5 · Map of the course"))
    row = next(line for line in table.splitlines() if line.startswith("| 03 "))
    for name in ("MAML", "first-order MAML", "Reptile", "Meta-SGD", "ANIL", "Proto-MAML", "Prototypical", "Matching"):
        assert name in row, name
