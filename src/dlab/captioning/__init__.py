"""Video captioning: the course data layout (MSVD subset of the Clemson/MLDS HW2), its scorer and
honest companions (corpus BLEU-4, CIDEr-D, constant-caption baselines), a synthetic captioned
moving-digit set in the same layout, and an S2VT-style encoder-decoder with attention.

Modules: `text` (tokenization, vocabulary), `course` (reading the course layout), `scores`
(BLEU@1 as the course script computes it, BLEU-4, CIDEr-D, constant baselines), `synth` (the
synthetic set), `parse` (which digits and motions a caption names), `config` (the task's config
tree), `model` and `decode` (torch), `session` (what the shared trainer drives), `figures`.
Only `model`, `decode` and `session` import torch.
"""
