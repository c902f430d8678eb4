"""The quick-start API: a tiny stdlib HTTP server using one dependency from the runtime layer."""
