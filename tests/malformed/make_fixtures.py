"""Write the malformed JSONL fixtures of tests/test_data_module.py: one file per problem kind.

    python tests/malformed/make_fixtures.py

Each file has good rows around the bad one, so a test can check the exact line number. The
expected (line, kind, message fragment) of each file is in tests/test_data_module.py.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def chat(*turns: tuple[str, object], **extra) -> bytes:
    """One JSONL line: a chat row with these (role, content) turns and extra keys."""
    messages = [{"role": role, "content": content} for role, content in turns]
    return json.dumps({**extra, "messages": messages}, ensure_ascii=False).encode("utf-8")


GOOD = chat(("user", "Where is my kettle?"), ("assistant", "It ships today."))
GOOD_2 = chat(("system", "Be brief."), ("user", "Can I return the scale?"),
              ("assistant", "Yes, within 45 days."))
LONG = chat(("user", "My grinder makes a noise. " * 60), ("assistant", "Send it back."))

FIXTURES: dict[str, list[bytes]] = {
    "invalid_utf8": [GOOD, b'{"messages": [{"role": "user", "content": "caf\xe9 au lait"}]}'],
    "bom": [b"\xef\xbb\xbf" + GOOD, GOOD_2],
    "blank_line": [GOOD, b"   ", GOOD_2],
    "invalid_json": [GOOD, GOOD_2, b'{"messages": [{"role": "user", "content": "cut off'],
    "not_object": [GOOD, b'[{"role": "user", "content": "hi"}]', b'"just a string"'],
    "no_messages": [GOOD, b'{"id": "x1", "text": "Where is my kettle?"}',
                    b'{"prompt": "Where is my kettle?"}'],
    "messages_not_list": [GOOD, b'{"messages": "Where is my kettle?"}'],
    "messages_empty": [GOOD, GOOD_2, b'{"id": "x3", "messages": []}'],
    "message_not_object": [GOOD, b'{"messages": ["Where is my kettle?", '
                                 b'{"role": "assistant", "content": "Today."}]}'],
    "missing_role": [GOOD, b'{"messages": [{"role": "user", "content": "Hi"}, '
                           b'{"content": "Hello."}]}'],
    "missing_content": [GOOD, b'{"messages": [{"role": "user"}, '
                              b'{"role": "assistant", "content": "Hello."}]}'],
    "unknown_role": [GOOD, chat(("user", "Hi"), ("bot", "Hello."))],
    "empty_content": [GOOD, chat(("user", "Hi"), ("assistant", "")),
                      chat(("user", "   \n"), ("assistant", "Hello."))],
    "content_not_string": [GOOD, chat(("user", ["Hi", "there"]), ("assistant", "Hello."))],
    "bad_unicode": [GOOD, b'{"messages": [{"role": "user", "content": "Love it \\ud83d"}, '
                          b'{"role": "assistant", "content": "Thanks."}]}'],
    "no_assistant": [GOOD, chat(("system", "Be brief."), ("user", "Hi"))],
    "turn_order": [GOOD, chat(("user", "Hi"), ("user", "Hello?"), ("assistant", "Hello.")),
                   chat(("user", "Hi"), ("assistant", "Hello."), ("system", "Be brief."),
                        ("user", "Bye"), ("assistant", "Bye.")),
                   chat(("user", "Hi"), ("assistant", "Hello."), ("user", "Thanks"))],
    "duplicate": [GOOD, GOOD_2, chat(("user", "  where is my  KETTLE?"),
                                     ("assistant", "It ships today."), id="another id")],
    "too_long": [GOOD, LONG],
    "prompt_completion": [b'{"prompt": "Where is my kettle?", "completion": "It ships today."}',
                          b'{"id": "p2", "prompt": "Can I return it?", "completion": ""}'],
    "empty": [],
    "mixed": [b"\xef\xbb\xbf" + GOOD,                                  # 1 bom (warning)
              b"",                                                    # 2 blank (warning)
              b'{"messages": [oops]}',                                # 3 invalid JSON
              b"\xff\xfe",                                            # 4 invalid UTF-8
              b"42",                                                  # 5 not an object
              chat(("user", "Hi"), ("assistant", "")),                # 6 empty content
              chat(("user", "Hi"), ("robot", "Hello.")),              # 7 unknown role
              chat(("user", "Hi")),                                   # 8 no assistant
              chat(("assistant", "Hello."), ("user", "Hi"), ("assistant", "Bye.")),  # 9 order
              b'{"id": 10}',                                          # 10 no messages
              GOOD,                                                   # 11 duplicate of 1
              chat(("user", None), ("assistant", "ok"))],             # 12 content not string
}


def main() -> None:
    """Write every fixture file (LF line endings, a final newline unless empty)."""
    for name, lines in FIXTURES.items():
        (HERE / f"{name}.jsonl").write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
    print(f"wrote {len(FIXTURES)} files to {HERE}")


if __name__ == "__main__":
    main()
