"""THE LLM client of culturesafe: settings (one parser), backends, on-disk cache, ``complete``, prompt files.

Everything that talks to an LLM goes through here -- the safety and CulturaX judges (:mod:`culturesafe_ext.judge`
builds on it), the benchmark generator and the grounded DPO recipe:

- :mod:`.settings`: :class:`LLMConfig` (called ``JudgeConfig`` where it configures the judge) and panels,
  parsed once from ``--metadata``, ``--judge`` or ``CULTURESAFE_JUDGE_*`` environment variables; secrets
  refused wherever a setting can carry one;
- :mod:`.backends`: OpenAI-compatible HTTP, the OpenAI Batch API, a local transformers model;
- :mod:`.cache`: the sqlite cache (a killed run resumes; failures are never cached);
- :mod:`.client`: :class:`LLMClient` and its ``complete`` (cache first, each distinct prompt sent once);
- :mod:`.prompts`: the one prompt-file reader and template (untrusted values neutralised).

Importing this package is cheap: aiohttp and torch load only when a backend is created.
"""

from culturesafe_ext.llm.client import Completion, LLMClient
from culturesafe_ext.llm.settings import JudgeConfig, JudgeNotConfiguredError, JudgeSettingError, LLMConfig

__all__ = ["Completion", "JudgeConfig", "JudgeNotConfiguredError", "JudgeSettingError", "LLMClient", "LLMConfig"]
