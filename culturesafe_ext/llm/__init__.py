"""THE LLM client of culturesafe: settings (one parser), backends, on-disk cache, ``complete``, prompt files.

Everything that talks to an LLM goes through here -- the safety and CulturaX judges (:mod:`culturesafe_ext.judge`
builds on it), the benchmark generator and the grounded DPO recipe:

- :mod:`.settings`: :class:`LLMConfig`, a pydantic model parsed once from settings as a user gives them;
  secrets refused wherever a setting can carry one;
- :mod:`.backends`: OpenAI-compatible HTTP, the OpenAI Batch API, a local transformers model;
- :mod:`.retry`: the one retry policy of the HTTP backends;
- :mod:`.cache`: the sqlite cache (a killed run resumes; failures are never cached);
- :mod:`.client`: :class:`LLMClient` and its ``complete`` (cache first, each distinct prompt sent once);
- :mod:`.prompts`: the one prompt-file reader and template (untrusted values neutralised).

Importing this package is cheap: aiohttp and torch load only when a backend is created.
"""

from culturesafe_ext.llm.client import Completion, LLMClient
from culturesafe_ext.llm.settings import LLMConfig, LLMSettingError

__all__ = ["Completion", "LLMClient", "LLMConfig", "LLMSettingError"]
