import { describe, expect, it } from 'vitest';
import { stringifySharingReplay } from './stored-json.js';

const replay = Object.freeze({
  src: Object.freeze({
    ip: '10.0.0.1',
    pod: Object.freeze({ labels: Object.freeze({ app: '$& $1 $$ "q" \\ é' }) }),
  }),
  dst: Object.freeze({ ip: '10.0.0.2' }),
  proto: 'TCP',
  port: 80,
});

describe('stringifySharingReplay', () => {
  it('writes what JSON.stringify writes, the frozen replay fact from its text, and leaves the facts as they were', () => {
    const facts = { srcNamespace: 'a', replay, observer: 'o' };
    const value = {
      source: { topic: 't', partition: 1 },
      evidence: { note: '\u0000replay-not-the-nonce\u0000', text: '"\\u0000replay' },
      facts,
      after: [1, 2],
    };
    for (let i = 0; i < 3; i++) expect(stringifySharingReplay(value, facts)).toBe(JSON.stringify(value));
    expect(facts.replay).toBe(replay);
    expect(JSON.parse(stringifySharingReplay(value, facts))).toEqual(JSON.parse(JSON.stringify(value)));
  });

  it('serializes as JSON.stringify does when the fact is not frozen, or there is none', () => {
    const open = { a: { b: 1 } };
    const facts = { replay: open };
    expect(stringifySharingReplay({ facts }, facts)).toBe(JSON.stringify({ facts }));
    expect(stringifySharingReplay({ x: 1 }, undefined)).toBe('{"x":1}');
    expect(stringifySharingReplay({ facts: {} }, {})).toBe('{"facts":{}}');
  });
});
