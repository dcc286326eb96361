"""`dlab study list|status|run --dry-run`: plans and states without training."""

from __future__ import annotations

from dlab.cli import main
from dlab.runs import atomic_write_json
from dlab.studies import load_study, plan_study


def test_list_shows_the_builtin_study(capsys):
    assert main(["study", "list"]) == 0
    out = capsys.readouterr().out
    assert "fashion-a1" in out and "15 questions, 38 variants" in out


def test_dry_run_counts_variants_and_distinct_trainings(tmp_path, capsys):
    assert main(["study", "run", "fashion-a1", "--dry-run", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    plan = plan_study(load_study("fashion-a1"), tmp_path)
    trainings = sum(r.kind != "eval" for r in plan.runs)
    assert f"38 variants listed -> {len(plan.runs)} distinct items ({trainings} trainings)" in out
    assert trainings < 38 and not (tmp_path / "fashion-a1").exists()


def test_only_keeps_the_questions_and_their_sources(tmp_path, capsys):
    assert main(["study", "run", "fashion-a1", "--dry-run", "--only", "q15",
                 "--runs-dir", str(tmp_path)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " pending " in ln]
    assert len(lines) == 4  # q13's training, the shared eval, the finetune, q1's MNIST run
    assert any("q13/ultimate" in ln for ln in lines)
    assert main(["study", "run", "fashion-a1", "--only", "q99", "--runs-dir", str(tmp_path)]) == 2
    assert "q99" in capsys.readouterr().err


def test_status_reports_finished_and_pending_items(tmp_path, capsys):
    plan = plan_study(load_study("fashion-a1"), tmp_path)
    default = plan.lookup("q1", "fashion-mnist")[0]
    atomic_write_json(default.run_dir / "result.json", {"status": "finished", "val_acc": 0.8})
    assert main(["study", "status", "fashion-a1", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{default.key}  train    finished" in out
    assert f"1 finished, {len(plan.runs) - 1} pending of {len(plan.runs)} items" in out


def test_enqueue_once_and_queue_status_with_sqlite_storage(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    args = ["fashion-a1", "--storage", url, "--runs-dir", str(tmp_path)]
    n = len(plan_study(load_study("fashion-a1"), tmp_path).runs)
    assert main(["study", "enqueue", *args]) == 0
    assert f"enqueued {n} work items (0 already queued)" in capsys.readouterr().out
    assert main(["study", "enqueue", *args]) == 0
    assert f"enqueued 0 work items ({n} already queued)" in capsys.readouterr().out
    assert main(["study", "status", *args]) == 0
    assert f"queue: {n} waiting" in capsys.readouterr().out
