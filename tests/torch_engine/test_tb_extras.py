"""TensorBoard extras: histograms every N steps and the embedding projector, read back from the
event files and the projector's files."""

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlab.config import resolve
from dlab.torch_engine.train import train_run


def test_histograms_every_n_steps_and_projector(tmp_path, data_dir):
    cfg = resolve({"data": {"dataset": "mnist", "train_limit": 256, "val_limit": 128},
                   "train": {"epochs": 2, "batch_size": 64, "tb_histograms_every": 3,
                             "tb_projector": True}})
    run = tmp_path / "run"
    result = train_run(cfg, run, data_dir=data_dir, device="cpu", progress=False)
    assert result["status"] == "finished"
    acc = EventAccumulator(str(run / "tb"), size_guidance={"histograms": 0})
    acc.Reload()
    tags = acc.Tags()["histograms"]
    assert "param/conv1.weight" in tags and "grad/fc2.bias" in tags
    steps = [e.step for e in acc.Histograms("grad/fc2.bias")]
    assert steps == [3, 6]  # 4 steps per epoch, 8 in all: every third
    projector = (run / "tb" / "projector_config.pbtxt").read_text()
    assert "validation" in projector and "sprite" in projector
    (tsv,) = (run / "tb").glob("*/validation/metadata.tsv")
    labels = tsv.read_text().split()
    assert len(labels) == 100 and set(labels) <= set("0123456789")


def test_off_by_default_changes_nothing(tmp_path, data_dir):
    cfg = resolve({"data": {"dataset": "mnist", "train_limit": 128, "val_limit": 64},
                   "train": {"epochs": 1, "batch_size": 64}})
    assert cfg.hash() == resolve({"data": {"dataset": "mnist", "train_limit": 128,
                                           "val_limit": 64},
                                  "train": {"epochs": 1, "batch_size": 64,
                                            "tb_histograms_every": 0}}).hash()
    train_run(cfg, tmp_path / "run", data_dir=data_dir, device="cpu", progress=False)
    assert not list((tmp_path / "run" / "tb").glob("projector_config.pbtxt"))
