"""Generate a new culture's benchmark with an LLM, deduplicate it, have people verify it, publish it.

``culturesafe generate adaculturesafe|culturax`` writes review files; ``culturesafe generate
review-import`` applies the reviewers' decisions and writes the Hub layout (see README, "Generate a
new culture's benchmark"). Every LLM call goes through the project's one client, ``LLMClient.complete``,
so every reply is cached on disk and a killed run resumes without repeating a call.
"""
