import { randomUUID } from 'node:crypto';

/**
 * JSON.stringify of a message that carries a stored flow, with the flow's replay fact written from
 * text made once per fact. The processor gives every flow of a conversation the same frozen replay
 * fact (both ends' pods with their labels and their namespaces' labels: about a third of a
 * violation's ~2 KB), so serializing it again for every violation and every verdict was the
 * largest part of their cost. The output is byte for byte JSON.stringify's: the fact is swapped for
 * a placeholder while the rest is serialized, and its text put where the placeholder's is. The
 * placeholder carries a random nonce, so no string from a flow record can be taken for it.
 */
const PLACEHOLDER = `\u0000replay-${randomUUID()}\u0000`;
const PLACEHOLDER_JSON = JSON.stringify(PLACEHOLDER);
const texts = new WeakMap<object, string>();

export function stringifySharingReplay(
  value: unknown,
  facts: { replay?: unknown } | null | undefined,
): string {
  const replay = facts?.replay;
  if (!replay || typeof replay !== 'object' || !Object.isFrozen(replay) || Object.isFrozen(facts))
    return JSON.stringify(value);
  let text = texts.get(replay);
  if (text === undefined) {
    text = JSON.stringify(replay);
    texts.set(replay, text);
  }
  const f = facts as { replay?: unknown };
  f.replay = PLACEHOLDER;
  let out: string;
  try {
    out = JSON.stringify(value);
  } finally {
    f.replay = replay;
  }
  // A function replacement: the text is inserted as is (no `$` patterns).
  return out.replace(PLACEHOLDER_JSON, () => text);
}
