/**
 * Plausible time. One packet stamped in 2106 or 1970 (a broken clock, a corrupt record) would move
 * every period that counts back from the newest data, or stretch one back to 1970, so each timestamp
 * is checked before it makes a flow (docs/trust.md, "Plausible time"):
 *
 * - against the wall clock (PlausibleTime): never in the future (a capture cannot record what has
 *   not happened yet); when live, not far in the past either (a live packet was just captured);
 * - against the data around it (TimeOutliers), for files: a short run of packets far from the packets
 *   on both sides of it, which agree with each other, is out of line. A merged capture jumps by days
 *   or years legitimately, but then the new time holds: runs of REANCHOR_AFTER packets or more are
 *   never out of line.
 *
 * Both are pure functions of the data and of the wall clock the caller gives (a function, so a
 * capture that runs for days is compared with the clock of each packet's arrival, not of its start).
 */

/** Clock skew tolerated between the capturing host and the auditing one. */
export const FUTURE_SLACK_MS = 24 * 3_600_000;
/** How old a live packet may be: buffering and clock skew, not history. */
export const LIVE_PAST_SLACK_MS = 24 * 3_600_000;
/** A packet further than this from the packets around it is out of line. */
export const MAX_JUMP_MS = 30 * 24 * 3_600_000;
/** Consecutive packets that agree among themselves and so establish a time of their own. */
export const REANCHOR_AFTER = 8;
/** Packets held back while their time is undecided; beyond this they go on as they are. */
export const MAX_HELD = 256;

export type TimeVerdict = 'ok' | 'future' | 'past' | 'invalid';

export class PlausibleTime {
  /**
   * `clock`: the wall clock in ms (a fixed number in tests); undefined: no clock check. `live`: the
   * data is being captured now, so it must not be far in the past either.
   */
  constructor(
    private readonly clock: number | (() => number) | undefined,
    private readonly live = false,
  ) {}

  /**
   * The latest wall-clock reading. A timestamp no later than it plus the slack is not in the future
   * whatever the clock says now (it only moves on), so the clock is read again only for a later
   * packet: reading it for each of millions of packets cost more than the rest of the check.
   */
  private latest = Number.NEGATIVE_INFINITY;

  check(ts: number): TimeVerdict {
    if (!Number.isFinite(ts)) return 'invalid';
    // Live data must also be checked against the past, which needs the clock of its arrival.
    if (!this.live && ts <= this.latest + FUTURE_SLACK_MS) return 'ok';
    const now = typeof this.clock === 'function' ? this.clock() : this.clock;
    if (now === undefined) return 'ok';
    if (now > this.latest) this.latest = now;
    if (ts > now + FUTURE_SLACK_MS) return 'future';
    if (this.live && ts < now - LIVE_PAST_SLACK_MS) return 'past';
    return 'ok';
  }
}

interface Segment<T> {
  items: T[];
  times: number[];
}

/**
 * Finds out-of-line timestamps in a stream, holding back only what it cannot decide yet: the first
 * packets of the input, and packets that left the current time. Items come out in input order,
 * through `accept` or `reject`; the common case (a packet near the last accepted one) is accepted at
 * once. `hold` copies an item that must outlive the call (a capture record's bytes are a view).
 *
 * The rule, over maximal segments of packets each within MAX_JUMP_MS of the previous one:
 * - a segment of REANCHOR_AFTER packets or more is accepted (the time of the data);
 * - a shorter segment is rejected when accepted data lies before it and the data after it returns
 *   to that time (a sandwich), when a long segment follows it at the start of the input, when a long
 *   segment follows it after accepted data, or when it ends the input after accepted data;
 * - an input with no long segment at all is accepted as it is (nothing to compare with).
 */
export class TimeOutliers<T> {
  private last: number | undefined;
  private held: Segment<T>[] = [];
  private heldCount = 0;

  constructor(
    private readonly accept: (item: T) => void,
    private readonly reject: (item: T, ts: number) => void,
    private readonly hold: (item: T) => T = (x) => x,
    private readonly maxJumpMs = MAX_JUMP_MS,
    private readonly runLength = REANCHOR_AFTER,
  ) {}

  push(ts: number, item: T): void {
    // Not a closure: this runs for every packet.
    if (this.last !== undefined && Math.abs(ts - this.last) <= this.maxJumpMs) {
      // Back at the accepted time: whatever was held in between was out of line.
      if (this.heldCount > 0) this.rejectHeld(this.held.length);
      this.last = ts;
      this.accept(item);
      return;
    }
    let seg = this.held.at(-1);
    if (seg === undefined || !(Math.abs(ts - seg.times.at(-1)!) <= this.maxJumpMs)) {
      if (this.heldCount >= MAX_HELD) {
        // Time all over the place: no basis for a judgement; let it through as it is.
        this.acceptHeld();
      }
      seg = { items: [], times: [] };
      this.held.push(seg);
    }
    seg.items.push(this.hold(item));
    seg.times.push(ts);
    this.heldCount++;
    if (seg.items.length >= this.runLength) {
      // A time of its own: the short segments before it were out of line.
      this.rejectHeld(this.held.length - 1);
      this.held = [];
      this.heldCount = 0;
      this.last = seg.times.at(-1)!;
      for (const it of seg.items) this.accept(it);
    }
  }

  /** The end of the input: decides what is still held. */
  end(): void {
    if (this.last === undefined) this.acceptHeld();
    else this.rejectHeld(this.held.length);
  }

  /** Packets held back right now (tests, and a bound on memory). */
  get holding(): number {
    return this.heldCount;
  }

  private rejectHeld(segments: number): void {
    for (let s = 0; s < segments; s++) {
      const seg = this.held[s]!;
      for (let i = 0; i < seg.items.length; i++) this.reject(seg.items[i]!, seg.times[i]!);
    }
    this.held = this.held.slice(segments);
    this.heldCount = this.held.reduce((n, s) => n + s.items.length, 0);
  }

  private acceptHeld(): void {
    for (const seg of this.held) {
      for (const it of seg.items) this.accept(it);
      this.last = seg.times.at(-1)!;
    }
    this.held = [];
    this.heldCount = 0;
  }
}
