"""Bad values, flags and input files are refused in one line before any run directory exists
(reliability findings, issue 15 item 3). Each case asserts the whole `dlab: error: ...` line,
exit status 2, and an empty runs folder."""

from __future__ import annotations

import pytest

from dlab.cli import main

TINY = ["--dataset", "mnist", "--epochs", "1", "--quiet"]


def refused(argv: list[str], tmp_path, capsys) -> str:
    """Run `dlab argv` and return its one error line; the runs folder must stay empty."""
    runs = tmp_path / "runs"
    assert main([*argv, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert not runs.exists() or not any(runs.iterdir()), "a run directory was created"
    return err.removeprefix("dlab: error: ")


# ------------------------------------------------------------------------ bad values (train)

@pytest.mark.parametrize("flags,message", [
    # c09, c23, c42, c50: non-finite numbers are refused, not trained with
    (["--lr", "inf"], "optim.lr = inf; expected a finite number"),
    (["--weight-decay", "inf"], "optim.weight_decay = inf; expected a finite number"),
    (["--set", "data.std=[inf]"], "data.std = [inf]; expected a finite number"),
    (["--set", "data.mean=[nan]"], "data.mean = [nan]; expected a finite number"),
    (["--set", "optim.warmup_epochs=inf"], "optim.warmup_epochs = inf; expected a finite number"),
    (["--set", "data.augment.translate=nan"],
     "data.augment.translate = nan; expected a value in [0, 1]"),
    # c20: an infinite width was an OverflowError traceback
    (["--width", "inf"], "model.width = inf; expected a finite number"),
    # c51, c52: ranges
    (["--schedule", "cosine", "--set", "optim.min_lr_factor=-5"],
     "optim.min_lr_factor = -5.0; expected a value in [0, 1]"),
    (["--set", "optim.min_lr_factor=1.5"], "optim.min_lr_factor = 1.5; expected a value in [0, 1]"),
    (["--set", "data.augment.rotate_deg=nan"],
     "data.augment.rotate_deg = nan; expected degrees in [0, 180]"),
    # c39: a seed torch cannot take was a ValueError traceback
    (["--set", "train.seed=99999999999999999999999"],
     "train.seed = 99999999999999999999999; expected an integer from -2**63 to 2**64-1 "
     "(the seeds torch accepts)"),
    (["--set", "data.split_seed=-1"], "data.split_seed = -1; expected an integer >= 0"),
    # c54, c96: absurd sizes are refused with the memory they would need
    (["--set", "data.augment.crop_padding=100000", "--batch-size", "64"],
     "data.augment.crop_padding = 100000; expected at most 28 (the images are 28x28; a padded "
     "batch of 64 would need 10.2 TB)"),
    (["--width", "100000"],
     "model.width = 100000.0; expected at most 129 (it would make a model of about 3e+14 "
     "parameters, 1.2e+06 GB of float32 weights; the limit is 5e+08)"),
    (["--model", "mlp", "--set", "model.hidden=[100000,100000]"],
     "model.hidden = [100000, 100000]; expected at most 500 M parameters (it would make a model "
     "of about 1.03e+10 parameters, 41.2 GB of float32 weights; the limit is 5e+08)"),
])
def test_bad_values_are_refused_before_a_run_dir(flags, message, tmp_path, capsys):
    assert refused(["train", *TINY, *flags], tmp_path, capsys) == message


def test_largest_accepted_sizes_still_pass():
    from dlab.config import resolve

    assert resolve({"model": {"width": 129}}).model.width == 129
    assert resolve({"data": {"dataset": "cifar10", "augment": {"crop_padding": 32}}})
    assert resolve({"train": {"seed": 2**64 - 1}}).train.seed == 2**64 - 1
    assert resolve({"train": {"seed": -1}}).train.seed == -1  # torch takes it (c40)


# ------------------------------------------------------------------- bad messages (in words)

@pytest.mark.parametrize("flags,message", [
    (["--set", "optim.lr=abc"], "optim.lr = 'abc': expected a number"),  # c27
    (["--set", "optim.lr=[0.1,0.2]"], "optim.lr = [0.1, 0.2]: expected a number"),  # c58
    (["--set", "data.std=['a']"], "data.std = ['a']: expected a list of numbers"),
    (["--set", "optim.betas=[0.9]"], "optim.betas = [0.9]: expected a list of 2 numbers"),
    (["--set", "model.bn_conv1=1"], "model.bn_conv1 = 1: expected true or false"),
    (["--set", "train.epochs=1.5"], "train.epochs = 1.5: expected an integer"),
])
def test_type_errors_are_stated_in_words(flags, message, tmp_path, capsys):
    assert refused(["train", *TINY, *flags], tmp_path, capsys) == message


# --------------------------------------------------------------------- input files (traceback)

def _files(tmp_path):
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "folder.toml").mkdir()
    return tmp_path


@pytest.mark.parametrize("command,name,message", [
    (["train", *TINY, "--config"], "binary.toml",  # c60
     "config file '{p}' is not UTF-8 text (byte 0: b'\\xff'); expected a TOML file"),
    (["train", *TINY, "--config"], "folder.toml",  # c61
     "config file '{p}' is a folder; expected a TOML file"),
    (["study", "run"], "binary.toml",  # s_binary
     "study file '{p}' is not UTF-8 text (byte 0: b'\\xff'); expected a TOML file"),
    (["tune"], "binary.toml",  # t_binary
     "search space '{p}' is not UTF-8 text (byte 0: b'\\xff'); expected a TOML file"),
    (["tune"], "folder.toml", "search space '{p}' is a folder; expected a TOML file"),
])
def test_unreadable_input_files_are_one_line(command, name, message, tmp_path, capsys):
    path = _files(tmp_path) / name
    assert refused([*command, str(path)], tmp_path, capsys) == message.format(p=path)


STUDY = '''name = "bad"
[base]
data.dataset = "mnist"
{base}
[[questions]]
key = "q1"
title = "t"
text = "t"
explanation = "e"
[[questions.variants]]
label = "a"
set = {set}
'''


@pytest.mark.parametrize("base,set_,message", [
    ("", '{ "model" = 3, "model.width" = 2 }',  # s_nestclash
     "study file '{p}', line 11: questions.q1/a.set: 'model.width': 'model' is set to 3, "
     "not a table of keys"),
    ('train = 3\n"train.epochs" = 2', "{}",  # s_baseclash
     "study file '{p}', line 2: base: 'train.epochs': 'train' is set to 3, not a table of keys"),
    ("", '{ "model.width" = 2, "model" = 3 }',
     "study file '{p}', line 11: questions.q1/a.set: 'model' = 3: 'model' is also a table of "
     "keys ('model.width')"),
])
def test_study_keys_both_value_and_table(base, set_, message, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(STUDY.format(base=base, set=set_))
    assert refused(["study", "run", str(path), "--dry-run"], tmp_path, capsys) \
        == message.format(p=path)


TUNE = '''[base]
data.dataset = "mnist"
[space."{key}"]
{param}
'''


@pytest.mark.parametrize("text,message", [
    ('base = 3\n[space."optim.lr"]\ntype = "float"\nlow = 0.01\nhigh = 0.1',  # t_basenottable
     "base = 3; expected a [base] table of config keys"),
    (TUNE.format(key="optim.lr", param='type = "float"\nlow = 0.001\nhigh = 0.1\nlog = true\n'
                 'step = 0.01'),  # t_steplog
     "space.optim.lr: step = 0.01 with log = true; a log-scale parameter takes no step "
     "(optuna samples it continuously)"),
    (TUNE.format(key="train.batch_size", param='type = "int"\nlow = 16\nhigh = 64\nstep = 0'),
     "space.train.batch_size.step = 0; expected an integer >= 1"),  # t_stepzero
    (TUNE.format(key="train.batch_size", param='type = "int"\nlow = 16\nhigh = 64\nstep = -8'),
     "space.train.batch_size.step = -8; expected an integer >= 1"),
    (TUNE.format(key="optim.lr", param='type = "float"\nlow = 0.01\nhigh = 0.1\nstep = nan'),
     "space.optim.lr.step = nan; expected a number > 0"),
    (TUNE.format(key="optim.lr", param='type = "float"\nlow = 0.01\nhigh = inf'),
     "space.optim.lr: low = 0.01, high = inf; expected finite numbers"),
    (TUNE.format(key="train.batch_size", param='type = "int"\nlow = 16\nhigh = 64\nlog = 1'),
     "space.train.batch_size.log = 1; expected true or false"),
])
def test_tune_space_errors_when_the_file_is_read(text, message, tmp_path, capsys):
    path = tmp_path / "space.toml"
    path.write_text(text)
    assert refused(["tune", str(path)], tmp_path, capsys) \
        == f"search space '{path}': {message}"


# ------------------------------------------------------------------------- conflicting flags

@pytest.mark.parametrize("argv,message", [
    # x01: flags beside --resume RUN were silently ignored
    (["train", "--resume", "{run}", "--epochs", "5", "--lr", "0.5"],
     "--resume {run} with --epochs, --lr: a resumed run keeps the config it started with; "
     "drop those flags, or train a new run without --resume"),
    (["train", "--resume", "{run}", "--set", "train.epochs=5"],
     "--resume {run} with --set: a resumed run keeps the config it started with; drop those "
     "flags, or train a new run without --resume"),
    # x05: --lr-factor was silently ignored beside --lr
    (["finetune", "{run}", "--lr", "0.1", "--lr-factor", "0.5"],
     "--lr 0.1 and --lr-factor 0.5: give one (--lr sets the learning rate, --lr-factor scales "
     "the checkpoint's)"),
    (["finetune", "{run}", "--set", "optim.lr=0.1", "--lr-factor", "0.5"],
     "--set optim.lr and --lr-factor 0.5: give one (--lr sets the learning rate, --lr-factor "
     "scales the checkpoint's)"),
    # c86: the flag is named, not the lr it would make
    (["finetune", "{run}", "--lr-factor", "nan"], "--lr-factor nan: expected a number > 0 (e.g. 0.05)"),
    (["finetune", "{run}", "--lr-factor", "inf"], "--lr-factor inf: expected a number > 0 (e.g. 0.05)"),
    (["finetune", "{run}", "--lr-factor", "0"], "--lr-factor 0.0: expected a number > 0 (e.g. 0.05)"),
    # n16, n17: sizes of the numpy convnet name the flag
    (["numpy", "convnet", "--train-size", "0"], "--train-size 0: expected an integer >= 1"),
    (["numpy", "convnet", "--train-size", "-5"], "--train-size -5: expected an integer >= 1"),
    (["numpy", "convnet", "--seed", "-1"], "--seed -1: expected an integer >= 0"),
    # a08: analysis sizes
    (["analyze", "grad-norm", "--set", "lr=nan"], "grad-norm.lr = nan; expected a finite number"),
    (["analyze", "grad-norm", "--set", "lr=inf"], "grad-norm.lr = inf; expected a finite number"),
])
def test_conflicting_or_bad_flags(argv, message, tmp_path, capsys):
    run = tmp_path / "somerun"
    argv = [a.format(run=run) for a in argv]
    assert refused(argv, tmp_path, capsys) == message.format(run=run)


def test_finetune_help_states_the_default_it_uses(capsys):
    """x06: `finetune --help` said fashion-mnist while mnist was used."""
    from dlab.cli import build_parser
    from dlab.cli.train import FINETUNE_DATASET

    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default {FINETUNE_DATASET})" in help_text and "fashion-mnist)" not in help_text
    args = build_parser().parse_args(["finetune", "somerun"])
    assert args.dataset == FINETUNE_DATASET and args.lr_factor is None


# --- study run options and steps whose source diverged (findings s_thr, s_onlycomma, s_diverge)

def _study_file(tmp_path, lr_source="0.01"):
    path = tmp_path / "s.toml"
    path.write_text(f'''
name = "opts"
[base]
data.dataset = "mnist"
data.train_limit = 128
data.val_limit = 64
train.epochs = 1
train.batch_size = 64
[[questions]]
key = "q1"
title = "t"
text = "t"
explanation = "t"
[[questions.variants]]
label = "a"
set = {{ "optim.lr" = {lr_source} }}
[[questions.variants]]
label = "ev"
kind = "eval"
source = "q1/a"
dataset = "fashion-mnist"
''')
    return path


@pytest.mark.parametrize("flags, expect", [
    (["--threads", "-1"], "--threads -1: expected an integer >= 1"),
    (["--workers", "0"], "--workers 0: expected an integer >= 1"),
    (["--only", ","], "--only ',': expected comma-separated question keys"),
])
def test_study_run_options_are_refused_before_work(tmp_path, capsys, flags, expect):
    from dlab.cli import main

    runs = tmp_path / "runs"
    code = main(["study", "run", str(_study_file(tmp_path)), "--runs-dir", str(runs), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expect in err[0]
    assert not runs.exists() or not any(runs.rglob("config.json"))


def test_eval_step_of_a_diverged_source_says_so(tmp_path, data_dir, capsys):
    from dlab.cli import main

    runs = tmp_path / "runs"
    code = main(["study", "run", str(_study_file(tmp_path, "1e30")), "--runs-dir", str(runs),
                 "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert code == 1
    assert "its source" in out and "diverged before its first checkpoint" in out
