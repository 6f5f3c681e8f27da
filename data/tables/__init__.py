"""The word, phrase and fact tables behind `data/generate.py`, one plain data module per dataset.

- `tickets.py`: product names, customer names, the ticket scenarios and the ticket phrasing.
- `voice.py`: the house-voice rule phrases and the chosen / rejected reply phrasing.
- `handbook.py`: the handbook facts, section texts and intro lines.
- `probes.py`: the easy general questions for the forgetting probes.

`generate.py` imports them by putting its own folder (data/) on `sys.path`; nothing is installed.
"""
