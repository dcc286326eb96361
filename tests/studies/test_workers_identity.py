"""An item's metrics do not depend on how many workers ran the study (its thread count is not
part of its key): thread-invariant models share the cores, the others always get all of them."""

import json
import os

from dlab.studies import load_study, plan_study
from dlab.studies.local import LocalConfig, item_threads, run_plan

STUDY = """
name = "workers"
[base]
data.dataset = "mnist"
data.train_limit = 512
data.val_limit = 256
train.epochs = 2
train.batch_size = 64
[[questions]]
key = "q"
title = "t"
text = "t"
explanation = "t"
[[questions.variants]]
label = "net"
[[questions.variants]]
label = "cnn"
set = { "model.name" = "cnn", "model.channels" = [8, 16], "model.convs_per_stage" = 1 }
"""


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


def test_same_metrics_with_one_and_two_workers(tmp_path, data_dir):
    path = tmp_path / "workers.toml"
    path.write_text(STUDY)
    study = load_study(path)
    metrics = {}
    for workers in (1, 2):
        plan = plan_study(study, tmp_path / f"runs-{workers}")
        cfg = LocalConfig(workers=workers, data_dir=str(data_dir))
        out = run_plan(plan, cfg, echo=lambda line: None)
        assert not out.failed and len(out.ran) == 2
        metrics[workers] = {item.key: _metrics(item.run_dir) for item in plan.runs}
        threads = {item.config.model.name: item_threads(item, cfg) for item in plan.runs}
        assert threads["cnn"] == (os.cpu_count() or 1)  # not thread-invariant: all cores
    assert metrics[1].keys() == metrics[2].keys()
    for key in metrics[1]:
        assert metrics[1][key] == metrics[2][key], key


def test_a_study_files_threads_apply_to_every_item_unless_the_flag_says_otherwise(tmp_path,
                                                                                 data_dir):
    from dlab.cli import main

    path = tmp_path / "workers.toml"
    path.write_text(STUDY.replace('name = "workers"', 'name = "workers"\nthreads = 1'))
    assert load_study(path).threads == 1
    for flag, expect in (([], 1), (["--threads", "2"], 2)):
        runs = tmp_path / f"runs-{expect}"
        assert main(["study", "run", str(path), "--only", "q", "--workers", "2",
                     "--runs-dir", str(runs), "--data-dir", str(data_dir), *flag]) == 0
        manifests = list(runs.glob("workers/*/manifest.json"))
        assert len(manifests) == 2
        assert {json.loads(m.read_text())["torch_threads"] for m in manifests} == {expect}


def test_an_item_that_takes_all_cores_is_not_started_beside_another(tmp_path, monkeypatch):
    from dlab.studies import local

    path = tmp_path / "workers.toml"
    path.write_text(STUDY)
    plan = plan_study(load_study(path), tmp_path / "runs")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    by_name = {item.config.model.name: item for item in plan.runs}
    cnn, net = by_name["cnn"], by_name["net"]
    cfg = LocalConfig(workers=2)
    assert item_threads(cnn, cfg) == 2 and item_threads(net, cfg) == 1

    def running(*items):
        return [local._Child(i, None, 0.0, item_threads(i, cfg)) for i in items]

    assert local._next_fitting([cnn, net], [], cfg) is cnn  # nothing runs: the first
    assert local._next_fitting([cnn], running(net), cfg) is None  # 2 threads beside 1 of 2
    assert local._next_fitting([cnn, net], running(net), cfg) is net  # the one that fits
    assert local._next_fitting([net], running(cnn), cfg) is None
    # the user's --threads is taken as is
    explicit = LocalConfig(workers=2, threads=2)
    assert local._next_fitting([cnn], running(cnn), explicit) is cnn
