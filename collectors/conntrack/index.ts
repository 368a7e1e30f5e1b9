import { type InputIssue, issue } from '../../lib/errors.js';
import {
  FLOW_RECORD_VERSION,
  type FlowEndpoint,
  type FlowRecord,
  type FlowStateName,
  protocolValue,
} from '../../schema/flow-record.js';
import { MAX_JUMP_MS, PlausibleTime, TimeOutliers } from '../flow/plausible-time.js';
import type { FlowSink } from '../sink.js';
import { type ConntrackEntry, type ConntrackTuple, parseConntrackLine } from './parse.js';

export {
  CONNTRACK_MALFORMED_LINE,
  type ConntrackEntry,
  type ConntrackEvent,
  type ConntrackTuple,
  type ParsedLine,
  parseConntrackLine,
} from './parse.js';

/**
 * Conntrack entries and events → FlowRecords. Conntrack already keys connections and knows the
 * original direction, so this is a join of NEW/UPDATE/DESTROY by conntrack id plus the mapping of
 * conntrack's view to FlowRecord states (docs/conntrack.md). Deterministic: time comes from the
 * events' timestamps (or the time the caller gives for dump lines and lines without one).
 */

export const CONNTRACK_NO_COUNTERS = 'CONNTRACK_NO_COUNTERS';
const CONNTRACK_NO_TIMESTAMP = 'CONNTRACK_NO_TIMESTAMP';
export const CONNTRACK_IMPLAUSIBLE_TIME = 'CONNTRACK_IMPLAUSIBLE_TIME';
export const CONNTRACK_TRUNCATED_LINE = 'CONNTRACK_TRUNCATED_LINE';

export interface ConntrackFlowOptions {
  node?: string;
  /** observer.file (a replayed event log). */
  file?: string;
  /** Names the input in issues. */
  source?: string;
  /** A flow still open this long after its last record gets an 'active-timeout' record (default 300 s). */
  activeTimeoutMs?: number;
  /** Flows held at once; beyond it the least recently updated one is exported as 'evicted' (default 1,000,000). */
  maxFlows?: number;
  onIssue?(issue: InputIssue): void;
  /** Wall clock for the plausible-time check of timestamped lines; undefined: no future check. */
  now?: number | (() => number);
  /**
   * Lines come from a running conntrack: a timestamp far in the past of the wall clock is out of
   * line, and lines are never held back to compare with the ones after them.
   */
  live?: boolean;
  /** Counts into this summary (a caller that reports them while collecting: metrics). */
  summary?: ConntrackSummary;
}

export interface ConntrackSummary {
  lines: number;
  entries: number;
  dumpEntries: number;
  events: { NEW: number; UPDATE: number; DESTROY: number };
  ignored: number;
  malformed: number;
  records: number;
  flows: number;
  /** Records whose counters were absent in the data (accounting off or no DESTROY seen): written as 0. */
  recordsWithoutCounters: number;
  /** Timestamped lines whose time is implausible (future, or far from the rest): no flow. */
  implausibleTime: number;
  /** Live: times conntrack -E reported lost events (ENOBUFS), table dumps taken to catch up, and flows found gone by them. */
  eventLosses: number;
  resyncs: number;
  gone: number;
  /** DESTROY events repeated by the kernel (for another, reliable listener) after the flow had ended: ignored. */
  repeatedDestroys: number;
  /** Table-listing lines of connections whose DESTROY had been read already (the listing raced their end): ignored. */
  listedAfterEnd: number;
  issues: number;
  errors: number;
}

export function emptyConntrackSummary(): ConntrackSummary {
  return {
    lines: 0,
    entries: 0,
    dumpEntries: 0,
    events: { NEW: 0, UPDATE: 0, DESTROY: 0 },
    ignored: 0,
    implausibleTime: 0,
    eventLosses: 0,
    resyncs: 0,
    gone: 0,
    repeatedDestroys: 0,
    listedAfterEnd: 0,
    malformed: 0,
    records: 0,
    flows: 0,
    recordsWithoutCounters: 0,
    issues: 0,
    errors: 0,
  };
}

const TCP_CLOSING = new Set(['FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE']);
const SCTP_CLOSING = new Set(['SHUTDOWN_SENT', 'SHUTDOWN_RECD', 'SHUTDOWN_ACK_SENT', 'CLOSED']);
const TCP_CLOSED = new Set(['CLOSE']);
const SCTP_CLOSED = new Set(['CLOSED']);
const DEFAULT_ACTIVE_TIMEOUT_MS = 300_000;
const DEFAULT_MAX_FLOWS = 1_000_000;
/** How often (in data time) open flows are checked against the active timeout. */
const SWEEP_EVERY_MS = 1000;

interface OpenFlow {
  key: string;
  ctId?: number;
  proto: number;
  orig: ConntrackTuple;
  reply: ConntrackTuple;
  start: number;
  /** Start of the slice the next record covers. */
  sliceStart: number;
  last: number;
  seq: number;
  /** Something was learnt since the last record: a record of a quiet flow would only repeat it. */
  dirty: boolean;
  continued: boolean;
  replied: boolean;
  assured: boolean;
  /** Reached a connected state (ESTABLISHED or later) at some point. */
  connected: boolean;
  state?: string;
  /** Cumulative counters as conntrack last reported them, and what earlier records already carried. */
  counters?: { pf: number; pr: number; bf: number; br: number };
  emitted: { pf: number; pr: number; bf: number; br: number };
}

/**
 * A flow a collector had reported in part (one or more records) and that was still open when it
 * stopped. A restarted collector (`--state`) goes on from it: the same start and `id`, the next `seq`,
 * and counters net of what was already reported, so the store counts the flow once and its packets
 * once (docs/conntrack.md, "Restarts").
 */
export interface ResumableFlow {
  key: string;
  start: number;
  sliceStart: number;
  seq: number;
  continued: boolean;
  emitted: { pf: number; pr: number; bf: number; br: number };
}

/** How long a flow ended as 'conntrack-gone' waits for a late event of its own. */
const GONE_MEMORY_MS = 60_000;
/** How long a DESTROY is remembered to recognise it sent again (the kernel retries within moments). */
const REPEATED_DESTROY_MEMORY_MS = 60_000;

/** A resumed flow's start and the start a dump line's delta-time gives may differ by this much. */
const RESUME_START_TOLERANCE_MS = 2000;

function tupleKey(e: ConntrackEntry): string {
  const o = e.orig;
  const l4 =
    o.sport !== undefined
      ? `${o.sport}>${o.dport}`
      : `${o.icmpType ?? ''}/${o.icmpCode ?? ''}/${o.icmpId ?? ''}`;
  return `${e.protoNumber}|${o.src}>${o.dst}|${l4}|${e.zone ?? o.zone ?? 0}`;
}

function endpoint(ip: string, port: number | undefined): FlowEndpoint {
  return port === undefined ? { ip } : { ip, port };
}

/**
 * What the reply tuple reveals about translation. The reply tuple is what the responder really
 * sends: its source is the real destination (DNAT, e.g. ClusterIP → pod), its destination the
 * address the initiator was translated to (SNAT / masquerade).
 */
function natOf(orig: ConntrackTuple, reply: ConntrackTuple): FlowRecord['nat'] | undefined {
  const nat: NonNullable<FlowRecord['nat']> = {};
  if (reply.src !== orig.dst || reply.sport !== orig.dport) nat.dst = endpoint(reply.src, reply.sport);
  if (reply.dst !== orig.src || reply.dport !== orig.sport) nat.src = endpoint(reply.dst, reply.dport);
  return nat.dst || nat.src ? nat : undefined;
}

/**
 * The FlowRecord state conntrack's view supports. `final` is true for the record written at
 * DESTROY (conntrack forgot the connection).
 */
function stateOf(
  f: Pick<OpenFlow, 'proto' | 'replied' | 'assured' | 'connected' | 'state' | 'counters'>,
  final: boolean,
): FlowStateName {
  const stateful = f.proto === 6 || f.proto === 132;
  // A DESTROY the kernel sent again (reliable delivery, reliable.ts) is built after the kernel
  // marked the responder's RST as a reply, so it lacks [UNREPLIED]. Never assured, CLOSE, and one
  // packet forward: the reply was that RST (a SYN-ACK leads to SYN_RECV, and an established
  // connection sent at least two packets forward).
  if (
    final &&
    f.proto === 6 &&
    !f.assured &&
    f.state === 'CLOSE' &&
    f.counters !== undefined &&
    f.counters.pf === 1 &&
    f.counters.pr > 0
  )
    return 'rejected';
  if (!f.replied && !f.assured) {
    // TCP goes SYN_SENT → CLOSE on an RST (SCTP COOKIE_WAIT → CLOSED on an ABORT). Conntrack never
    // marks the RST as a reply, so [UNREPLIED] stays; with accounting, a reply-direction packet
    // count tells the responder's RST from the initiator giving up with its own RST.
    const closedEarly =
      stateful && f.state !== undefined && (f.proto === 6 ? TCP_CLOSED : SCTP_CLOSED).has(f.state);
    if (closedEarly && (f.counters === undefined || f.counters.pr > 0)) return 'rejected';
    return 'attempted';
  }
  if (!stateful) return 'established';
  if (final) return 'closed';
  if (f.state !== undefined && (f.proto === 6 ? TCP_CLOSING : SCTP_CLOSING).has(f.state) && f.connected) {
    return 'closed';
  }
  return 'established';
}

/**
 * The join of conntrack entries into flows. `push` takes one parsed entry (event or dump line) and
 * returns the records it completes; `flushAll` ends every open flow.
 */
export class ConntrackFlows {
  private readonly flows = new Map<string, OpenFlow>();
  /** Flows a previous run reported in part, by key, until met again (resume). */
  private readonly resumable = new Map<string, ResumableFlow>();
  /** Flows ended by flushAll that had been reported: still open in conntrack, resumable. */
  private flushed: ResumableFlow[] = [];
  /** Flows taken up from a previous run's state. */
  resumedCount = 0;
  private readonly activeTimeoutMs: number;
  private readonly maxFlows: number;
  private nextSweep = 0;
  /** Flows seen (opened or first met in a DESTROY). */
  flowCount = 0;
  /** Records written with counters 0 because conntrack gave none. */
  recordsWithoutCounters = 0;

  constructor(private readonly opts: ConntrackFlowOptions = {}) {
    this.activeTimeoutMs = opts.activeTimeoutMs ?? DEFAULT_ACTIVE_TIMEOUT_MS;
    this.maxFlows = opts.maxFlows ?? DEFAULT_MAX_FLOWS;
  }

  get size(): number {
    return this.flows.size;
  }

  /** `timeMs` is used when the entry carries no timestamp (dump lines, `-E` without `-o timestamp`). */
  push(e: ConntrackEntry, timeMs: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    const now = e.timeMs ?? timeMs;
    const key = e.id !== undefined ? `${e.id}|${tupleKey(e)}` : tupleKey(e);
    let f = this.flows.get(key);
    // A flow ended by its DESTROY a moment ago (same id and tuple) is met again in two ways, and
    // neither starts a second flow. The kernel sends a DESTROY again, to every listener, when a
    // reliable listener missed it. And a table listing (a catch-up dump) comes through another pipe
    // than the events, with no order between them: a connection that ended while it was listed can
    // be read in the listing after its DESTROY (taken for new, it would stay open here until the stop).
    if (
      f === undefined &&
      (e.event === 'DESTROY' || e.event === undefined) &&
      now - (this.destroyed.get(key) ?? Number.NEGATIVE_INFINITY) < REPEATED_DESTROY_MEMORY_MS
    ) {
      if (e.event === 'DESTROY') this.repeatedDestroys++;
      else this.listedAfterEnd++;
      return [];
    }
    if (this.resyncing && e.event === undefined) {
      this.resyncing.keys.add(key);
      // A dump line of a flow already open here says nothing happened but its counters.
      if (f) {
        if (e.orig.packets !== undefined && e.reply.packets !== undefined) {
          const c = {
            pf: e.orig.packets,
            pr: e.reply.packets,
            bf: e.orig.bytes ?? 0,
            br: e.reply.bytes ?? 0,
          };
          const was = f.counters;
          if (!was || was.pf !== c.pf || was.pr !== c.pr || was.bf !== c.bf || was.br !== c.br) {
            f.counters = c;
            f.dirty = true;
          }
        }
        return [];
      }
    }
    // Most recently updated last: Map order is the eviction order.
    const created = f === undefined;
    let resumed: ResumableFlow | undefined;
    if (f) {
      this.flows.delete(key);
      this.flows.set(key, f);
    } else {
      const start =
        e.event === 'NEW' ? now : e.deltaTime !== undefined ? Math.max(0, now - e.deltaTime * 1000) : now;
      resumed = this.takeResumable(key, e, start);
      f = {
        key,
        ctId: e.id,
        proto: e.protoNumber,
        orig: e.orig,
        reply: e.reply,
        start,
        sliceStart: start,
        last: now,
        seq: 0,
        dirty: true,
        continued: e.event !== 'NEW',
        replied: false,
        assured: false,
        connected: false,
        emitted: { pf: 0, pr: 0, bf: 0, br: 0 },
      };
      if (resumed) {
        f.start = resumed.start;
        f.sliceStart = resumed.sliceStart;
        f.seq = resumed.seq;
        f.continued = resumed.continued;
        f.emitted = { ...resumed.emitted };
      }
      this.flows.set(key, f);
      this.flowCount++;
      if (this.flows.size > this.maxFlows) {
        const oldestKey = this.flows.keys().next().value as string;
        const oldest = this.flows.get(oldestKey)!;
        this.flows.delete(oldestKey);
        out.push(this.record(oldest, 'evicted', oldest.last, false));
      }
    }
    f.last = Math.max(f.last, now);
    f.dirty = true;
    // NAT can be set up after NEW (the nat table runs once, on the first packet); keep the latest tuples.
    f.reply = e.reply;
    if (!e.unreplied) f.replied = true;
    if (e.assured) f.assured = true;
    if (e.state !== undefined) {
      f.state = e.state;
      if (e.state === 'ESTABLISHED' || (TCP_CLOSING.has(e.state) && f.replied)) f.connected = true;
    }
    if (e.orig.packets !== undefined && e.reply.packets !== undefined) {
      f.counters = { pf: e.orig.packets, pr: e.reply.packets, bf: e.orig.bytes ?? 0, br: e.reply.bytes ?? 0 };
    }

    if (e.event === 'DESTROY') {
      this.flows.delete(key);
      out.push(this.record(f, 'conntrack-destroy', now, true));
      if (e.id !== undefined) this.rememberDestroyed(key, now);
    } else if (e.event === undefined && created && !resumed) {
      // A dump line for a flow not met before: report it now, it may live for days. (A resumed flow
      // was reported by the previous run: its next record carries what happened since.)
      out.push(this.record(f, 'conntrack-dump', now, false));
    }
    if (now >= this.nextSweep) {
      this.nextSweep = now + SWEEP_EVERY_MS;
      this.sweep(now, out);
    }
    return out;
  }

  /**
   * Takes up where a previous run of the collector stopped: flows it had reported in part, matched
   * by conntrack id and tuple when they are met again (the table dump, or their next event).
   */
  resume(flows: readonly ResumableFlow[]): void {
    for (const r of flows) this.resumable.set(r.key, r);
  }

  private takeResumable(key: string, e: ConntrackEntry, start: number): ResumableFlow | undefined {
    const fromState = this.resumable.get(key);
    const r = fromState ?? this.gone.get(key)?.flow;
    if (!r) return undefined;
    this.resumable.delete(key);
    this.gone.delete(key);
    // conntrack reuses ids: a NEW is another connection; so is a dump line whose delta-time puts the
    // start elsewhere. (An event's start cannot tell: its delta-time is as of the kernel's event, its
    // timestamp when conntrack read it, later by however long the events waited under load.)
    if (e.event === 'NEW') return undefined;
    if (
      e.event === undefined &&
      e.deltaTime !== undefined &&
      Math.abs(start - r.start) > RESUME_START_TOLERANCE_MS
    )
      return undefined;
    if (fromState) this.resumedCount++;
    return r;
  }

  /**
   * Forgets the resumable flows not met again (call once the table dump is read): their connections
   * ended while no collector ran, and what they did since their last record is unknown. Returns them.
   */
  dropUnresumed(): ResumableFlow[] {
    const gone = [...this.resumable.values()];
    this.resumable.clear();
    return gone;
  }

  /** What a restarted collector needs to go on without counting a flow twice: open flows already reported in part. */
  resumableFlows(): ResumableFlow[] {
    const out: ResumableFlow[] = [...this.flushed];
    for (const f of this.flows.values()) if (f.seq > 0) out.push(resumableOf(f));
    // Not met yet (the dump is still being read): keep them for the next run.
    for (const r of this.resumable.values()) out.push(r);
    return out;
  }

  /**
   * Flows ended as 'conntrack-gone' a moment ago, by key: an event of theirs still on its way (a
   * DESTROY that was late, not lost) goes on with them rather than making a second flow.
   */
  private readonly gone = new Map<string, { flow: ResumableFlow; at: number }>();
  /** Flows ended as 'conntrack-gone' (their DESTROY event was lost). */
  goneCount = 0;

  /** Flows ended by a DESTROY a moment ago, by key (id and tuple), oldest first. */
  private readonly destroyed = new Map<string, number>();
  /** DESTROY events of flows already ended by one (sent again by the kernel): ignored. */
  repeatedDestroys = 0;
  /** Listing lines of flows already ended by their DESTROY: ignored. */
  listedAfterEnd = 0;

  private rememberDestroyed(key: string, at: number): void {
    this.destroyed.delete(key);
    this.destroyed.set(key, at);
    for (const [k, t] of this.destroyed) {
      if (at - t < REPEATED_DESTROY_MEMORY_MS) break;
      this.destroyed.delete(k);
    }
  }

  /** While a resync dump is read: the keys it listed, and when it began. */
  private resyncing: { keys: Set<string>; since: number; destroyIsReliable: boolean } | undefined;

  /**
   * A table dump taken to catch up after conntrack lost events (ENOBUFS): `push` its lines, then
   * `endResync`. Flows the dump lists and this table lacks (their NEW was lost) are reported from the
   * dump as at the start; those it lacks and that had no event since `sinceMs` ended unseen, unless
   * `destroyIsReliable`: with reliable delivery (reliable.ts) their DESTROY is on its way (the
   * kernel keeps them, off the table, until it is delivered), and ending them now would make that
   * DESTROY, if it came later than a minute, a second flow.
   */
  beginResync(sinceMs: number, destroyIsReliable = false): void {
    this.resyncing = { keys: new Set(), since: sinceMs, destroyIsReliable };
  }

  /**
   * Ends the flows the resync dump did not list and that had no event since it began: the kernel no
   * longer holds them and their DESTROY was lost. They are written with reason 'conntrack-gone', the
   * counters of their last event, and their last event's time as their end.
   */
  endResync(): FlowRecord[] {
    const r = this.resyncing;
    this.resyncing = undefined;
    if (!r || r.destroyIsReliable) return [];
    const out: FlowRecord[] = [];
    for (const [key, f] of this.flows) {
      if (r.keys.has(key) || f.last >= r.since) continue;
      this.flows.delete(key);
      out.push(this.record(f, 'conntrack-gone', f.last, true));
      this.gone.set(key, { flow: resumableOf(f), at: r.since });
      this.goneCount++;
    }
    for (const [key, g] of this.gone) {
      if (r.since - g.at < GONE_MEMORY_MS) break;
      this.gone.delete(key);
    }
    return out;
  }

  /** Active-timeout records for open flows, as of `nowMs` (data time, or the wall clock of a live run). */
  tick(nowMs: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    this.sweep(nowMs, out);
    return out;
  }

  private sweep(now: number, out: FlowRecord[]): void {
    for (const f of this.flows.values()) {
      if (f.dirty && now - f.sliceStart >= this.activeTimeoutMs)
        out.push(this.record(f, 'active-timeout', now, false));
    }
  }

  /** Ends every open flow (end of the input, or the collector stopping). */
  flushAll(reason: 'end-of-input' | 'evicted', atMs?: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    for (const f of this.flows.values()) {
      if (f.dirty) out.push(this.record(f, reason, Math.max(atMs ?? f.last, f.sliceStart), false));
      if (f.seq > 0) this.flushed.push(resumableOf(f));
    }
    this.flows.clear();
    return out;
  }

  private record(
    f: OpenFlow,
    reason: NonNullable<FlowRecord['reason']>,
    end: number,
    final: boolean,
  ): FlowRecord {
    const c = f.counters;
    const packets = c
      ? { fwd: Math.max(0, c.pf - f.emitted.pf), rev: Math.max(0, c.pr - f.emitted.pr) }
      : { fwd: 0, rev: 0 };
    const bytes = c
      ? { fwd: Math.max(0, c.bf - f.emitted.bf), rev: Math.max(0, c.br - f.emitted.br) }
      : { fwd: 0, rev: 0 };
    if (c) f.emitted = { ...c };
    else this.recordsWithoutCounters++;
    const o = f.orig;
    const r: FlowRecord = {
      v: FLOW_RECORD_VERSION,
      start: f.sliceStart,
      end: Math.max(end, f.sliceStart),
      proto: protocolValue(f.proto),
      src: endpoint(o.src, o.sport),
      dst: endpoint(o.dst, o.dport),
      packets,
      bytes,
      state: stateOf(f, final),
      observer: { source: 'conntrack' },
      id: `conntrack:${f.ctId ?? f.key}:${Math.floor(f.start)}`,
      seq: f.seq,
      initiator: 'conntrack',
      reason,
    };
    if (this.opts.node !== undefined) r.observer.node = this.opts.node;
    if (this.opts.file !== undefined) r.observer.file = this.opts.file;
    if (o.icmpType !== undefined) {
      r.icmp = { type: o.icmpType, code: o.icmpCode ?? 0 };
      if (o.icmpId !== undefined) r.icmp.id = o.icmpId;
    }
    const nat = natOf(o, f.reply);
    if (nat) r.nat = nat;
    if (f.continued) r.continued = true;
    f.seq++;
    f.dirty = false;
    f.sliceStart = r.end;
    return r;
  }
}

function resumableOf(f: OpenFlow): ResumableFlow {
  return {
    key: f.key,
    start: f.start,
    sliceStart: f.sliceStart,
    seq: f.seq,
    continued: f.continued,
    emitted: { ...f.emitted },
  };
}

/**
 * Parses conntrack text line by line into a sink. Shared by `collect conntrack --input` (a saved
 * log) and the live mode (the lines of a running `conntrack -E`).
 */
interface HeldEntry {
  entry: ConntrackEntry;
  line: number;
  fallbackTimeMs: number;
}

export class ConntrackCollector {
  readonly summary: ConntrackSummary;
  readonly flows: ConntrackFlows;
  private warnedNoCounters = false;
  private warnedNoTimestamp = false;
  private lastTime = 0;
  private readonly time: PlausibleTime;
  /** Saved logs only: timestamped lines far from the lines around them (see TimeOutliers). */
  private readonly outliers: TimeOutliers<HeldEntry> | undefined;
  private readonly ready: HeldEntry[] = [];

  constructor(
    private readonly sink: FlowSink,
    private readonly opts: ConntrackFlowOptions = {},
  ) {
    this.summary = opts.summary ?? emptyConntrackSummary();
    this.flows = new ConntrackFlows(opts);
    this.time = new PlausibleTime(opts.now, opts.live === true);
    if (!opts.live)
      this.outliers = new TimeOutliers<HeldEntry>(
        (h) => this.ready.push(h),
        (h, ts) =>
          this.implausible(
            h.line,
            `its timestamp ${ts} ms is more than ${MAX_JUMP_MS / 86_400_000} days from the lines around it, which agree with each other; line skipped`,
          ),
      );
  }

  /** Starts a catch-up dump (ConntrackFlows.beginResync). */
  beginResync(sinceMs: number, destroyIsReliable = false): void {
    this.summary.resyncs++;
    this.flows.beginResync(sinceMs, destroyIsReliable);
  }

  /** Ends it: the flows the kernel no longer holds are written as 'conntrack-gone'. */
  async endResync(): Promise<void> {
    const out = this.flows.endResync();
    this.summary.gone += out.length;
    await this.write(out);
  }

  report(i: InputIssue): void {
    this.summary.issues++;
    if (i.severity === 'error') this.summary.errors++;
    this.opts.onIssue?.(i);
  }

  /**
   * One line of conntrack output. `fallbackTimeMs` dates entries without a timestamp: the dump
   * time for `-L` lines, the receive time for a live `-E` without `-o timestamp`.
   */
  /**
   * One line of conntrack output. `complete` is false for a last line that ended without a newline:
   * a log cut while being written, whose last field may be cut too (an `id=` cut short would make a
   * phantom second flow), so it is reported and makes no flow. conntrack ends every line it writes.
   */
  async line(text: string, line: number, fallbackTimeMs: number, complete = true): Promise<void> {
    this.summary.lines++;
    if (!complete && text.trim() !== '') {
      this.summary.malformed++;
      this.report(
        issue(
          CONNTRACK_TRUNCATED_LINE,
          'the input ends inside this line (no newline after it): the line may be cut short, so it makes no flow',
          { source: this.opts.source, line },
        ),
      );
      return;
    }
    const parsed = parseConntrackLine(text, line, this.opts.source);
    if (parsed.kind === 'ignored') {
      this.summary.ignored++;
      return;
    }
    if (parsed.kind === 'issue') {
      this.summary.malformed++;
      this.report(parsed.issue);
      return;
    }
    const e = parsed.entry;
    // A line stamped in 2106 (or 1970) would move every period counting back from the newest data:
    // it is an issue of its own and makes no flow (docs/trust.md, plausible time).
    if (e.timeMs !== undefined) {
      const when = this.time.check(e.timeMs);
      if (when !== 'ok') {
        this.implausible(
          line,
          when === 'future'
            ? `its timestamp ${e.timeMs} ms lies in the future of the wall clock; line skipped`
            : when === 'past'
              ? `its timestamp ${e.timeMs} ms lies more than a day in the past of the wall clock, live; line skipped`
              : `its timestamp ${e.timeMs} ms is not a valid time; line skipped`,
        );
        return;
      }
      if (this.outliers) {
        this.outliers.push(e.timeMs, { entry: e, line, fallbackTimeMs });
        await this.drainReady();
        return;
      }
    }
    await this.entry(e, line, fallbackTimeMs);
  }

  private implausible(line: number, message: string): void {
    this.summary.implausibleTime++;
    this.report(issue(CONNTRACK_IMPLAUSIBLE_TIME, message, { source: this.opts.source, line }, 'warning'));
  }

  private async drainReady(): Promise<void> {
    while (this.ready.length > 0) {
      const r = this.ready.shift()!;
      await this.entry(r.entry, r.line, r.fallbackTimeMs);
    }
  }

  private async entry(e: ConntrackEntry, line: number, fallbackTimeMs: number): Promise<void> {
    this.summary.entries++;
    if (e.event) this.summary.events[e.event]++;
    else this.summary.dumpEntries++;
    if (e.event !== undefined && e.timeMs === undefined && !this.warnedNoTimestamp) {
      this.warnedNoTimestamp = true;
      this.report(
        issue(
          CONNTRACK_NO_TIMESTAMP,
          'events without [timestamp] (conntrack -E without -o timestamp): dated by when they were read',
          { source: this.opts.source, line },
          'warning',
        ),
      );
    }
    if (e.event === 'DESTROY' && e.orig.packets === undefined && !this.warnedNoCounters) {
      this.warnedNoCounters = true;
      this.report(
        issue(
          CONNTRACK_NO_COUNTERS,
          'DESTROY without packets=/bytes=: accounting is off (sysctl net.netfilter.nf_conntrack_acct=1); counters are written as 0',
          { source: this.opts.source, line },
          'warning',
        ),
      );
    }
    // Out-of-order timestamps (several CPUs) must not move data time backwards for the sweep.
    const t = Math.max(e.timeMs ?? fallbackTimeMs, 0);
    this.lastTime = Math.max(this.lastTime, t);
    await this.write(this.flows.push(e, fallbackTimeMs));
  }

  /** Active-timeout records as of `nowMs` (live mode calls this with the clock when events are quiet). */
  async tick(nowMs: number): Promise<void> {
    await this.write(this.flows.tick(nowMs));
  }

  /** Ends every open flow with 'end-of-input'; their end is the last time seen (or `atMs`). */
  async end(atMs?: number): Promise<void> {
    this.outliers?.end();
    await this.drainReady();
    await this.write(this.flows.flushAll('end-of-input', atMs));
    this.summary.flows = this.flows.flowCount;
    this.summary.recordsWithoutCounters = this.flows.recordsWithoutCounters;
    this.summary.repeatedDestroys = this.flows.repeatedDestroys;
    this.summary.listedAfterEnd = this.flows.listedAfterEnd;
  }

  get lastTimeMs(): number {
    return this.lastTime;
  }

  private checkpointedRecords = -1;

  /**
   * Hands `save` what a restarted collector needs (ConntrackFlows.resumableFlows), once every record
   * written so far is delivered or durably spooled: a state that got ahead of the records would
   * make a restart skip what never arrived. Nothing is saved when no record was written since.
   */
  async checkpoint(save: (flows: ResumableFlow[]) => void | Promise<void>): Promise<void> {
    if (this.summary.records === this.checkpointedRecords) return;
    const records = this.summary.records;
    await this.sink.flush();
    await save(this.flows.resumableFlows());
    this.checkpointedRecords = records;
  }

  private async write(records: FlowRecord[]): Promise<void> {
    for (const r of records) {
      this.summary.records++;
      await this.sink.write(r);
    }
  }
}
