"""Prompt templates: ``{field}`` placeholders filled from a dataset row."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.entities import ConversationMessage
from ..core.hashing import stable_hash
from ..errors import TemplateError

__all__ = ["PromptTemplate"]

_FORMATTER = string.Formatter()
_ROLES = ("system", "user", "assistant")


def _fields_of(owner: str, text: str) -> tuple[str, ...]:
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise TemplateError(
            f"template {owner!r} is malformed ({exc}); write literal braces as '{{{{' and '}}}}'"
        ) from None
    names: list[str] = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise TemplateError(
                f"template {owner!r} has a positional placeholder '{{{name}}}'; "
                "name the row field instead, e.g. '{question}'"
            )
        root = name.split(".", 1)[0].split("[", 1)[0]
        if root not in names:
            names.append(root)
    return tuple(names)


@dataclass(frozen=True)
class PromptTemplate:
    """A named prompt. ``template`` is the user message; ``system`` an optional system prompt.

    For few-shot chats pass ``messages`` — a list of ``{"role", "content"}`` dicts whose contents
    may hold placeholders too; the rendered ``template`` (if any) is appended as the last user turn.
    """

    name: str
    template: str = ""
    system: str | None = None
    messages: Sequence[Mapping[str, str]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.name:
            raise TemplateError("PromptTemplate.name must be a non-empty string")
        if not self.template and not self.messages:
            raise TemplateError(f"template {self.name!r} has neither 'template' nor 'messages'")
        msgs = tuple(dict(m) for m in self.messages)
        for i, message in enumerate(msgs):
            if message.get("role") not in _ROLES or "content" not in message:
                raise TemplateError(
                    f"template {self.name!r}: message {i} must be a dict with role in "
                    f"{_ROLES} and a 'content' string"
                )
        object.__setattr__(self, "messages", msgs)
        fields: list[str] = []
        for text in self._texts():
            for name in _fields_of(self.name, text):
                if name not in fields:
                    fields.append(name)
        object.__setattr__(self, "_fields", tuple(fields))

    def _texts(self) -> list[str]:
        texts = [self.system] if self.system else []
        texts += [m["content"] for m in self.messages]
        if self.template:
            texts.append(self.template)
        return texts

    @property
    def fields(self) -> tuple[str, ...]:
        """Row fields the template reads."""
        return self._fields  # type: ignore[attr-defined,no-any-return]

    @property
    def fingerprint(self) -> str:
        return stable_hash(
            {"template": self.template, "system": self.system, "messages": list(self.messages)}
        )

    def missing_fields(self, row: Mapping[str, Any]) -> list[str]:
        return [f for f in self.fields if f not in row]

    def render_text(self, text: str, row: Mapping[str, Any], row_id: Any = None) -> str:
        try:
            return text.format_map(row)
        except KeyError as exc:
            raise TemplateError(
                f"template {self.name!r} needs field {exc.args[0]!r}, which row {row_id!r} "
                f"lacks (row fields: {', '.join(map(str, row)) or 'none'})"
            ) from None
        except (IndexError, AttributeError, ValueError) as exc:
            raise TemplateError(f"template {self.name!r} failed on row {row_id!r}: {exc}") from None

    def render(self, row: Mapping[str, Any], row_id: Any = None) -> str:
        """The user prompt for ``row`` (the last user message when ``messages`` is used)."""
        return self.render_messages(row, row_id)[-1]["content"]

    def render_messages(
        self, row: Mapping[str, Any], row_id: Any = None
    ) -> tuple[ConversationMessage, ...]:
        """Chat messages for ``row``: system prompt, fixed turns, then the rendered template."""
        out: list[ConversationMessage] = []
        if self.system:
            out.append({"role": "system", "content": self.render_text(self.system, row, row_id)})
        for message in self.messages:
            content = self.render_text(message["content"], row, row_id)
            out.append({"role": message["role"], "content": content})
        if self.template:
            out.append({"role": "user", "content": self.render_text(self.template, row, row_id)})
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "template": self.template,
            "system": self.system,
            "messages": [dict(m) for m in self.messages],
            "sha256": self.fingerprint,
        }
