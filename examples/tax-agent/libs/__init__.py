"""Code shared by every tax-agent service (copied into each image as /app/libs)."""
