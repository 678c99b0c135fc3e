"""CultureManager's routing logic, importable without lm-eval's models: the culture router's classifier
(:mod:`.classifier`, trained by ``culturesafe train router``) and the route tags ``hf-router`` adds to each
request (:mod:`.route_tags`, so lm-eval's request cache keys and the logged samples name the adapter used).
The lm-eval model that uses them is :class:`culturesafe_ext.models.router.HFRouterLM` (``hf-router``).
"""
