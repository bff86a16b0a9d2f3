"""Checks on explicit conversations `[{'from': 'human'|'gpt', 'value': str}, ...]`.

A usable conversation holds exactly one `<image>` (none for text-only data) and, in its
gpt turns, one `<mask>` per mask of the sample (in order), which is what
`chat_template.training_example` needs.
"""

from argenseg_jax.chat_template import IMAGE, MASK

ROLES = ('human', 'gpt')


def check_conversation(conversation, num_masks: int, origin: str,
                       num_images: int = 1) -> list[dict]:
  """Returns `conversation` as a list of `{'from', 'value'}` dicts, or raises a
  `ValueError` naming `origin` and what is wrong."""
  if not isinstance(conversation, list) or not conversation:
    raise ValueError(f'{origin}: a conversation must be a non-empty list of turns.')
  turns = []
  for i, turn in enumerate(conversation):
    if (not isinstance(turn, dict) or turn.get('from') not in ROLES
        or not isinstance(turn.get('value'), str)):
      raise ValueError(f'{origin}: turn {i} must be {{"from": "human"|"gpt", "value": '
                       f'"..."}}, got {turn!r:.120}.')
    turns.append({'from': turn['from'], 'value': turn['value']})
  images = sum(t['value'].count(IMAGE) for t in turns)
  if images != num_images:
    raise ValueError(f'{origin}: the conversation must hold {num_images} {IMAGE}, found '
                     f'{images}.')
  masks = sum(t['value'].count(MASK) for t in turns if t['from'] == 'gpt')
  if masks != num_masks:
    raise ValueError(f'{origin}: the gpt turns hold {masks} {MASK} placeholders for '
                     f'{num_masks} mask(s); there must be one per mask.')
  return turns
