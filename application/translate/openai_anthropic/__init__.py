"""OpenAI chat-completions clients served by an Anthropic Messages upstream (spec 9.11).

``request`` turns the client's body into a Messages body, ``response`` turns a Message back
into a chat.completion, and ``stream`` turns Messages stream events into chat chunks.
"""
