"""Studies: declarative sets of runs (questions x variants), planned, deduplicated and executed.

Modules: `spec` (study files), `plan` (expansion and deduplication into work items), `execute`
(one work item in this process), `local` (a pool of worker processes on one machine),
`distributed` (workers sharing an Optuna RDB storage), `tune` (Optuna hyperparameter search).
Importing this package does not import torch.
"""

from dlab.studies.plan import PlannedRun, StudyPlan, plan_study
from dlab.studies.spec import QuestionSpec, StudySpec, VariantSpec, builtin_studies, load_study

__all__ = ["PlannedRun", "QuestionSpec", "StudyPlan", "StudySpec", "VariantSpec",
           "builtin_studies", "load_study", "plan_study"]
