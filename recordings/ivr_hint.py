"""What the IVR knew when a caller left a message, carried to the ticket.

Before ``VoiceMail()`` the IVR sets the channel variable ``VM_CATEGORY``;
app_voicemail writes it verbatim as ``category=`` in the message's ``msgNNNN.txt``
(a real Asterisk feature, so this works against any Asterisk, and survives our
server being down while the message is left). The value is one ASCII line:

    cc1;call=1763800000.42;room=1201;path=%E6%8A%A5%E4%BF%AE/%E6%B0%B4%E7%94%B5

``room`` is the room id the caller is known for or chose in the menu; ``path``
the menu labels (报修/水电), percent-encoded. A category that is not ours (a site
using VM_CATEGORY for its own purposes) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

PREFIX = "cc1"
MAX_LENGTH = 250  # app_voicemail keeps it in a fixed buffer; stay well inside
_SAFE = "-._~:"


@dataclass(frozen=True, slots=True)
class IvrHint:
    call_id: str = ""
    room_id: int | None = None
    path: tuple[str, ...] = ()

    @property
    def path_text(self) -> str:
        return " → ".join(self.path)


def encode_hint(hint: IvrHint) -> str:
    """The ``VM_CATEGORY`` value; the path is shortened from the front if too long."""
    parts = [PREFIX, "call=" + quote(hint.call_id, safe=_SAFE)]
    if hint.room_id is not None:
        parts.append(f"room={hint.room_id}")
    path = list(hint.path)
    while True:
        value = ";".join([*parts, "path=" + "/".join(quote(p, safe=_SAFE) for p in path)])
        if len(value) <= MAX_LENGTH or not path:
            return value[:MAX_LENGTH]
        path.pop(0)


def parse_hint(category: str) -> IvrHint | None:
    """The hint in a message's ``category``; None when it holds none of ours."""
    fields = category.strip().split(";")
    if not fields or fields[0] != PREFIX:
        return None
    values: dict[str, str] = {}
    for field in fields[1:]:
        key, sep, value = field.partition("=")
        if sep:
            values[key] = value
    room: int | None = None
    raw_room = values.get("room", "")
    if raw_room.isdigit():
        room = int(raw_room)
    path = tuple(unquote(p) for p in values.get("path", "").split("/") if p)
    return IvrHint(call_id=unquote(values.get("call", "")), room_id=room, path=path)
