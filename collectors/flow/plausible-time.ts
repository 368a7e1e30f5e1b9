/**
 * Plausible packet time. One packet stamped in 2106 (a broken clock, a corrupt record) would move
 * every period that counts back from the newest data, so each timestamp is checked before it makes
 * a flow: it must not lie in the future of the wall clock (a capture cannot record what has not
 * happened yet). Optionally (`maxJumpMs`) it must not jump far from the packets before it in the same
 * input; the collectors do not turn that on, because real captures merged from several days or years
 * (the tshark corpus has some) jump legitimately, and a streaming check cannot tell an isolated bogus
 * packet from the start of a merged file without holding packets back. A packet that fails is an
 * issue of its own and is kept out of flows (docs/trust.md).
 *
 * The check is a pure function of the data and of the wall clock the caller gives (a function, so a
 * capture that runs for days is compared with the clock of each packet's arrival, not of its start).
 */

/** Clock skew tolerated between the capturing host and the auditing one. */
export const FUTURE_SLACK_MS = 24 * 3_600_000;
/** A suggested `maxJumpMs`: a packet further than this from the last plausible one is out of line. */
export const MAX_JUMP_MS = 30 * 24 * 3_600_000;
/**
 * Consecutive out-of-line packets that agree among themselves and take over as the reference: the
 * first packet of an input may be the bogus one, and the data that follows must not all be lost.
 */
export const REANCHOR_AFTER = 8;

export type TimeVerdict = 'ok' | 'future' | 'jump';

export class PlausibleTime {
  private ref: number | undefined;
  private pending: number | undefined;
  private pendingCount = 0;

  /** `clock`: the wall clock in ms (a fixed number in tests); undefined: no future check. */
  constructor(
    private readonly clock: number | (() => number) | undefined,
    private readonly maxJumpMs: number | undefined = undefined,
  ) {}

  check(ts: number): TimeVerdict {
    if (!Number.isFinite(ts)) return 'jump';
    const now = typeof this.clock === 'function' ? this.clock() : this.clock;
    if (now !== undefined && ts > now + FUTURE_SLACK_MS) return 'future';
    const maxJump = this.maxJumpMs;
    if (maxJump === undefined) return 'ok';
    if (this.ref === undefined || Math.abs(ts - this.ref) <= maxJump) {
      this.ref = ts;
      this.pending = undefined;
      this.pendingCount = 0;
      return 'ok';
    }
    // Out of line: maybe the reference was the bogus one. Enough agreeing packets re-anchor it.
    if (this.pending !== undefined && Math.abs(ts - this.pending) <= maxJump) this.pendingCount++;
    else this.pendingCount = 1;
    this.pending = ts;
    if (this.pendingCount >= REANCHOR_AFTER) {
      this.ref = ts;
      this.pending = undefined;
      this.pendingCount = 0;
      return 'ok';
    }
    return 'jump';
  }
}
