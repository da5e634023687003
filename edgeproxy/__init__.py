"""edgeproxy: a local, faithful emulator of CloudFront's request pipeline with Lambda@Edge."""

__version__ = "0.1.0"
