"""Training data: mined episodes and eval tasks as rows for TRL (`dataset export`)."""
