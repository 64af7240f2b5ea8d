"""Speech models on disk: the manifest of known models, fetching, unpacking and installing."""
