"""The Responses API (spec 9.4) served through the chat-completions pipeline.

``request`` validates a Responses body and turns it into a chat-completions body (and the
messages a turn adds, for ``previous_response_id``); ``response`` turns a chat completion into
a Response object; ``stream`` turns chat-completion chunks into Responses stream events.
All pure: ids and times are parameters.
"""
