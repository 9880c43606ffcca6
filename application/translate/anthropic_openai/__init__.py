"""An Anthropic Messages client served by an OpenAI chat-completions upstream (spec 9.11):
the request goes out as a chat completion, the completion or its stream comes back as a
Message or as Anthropic stream events."""
