"""Dataset builders: authors' releases (and our generation pipeline) -> the Hub layout -> the Hub.

Installed as ``culturesafe_ext.builders``; run through ``culturesafe build ...``.
"""
