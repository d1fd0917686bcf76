"""The docs' figures against their measurements (scripts/docs_tables.py): every table between
markers equals what docs/benchmarks/*.json gives, and a changed measurement changes the table."""

import json
import re

import pytest

from scripts import docs_tables


def test_every_table_of_the_docs_equals_its_json():
    stale = docs_tables.stale()
    assert not stale, ("tables differ from docs/benchmarks/ (run python scripts/docs_tables.py): "
                       + "; ".join(f"{path.name}: {', '.join(names)}" for path, names in stale))


def test_the_docs_hold_every_table_and_no_unknown_one():
    found = {}
    for path in docs_tables.DOCS:
        for match in docs_tables.MARKER.finditer(path.read_text()):
            found.setdefault(match.group(2), []).append(path.name)
    assert set(found) == set(docs_tables.TABLES), found


def test_a_changed_measurement_makes_its_doc_stale(tmp_path, monkeypatch):
    report = json.loads((docs_tables.BENCHMARKS / "cpu_2core.json").read_text())
    for row in report["results"]:
        if (row.get("section"), row.get("arch"), row.get("path"), row.get("batch")) == (
                "inference", "pfafn", "band+fold+cl+bf16", 1):
            row["latency_ms"] = 1234.0
    (tmp_path / "cpu_2core.json").write_text(json.dumps(report))
    for name in ("precision_quality_cpu.json", "gpu_check_cpu.json"):
        (tmp_path / name).write_text((docs_tables.BENCHMARKS / name).read_text())
    doc = tmp_path / "page.md"
    doc.write_text("<!-- table:formats -->\n" + docs_tables.formats_table()
                   + "\n<!-- /table:formats -->\n")
    monkeypatch.setattr(docs_tables, "BENCHMARKS", tmp_path)
    assert docs_tables.stale([doc]) == [(doc, ["formats"])]
    text = docs_tables.render(doc.read_text(), doc)
    # PF-AFN's bf16 is now slower than its fp32 (907 ms): fp32 becomes its fastest format.
    row = next(line for line in text.splitlines() if line.startswith("| PF-AFN"))
    assert "1234 ms" in row and row.endswith("| fp32, 907 ms |")


def test_an_unknown_table_name_is_an_error(tmp_path):
    doc = tmp_path / "page.md"
    doc.write_text("<!-- table:nonsense -->\n<!-- /table:nonsense -->\n")
    with pytest.raises(SystemExit, match="unknown table 'nonsense'"):
        docs_tables.render(doc.read_text(), doc)


def test_the_schedule_listing_shows_every_switch(capsys):
    from scripts import schedule
    schedule.main([])
    out = capsys.readouterr().out
    assert "..." not in out
    # Stage 3's phase switch (99 epochs of new parts only), stage 4's skin weights (49 epochs)
    # and the start of every decay are printed, with the epoch before each.
    for line in ("epoch  98 (release's  99): factor 1.0000  lr 3e-05  new parts only",
                 "epoch  99 (release's 100): factor 1.0000  lr 3e-05  all parameters",
                 "epoch  48 (release's  49): factor 1.0000  lr 5e-05, warp 1e-05  skin 30 / 2",
                 "epoch  49 (release's  50): factor 1.0000  lr 5e-05, warp 1e-05  skin 60 / 4",
                 "epoch 101 (release's 102): factor 0.9900  lr 2.97e-05  all parameters"):
        assert line in out
    assert re.search(r"epochs 3-47: factor 1\.0000, as epoch 2, phase unchanged", out)


def test_the_schedule_listing_refuses_what_training_refuses(capsys):
    # --niter -5 printed "-5 + 0 epochs" and nothing else, with exit status 0.
    from scripts import schedule
    for argv, message in ((["--niter", "-5"], "--niter must be 0 or more, got -5"),
                          (["--lr", "nan"], "--lr must be a positive number, got nan")):
        with pytest.raises(SystemExit) as stop:
            schedule.main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err
