import { describe, expect, it } from 'vitest';
import {
  FUTURE_SLACK_MS,
  LIVE_PAST_SLACK_MS,
  MAX_HELD,
  MAX_JUMP_MS,
  PlausibleTime,
  REANCHOR_AFTER,
  TimeOutliers,
} from './plausible-time.js';

const NOW = Date.UTC(2026, 11, 5);
const DAY = 86_400_000;
const YEAR = 365 * DAY;

describe('PlausibleTime (the wall clock)', () => {
  it('accepts a steady capture and rejects a packet in the future of the wall clock', () => {
    const t = new PlausibleTime(NOW);
    const base = NOW - 10 * DAY;
    expect([0, 1000, 2000].map((d) => t.check(base + d))).toEqual(['ok', 'ok', 'ok']);
    expect(t.check(0xfffffff0 * 1000)).toBe('future');
    expect(t.check(NOW + FUTURE_SLACK_MS + 1)).toBe('future');
    expect(t.check(NOW + FUTURE_SLACK_MS - 1)).toBe('ok');
  });

  it('a file may be old; a live packet may not', () => {
    expect(new PlausibleTime(NOW).check(NOW - 3000 * DAY)).toBe('ok');
    const live = new PlausibleTime(() => NOW, true);
    expect(live.check(NOW - 3000 * DAY)).toBe('past');
    expect(live.check(5_000)).toBe('past');
    expect(live.check(NOW - LIVE_PAST_SLACK_MS + 1)).toBe('ok');
    expect(live.check(NOW + 2 * DAY)).toBe('future');
  });

  it('reads the clock only for a packet later than its latest reading allows (files), every time when live', () => {
    let clock = NOW;
    let reads = 0;
    const t = new PlausibleTime(() => {
      reads++;
      return clock;
    });
    expect([NOW - 2000, NOW - 1000, NOW + FUTURE_SLACK_MS].map((ts) => t.check(ts))).toEqual([
      'ok',
      'ok',
      'ok',
    ]);
    expect(reads).toBe(1);
    // Beyond the latest reading: the clock is read again, and it has moved on meanwhile.
    clock = NOW + 2 * DAY;
    expect(t.check(NOW + FUTURE_SLACK_MS + DAY)).toBe('ok');
    expect(reads).toBe(2);
    expect(t.check(clock + FUTURE_SLACK_MS + 1)).toBe('future');
    expect(reads).toBe(3);
    expect(t.check(clock + FUTURE_SLACK_MS)).toBe('ok');
    expect(reads).toBe(3);
    let liveReads = 0;
    const live = new PlausibleTime(() => {
      liveReads++;
      return NOW;
    }, true);
    expect([NOW - 2000, NOW - 1000].map((ts) => live.check(ts))).toEqual(['ok', 'ok']);
    expect(liveReads).toBe(2);
  });

  it('rejects a timestamp that is not a finite number', () => {
    expect(new PlausibleTime(NOW).check(Number.NaN)).toBe('invalid');
    expect(new PlausibleTime(undefined).check(Number.POSITIVE_INFINITY)).toBe('invalid');
  });
});

/** Runs times through TimeOutliers; returns the indexes rejected, and checks the order kept. */
function outliers(times: number[]): number[] {
  const accepted: number[] = [];
  const rejected: number[] = [];
  const seen: number[] = [];
  const f = new TimeOutliers<number>(
    (i) => {
      accepted.push(i);
      seen.push(i);
    },
    (i) => {
      rejected.push(i);
      seen.push(i);
    },
  );
  for (const [i, t] of times.entries()) f.push(t, i);
  f.end();
  // Every item comes out exactly once, in input order.
  expect(seen).toEqual(times.map((_, i) => i));
  expect(f.holding).toBe(0);
  return rejected;
}

const run = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i * 1000);

describe('TimeOutliers (the data around it)', () => {
  const base = NOW - 10 * DAY;

  it('a steady capture: nothing rejected', () => {
    expect(outliers(run(base, 100))).toEqual([]);
  });

  it('one packet stamped 1970 or 2106 in the middle is rejected', () => {
    for (const bogus of [5_000, 0xfffffff0 * 1000]) {
      const times = [...run(base, 20), bogus, ...run(base + 20_000, 20)];
      expect(outliers(times)).toEqual([20]);
    }
  });

  it('a short run of bogus packets in the middle is rejected whole', () => {
    const times = [...run(base, 20), ...run(5_000, REANCHOR_AFTER - 1), ...run(base + 30_000, 5)];
    expect(outliers(times)).toEqual(Array.from({ length: REANCHOR_AFTER - 1 }, (_, i) => 20 + i));
  });

  it('a bogus first packet is rejected once the data establishes its time', () => {
    expect(outliers([5_000, ...run(base, 30)])).toEqual([0]);
  });

  it('a bogus last packet after the data is rejected', () => {
    expect(outliers([...run(base, 30), 5_000])).toEqual([30]);
  });

  it('a merged capture (days, then years later) keeps every packet: each part is long enough', () => {
    const times = [...run(base - 3 * YEAR, REANCHOR_AFTER), ...run(base - 2 * YEAR, 44), ...run(base, 37)];
    expect(outliers(times)).toEqual([]);
  });

  it('a jump just within MAX_JUMP_MS is not a jump', () => {
    expect(outliers([...run(base, 10), base + MAX_JUMP_MS, ...run(base + MAX_JUMP_MS, 3)])).toEqual([]);
  });

  it('an input too short to establish a time is accepted as it is', () => {
    expect(outliers([base, 5_000, base + 1, 0xfffffff0 * 1000])).toEqual([]);
  });

  it('a short segment between two different long ones is rejected; both long ones stay', () => {
    const times = [...run(base - 2 * YEAR, 10), ...run(base - YEAR, 3), ...run(base, 10)];
    expect(outliers(times)).toEqual([10, 11, 12]);
  });

  it('holds no more than MAX_HELD packets when time is all over the place', () => {
    const times = Array.from({ length: MAX_HELD * 3 }, (_, i) => base + (i % 2) * YEAR + i);
    let max = 0;
    const f = new TimeOutliers<number>(
      () => {},
      () => {},
    );
    for (const [i, t] of times.entries()) {
      f.push(t, i);
      max = Math.max(max, f.holding);
    }
    expect(max).toBeLessThanOrEqual(MAX_HELD);
  });

  it('copies what it holds back (a capture record is a view valid only during the call)', () => {
    const held: string[] = [];
    const f = new TimeOutliers<{ v: string }>(
      (x) => held.push(x.v),
      () => {},
      (x) => ({ v: `${x.v}*` }),
    );
    f.push(base, { v: 'a' }); // held: the input has not established its time yet
    for (let i = 1; i < REANCHOR_AFTER; i++) f.push(base + i, { v: 'b' });
    f.push(base + 100, { v: 'c' }); // accepted at once
    expect(held[0]).toBe('a*');
    expect(held.at(-1)).toBe('c');
  });
});
