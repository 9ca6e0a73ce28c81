"""The relay client: one request model, three wire formats, one error taxonomy.

Imports nothing else from the bot, so it can be used alone (tests, the operator CLI).
"""
