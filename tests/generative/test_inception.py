"""dlab's FID Inception graph against pytorch-fid's (same random weights ⇒ same features);
the TF1 bilinear resize; the weights-file checks.

pytorch-fid imports torchvision, which dlab never installs: its `inception.py` is loaded with a
minimal `torchvision` stand-in whose base blocks are dlab's (they only declare the branch
layers; every forward pass compared — the FID-patched blocks and the whole wiring — is
pytorch-fid's own code). Skipped when pytorch-fid is not installed
(`pip install --no-deps pytorch-fid`).
"""

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from dlab.errors import DlabError
from dlab.generative import inception as dl


def _pytorch_fid(monkeypatch):
    spec = importlib.util.find_spec("pytorch_fid")
    if spec is None:
        pytest.skip("pytorch-fid is not installed (pip install --no-deps pytorch-fid)")
    tv = types.ModuleType("torchvision")
    tv.__version__ = "0.20.0"
    models = types.ModuleType("torchvision.models")
    inc = types.ModuleType("torchvision.models.inception")
    inc.InceptionA, inc.InceptionC, inc.InceptionE = dl.InceptionA, dl.InceptionC, dl.InceptionE
    models.inception = inc
    models.inception_v3 = lambda **kw: dl.FIDInception()  # the stem; Mixed_* replaced below
    tv.models = models
    for name, mod in (("torchvision", tv), ("torchvision.models", models),
                      ("torchvision.models.inception", inc)):
        monkeypatch.setitem(sys.modules, name, mod)
    path = spec.submodule_search_locations[0] + "/inception.py"
    module = types.ModuleType("pytorch_fid_inception")
    exec(compile(open(path).read(), path, "exec"), module.__dict__)
    return module


def _random_state(seed: int) -> dict:
    torch.manual_seed(seed)
    net = dl.FIDInception()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net.state_dict()


def test_same_weights_same_pool3_features_as_pytorch_fid(monkeypatch):
    pf = _pytorch_fid(monkeypatch)
    state = _random_state(0)
    monkeypatch.setattr(pf, "load_state_dict_from_url", lambda *a, **k: state)
    theirs = pf.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    ours = dl.FIDInception()
    ours.load_state_dict(state)
    ours.eval()
    assert type(theirs.blocks[2][0]).__name__ == "FIDInceptionA"  # their patched block ran
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        a = theirs(x)[0].flatten(1)
        b = ours.pool3(x)
    assert a.shape == (2, 2048) and a.abs().mean() > 0
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    # Mixed_7c's pool branch really is a max pool: an average there changes the features
    ours.Mixed_7c.max_pool = False
    with torch.no_grad():
        assert not torch.allclose(ours.pool3(x), a, rtol=1e-4, atol=1e-5)


def test_tf1_bilinear_resize_matches_the_tf1_formula():
    x = torch.rand(1, 1, 5, 7, generator=torch.Generator().manual_seed(0))
    out = dl.resize_tf1_bilinear(x, 11).numpy()[0, 0]
    a = x.numpy()[0, 0]
    for i in range(11):
        for j in range(11):
            sy, sx = i * 5 / 11, j * 7 / 11  # TF1: no half-pixel offset
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, 4), min(x0 + 1, 6)
            fy, fx = sy - y0, sx - x0
            top = a[y0, x0] * (1 - fx) + a[y0, x1] * fx
            bot = a[y1, x0] * (1 - fx) + a[y1, x1] * fx
            assert out[i, j] == pytest.approx(top * (1 - fy) + bot * fy, abs=1e-6)
    # and it is not PyTorch's half-pixel bilinear
    half = torch.nn.functional.interpolate(x, size=(11, 11), mode="bilinear",
                                           align_corners=False)
    assert not np.allclose(out, half.numpy()[0, 0], atol=1e-3)


def test_weights_file_checks(tmp_path):
    with pytest.raises(DlabError, match="not found; expected pt_inception-2015-12-05"):
        dl.verify_weights(tmp_path / "missing.pth")
    bad = tmp_path / dl.WEIGHTS_NAME
    bad.write_bytes(b"not the inception weights")
    with pytest.raises(DlabError) as err:
        dl.verify_weights(bad)
    assert "is not the FID Inception file's (6726825d" in str(err.value)
    assert "github.com/mseitzer/pytorch-fid/releases" in str(err.value)
