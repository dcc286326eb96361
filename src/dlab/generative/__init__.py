"""GANs (DCGAN, WGAN, WGAN-GP, ACGAN) and their metrics, as task "gan" (`dlab.tasks.gan`).

Modules: `config` (GanConfig, per-kind defaults; torch-free), `models` (G, D, EMA), `losses`,
`session` (what the shared trainer drives), `frechet` (FD/KID math, numpy), `extractor` (the
dlab classifier whose features FD-dlab uses), `metrics` (scores with their real-vs-real floors),
`inception` (the standard FID Inception graph, for user-supplied weights), `sampling` (samples,
grids, curves), `score` (scoring / sampling a checkpoint). This package top level imports
nothing (the task module reads `config` without torch).
"""
