"""The leaderboard: build a table across runs, validate a submission, spot-check it, export it to the Hub.

Module map: ``refusals`` (the finding type every check returns; imports nothing of ours), ``submission``
(the submission's tasks and how to rebuild them), ``recompute`` (our task code found by its logged source,
values compared), the checks ``structure`` / ``coverage`` / ``judging``, ``verdict`` (all checks together and
the accepted/refused report), ``spot_check``, ``build`` and ``export``.
"""
