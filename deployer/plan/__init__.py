"""Plan: the data (model.py), reading the site (observe.py), the planner (planner.py) and
saved plans (saved.py). The package itself imports nothing, so that the step kinds can use
the plan data while the planner uses the step kinds."""
