"""What the conversation engine answers: text, optionally with choices the sender can render as a WhatsApp
interactive list (up to 10 rows) or reply buttons (up to 3), or as numbered text."""

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Option:
    id: str  # stable, machine-readable: "doctor:12", "slot:2026-11-24T09:00", "specialty:3", "confirm:yes"
    title: str  # what the patient sees (the sender truncates to WhatsApp's limits)
    description: str = ""


@dataclass
class Reply:
    text: str
    options: list[Option] = field(default_factory=list)
    kind: Literal["text", "list", "buttons"] = "text"
    button_label: str = "Ver opções"
    # False for turns that must stay silent (human handoff in progress, reactions).
    send: bool = True

    def as_text(self) -> str:
        """The text fallback: the body followed by numbered options ("1. Dra. Ana Souza")."""
        if not self.options:
            return self.text
        lines = [
            f"{i}. {o.title}" + (f" ({o.description})" if o.description else "") for i, o in enumerate(self.options, 1)
        ]
        return self.text + "\n\n" + "\n".join(lines)

    def to_dict(self) -> dict:
        """Stored on the bot ConversationMessage (entities["reply"]) so a resend rebuilds the same message."""
        return {
            "kind": self.kind,
            "button_label": self.button_label,
            "options": [{"id": o.id, "title": o.title, "description": o.description} for o in self.options],
        }

    @classmethod
    def from_dict(cls, text: str, data: dict | None) -> "Reply":
        data = data or {}
        options = [Option(**o) for o in data.get("options", [])]
        return cls(
            text=text,
            options=options,
            kind=data.get("kind", "text"),
            button_label=data.get("button_label", "Ver opções"),
        )
