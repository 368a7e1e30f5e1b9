import { describe, expect, it } from 'vitest';
import { FUTURE_SLACK_MS, MAX_JUMP_MS, PlausibleTime, REANCHOR_AFTER } from './plausible-time.js';

const NOW = Date.UTC(2026, 11, 5);
const DAY = 86_400_000;

describe('PlausibleTime', () => {
  it('accepts a steady capture and rejects a packet in the future of the wall clock', () => {
    const t = new PlausibleTime(NOW);
    const base = NOW - 10 * DAY;
    expect([0, 1000, 2000].map((d) => t.check(base + d))).toEqual(['ok', 'ok', 'ok']);
    expect(t.check(0xfffffff0 * 1000)).toBe('future');
    expect(t.check(NOW + FUTURE_SLACK_MS + 1)).toBe('future');
    // Within the clock-skew slack, and within 30 days of the rest: accepted.
    expect(t.check(NOW + FUTURE_SLACK_MS - 1)).toBe('ok');
  });

  it('rejects a packet far from the ones before it, in either direction, and goes on with the rest', () => {
    const t = new PlausibleTime(undefined, MAX_JUMP_MS);
    const base = NOW - DAY;
    expect(t.check(base)).toBe('ok');
    expect(t.check(5_000)).toBe('jump');
    expect(t.check(base + MAX_JUMP_MS + 1)).toBe('jump');
    expect(t.check(base + 1)).toBe('ok');
  });

  it('re-anchors when the first packet was the bogus one', () => {
    const t = new PlausibleTime(NOW, MAX_JUMP_MS);
    expect(t.check(5_000)).toBe('ok'); // nothing to compare the first packet with
    const real = NOW - DAY;
    const verdicts = Array.from({ length: REANCHOR_AFTER }, (_, i) => t.check(real + i));
    expect(verdicts.slice(0, -1).every((v) => v === 'jump')).toBe(true);
    expect(verdicts.at(-1)).toBe('ok');
    expect(t.check(real + 100)).toBe('ok');
    expect(t.check(5_000)).toBe('jump');
  });

  it('rejects a timestamp that is not a finite number', () => {
    expect(new PlausibleTime(NOW).check(Number.NaN)).toBe('jump');
  });

  it('without maxJumpMs only the future is implausible: a merged capture may jump by years', () => {
    const t = new PlausibleTime(() => NOW);
    expect(t.check(NOW - 3000 * DAY)).toBe('ok');
    expect(t.check(NOW - DAY)).toBe('ok');
    expect(t.check(5_000)).toBe('ok');
    expect(t.check(NOW + 2 * DAY)).toBe('future');
  });
});
