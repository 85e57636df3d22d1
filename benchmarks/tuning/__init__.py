"""Equal, declared tuning budgets for every family: search spaces from the registry, Optuna proposing, trials
as ordinary runs, expected-max curves."""
