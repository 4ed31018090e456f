"""Tuning: find better strategy settings from a trace, prove them, record them.

The pieces, each usable alone (the guarded live rollout reuses the gate and
the experiment record):

- :mod:`~scheduler.tuning.rules`: what a configuration is and the rules every
  proposal must pass (the settings' own, and no priority inversion);
- :mod:`~scheduler.tuning.space`: the search spaces the strategies declare;
- :mod:`~scheduler.tuning.trace`: a trace checked and split by time into a
  training and a held-out part;
- :mod:`~scheduler.tuning.objectives` and :mod:`~scheduler.tuning.evaluate`:
  what is minimised, measured per task in the simulator;
- :mod:`~scheduler.tuning.regression`: the regression gate (paired block bootstrap);
- :mod:`~scheduler.tuning.search`: the Optuna search in parallel processes;
- :mod:`~scheduler.tuning.advisors`: where proposals come from (the search,
  an HTTP service), validated and counted by class;
- :mod:`~scheduler.tuning.experiments` and :mod:`~scheduler.tuning.report`:
  the record of every run and its HTML report;
- :mod:`~scheduler.tuning.session`: one ``yardmaster tune`` run, end to end.

It sits in layer 3, beside :mod:`scheduler.adaptive`: it composes the
strategies with the simulator and talks to no Redis (the command line reads
the live configuration and passes it in).
"""
