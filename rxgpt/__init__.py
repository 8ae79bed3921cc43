"""rxgpt: reactive consumption of streamed LLM responses."""
