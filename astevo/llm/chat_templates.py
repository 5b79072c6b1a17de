"""How a chat becomes the one text a model reads: the model's own Jinja template, or a known one.

The prompt ends inside the assistant's turn (astevo writes the start of the answer itself), so astevo renders
the chat itself for every backend instead of letting a chat endpoint close the turn.
"""

from __future__ import annotations

from typing import cast

from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_types import ChatCompletionRequestMessage

# Chat formats for GGUF files without `tokenizer.chat_template`, chosen by the special
# token that marks a turn in the model's vocabulary (the bundled Gemma file has none).
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set skip = 1 %}"
    "{% set system = messages[0]['content'] + '\\n\\n' %}{% else %}{% set skip = 0 %}"
    "{% set system = '' %}{% endif %}{% for message in messages[skip:] %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{{ (system if loop.first else '') + message['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PLAIN_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}:\n{{ message['content'] }}\n\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:\n{% endif %}"
)
TEMPLATE_BY_TURN_TOKEN = {"<start_of_turn>": GEMMA_TEMPLATE, "<|im_start|>": CHATML_TEMPLATE}


class ChatRenderer:
    """A chat template with the model's begin- and end-of-text markers."""

    def __init__(self, template: str, bos: str = "", eos: str = "") -> None:
        self.bos, self.eos = bos, eos
        self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)

    def render(self, messages: list[dict[str, str]]) -> str:
        """The chat as the model was trained to read it, ending where the assistant speaks."""
        # Each message is a {"role": ..., "content": ...} dict, the shape llama.cpp's chat messages have.
        return self._formatter(messages=cast(list[ChatCompletionRequestMessage], messages)).prompt
