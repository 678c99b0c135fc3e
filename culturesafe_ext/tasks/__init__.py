"""Python hooks named by the task YAMLs (doc_to_text, process_docs, process_results, aggregations)."""
