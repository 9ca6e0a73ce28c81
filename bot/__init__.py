"""A Discord bot that renders Sora-2 videos through OpenAI-compatible relay gateways."""

__version__ = "0.1.0"
