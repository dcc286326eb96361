"""Optimization and generalization experiments (`dlab analyze`): SPEC section 5.

Layout: `registry` (name → sizes config + compute), `experiments/` (one module each; compute the
numbers and the figure data), `plots` (draw only), `runner` (run directories, report),
`batched` (the vmap trainer all same-architecture repetitions share), `nets`, `datasets`,
`training`, `hessian`. Import `dlab.analysis.registry` etc. directly; this package's top level
imports nothing heavy.
"""
