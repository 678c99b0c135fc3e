"""The leaderboard: build a table across runs, validate a submission, spot-check it, export it to the Hub.

Module map (lowest first; import-linter keeps the order, see pyproject.toml):
``refusals`` the finding every check returns (imports nothing of ours);
``policy`` what a submission must satisfy (the validate command's options);
``submission`` the groups a submission must cover and its tasks rebuilt as logged;
``recompute`` our task code found by its logged source, values compared;
``structure`` / ``coverage`` / ``judging`` / ``spot_check`` the checks, independent of each other;
``verdict`` all checks together and the ACCEPTED / REFUSED report; ``build`` the table; ``export`` the
Hub's Eval Results files.
"""
