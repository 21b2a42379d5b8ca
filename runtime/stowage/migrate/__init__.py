"""Migration between S3 and local disk (either direction, and S3 to S3)."""
