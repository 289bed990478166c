"""Process workers of the enqueuers (`use_multiprocessing=True`)."""
