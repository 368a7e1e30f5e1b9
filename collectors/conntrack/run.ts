import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { exited, spawned } from '../../lib/child.js';
import { AuditError, issue } from '../../lib/errors.js';
import { readLines } from '../../lib/jsonl.js';
import type { FlowSink } from '../sink.js';
import { ConntrackCollector, type ConntrackFlowOptions, type ConntrackSummary } from './index.js';
import {
  type ConntrackEventSource,
  DEFAULT_CONNTRACK_EVENT_SOURCE,
  RELIABLE_EVENTS_PY,
  RELIABLE_READY,
  reliableEventsArgs,
} from './reliable.js';
import { readConntrackState, writeConntrackState } from './state.js';

/** Reading a saved conntrack log (`conntrack -E -o timestamp,extended,id > log`), or a dump. */
export interface ConntrackLogOptions extends ConntrackFlowOptions {
  /** Dates lines without a timestamp (dump lines); default: the file's modification time. */
  timeMs?: number;
}

export async function collectConntrackLog(
  path: string,
  sink: FlowSink,
  opts: ConntrackLogOptions = {},
): Promise<ConntrackSummary> {
  const source = path === '-' ? '<stdin>' : path;
  let fallback = opts.timeMs;
  if (fallback === undefined) {
    if (path === '-') fallback = Date.now();
    else {
      try {
        fallback = (await stat(path)).mtimeMs;
      } catch (err) {
        throw new AuditError('CONNTRACK_INPUT_UNREADABLE', `cannot read: ${(err as Error).message}`, {
          source,
        });
      }
    }
  }
  const c = new ConntrackCollector(sink, {
    ...opts,
    now: opts.now ?? Date.now,
    source,
    file: opts.file ?? (path === '-' ? undefined : path),
  });
  try {
    for await (const { line, text, complete } of readLines(path))
      await c.line(text, line, fallback, complete);
  } catch (err) {
    throw new AuditError('CONNTRACK_INPUT_UNREADABLE', `cannot read: ${(err as Error).message}`, { source });
  }
  await c.end();
  return c.summary;
}

export interface ConntrackLiveOptions extends ConntrackFlowOptions {
  /** Run conntrack inside this network namespace (`ip netns exec NAME conntrack ...`). */
  netns?: string;
  /** List the table first (`conntrack -L`) so flows older than the collector are reported (default true). */
  dump?: boolean;
  /** Restrict the events (`-e NEW,UPDATE,DESTROY` by default: all three). */
  events?: string;
  /** Stops the collection: conntrack is stopped, its last lines read, open flows flushed. */
  signal?: AbortSignal;
  /** How often open flows are checked against the active timeout when no events come (default 10 s). */
  tickMs?: number;
  /** Called once conntrack -E runs (and the dump, if any, is read): tests start traffic then. */
  onReady?(): void;
  /** The executable (default 'conntrack'; 'ip' is used for --netns). */
  conntrackPath?: string;
  /**
   * Where events come from (default 'reliable'): netpol-audit's listener with reliable delivery
   * (reliable.ts; needs python3), or `conntrack -E`, which loses events under load.
   */
  eventSource?: ConntrackEventSource;
  /** The Python interpreter of the reliable listener (default 'python3'). */
  pythonPath?: string;
  /** How long the reliable listener may take to subscribe before the collector gives up (default 30 s). */
  startTimeoutMs?: number;
  /**
   * Netlink receive buffer of `conntrack -E` (its `-b`), default 8 MiB. The kernel's default
   * (net.core.rmem_default, often 208 KiB) holds a few hundred events: a burst of connections, or a
   * collector slowed for a moment, overruns it and the kernel drops events (ENOBUFS); a lost DESTROY
   * leaves its flow open here until the active timeout. The buffer costs memory only while events
   * wait in it.
   */
  bufferBytes?: number;
  /**
   * State file (state.ts): read at the start to go on with the flows a previous run had reported in
   * part, written after every batch of records the sink has taken (and at the end).
   */
  stateFile?: string;
  /** After conntrack reports lost events (ENOBUFS), list the table to catch up (default true). */
  resyncOnLoss?: boolean;
  /** At most one such catch-up per this many ms (default 5 s). */
  resyncEveryMs?: number;
  /** How often the state file is written when records were written since (default 1 s). */
  stateEveryMs?: number;
  /**
   * Appends every line the listener and the table listings print to this file, as read: the
   * evidence behind the records, to keep or to replay with `collectConntrackLog`.
   */
  saveEventsFile?: string;
}

export const DEFAULT_EVENT_BUFFER_BYTES = 8 << 20;

const MAX_PENDING_LINES = 10_000;

export interface ConntrackLiveSummary extends ConntrackSummary {
  /** conntrack's own closing words ("N flow events have been shown."), from its standard error. */
  toolMessages: string[];
  /** With a state file: flows taken up from the previous run, and those it had open that had ended meanwhile. */
  resumed: number;
  resumeGone: number;
}

/**
 * The --save-events file, opened for appending (a restarted collector adds to it). A file that cannot
 * be opened stops the collector (evidence was asked for); a later write error is reported once, and
 * the records go on.
 */
async function openSaved(path: string, onLaterError: (err: Error) => void): Promise<WriteStream> {
  const out = createWriteStream(path, { flags: 'a' });
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', (err) =>
      reject(
        new AuditError('CONNTRACK_SAVE_FAILED', `cannot write the conntrack lines: ${err.message}`, {
          source: path,
        }),
      ),
    );
  });
  out.once('error', onLaterError);
  return out;
}

function command(
  opts: ConntrackLiveOptions,
  args: string[],
  file = opts.conntrackPath ?? 'conntrack',
): { file: string; argv: string[] } {
  return opts.netns
    ? { file: 'ip', argv: ['netns', 'exec', opts.netns, file, ...args] }
    : { file, argv: args };
}

/** How a command is named in messages: the reliable listener's program text left out. */
function shown(c: { file: string; argv: string[] }): string {
  return [c.file, ...c.argv.map((a) => (a === RELIABLE_EVENTS_PY ? '<reliable listener>' : a))].join(' ');
}

/**
 * Runs `conntrack -E` (and first `conntrack -L`) and turns what it prints into FlowRecords until
 * `signal` aborts or conntrack ends. Events start before the dump so no connection falls between
 * them; a flow met in both is reported once.
 */
export async function collectConntrackLive(
  sink: FlowSink,
  opts: ConntrackLiveOptions = {},
): Promise<ConntrackLiveSummary> {
  const c = new ConntrackCollector(sink, {
    ...opts,
    now: opts.now ?? Date.now,
    live: true,
    source: opts.netns ? `conntrack@${opts.netns}` : 'conntrack',
  });
  const stateFile = opts.stateFile;
  if (stateFile !== undefined) {
    const { flows, problem } = readConntrackState(stateFile);
    if (problem !== undefined) {
      c.summary.issues++;
      opts.onIssue?.(
        issue(
          'CONNTRACK_STATE_UNREADABLE',
          `${problem}; starting afresh: flows open across the restart are reported again from the table dump`,
          { source: stateFile },
          'warning',
        ),
      );
    }
    c.flows.resume(flows);
  }
  let resumeGone = 0;
  let stateWriteFailed = false;
  const save =
    stateFile === undefined
      ? undefined
      : () =>
          c
            .checkpoint((f) => writeConntrackState(stateFile, f, Date.now()))
            .catch((err: unknown) => {
              // The records still flow; only a restart would report the open flows again.
              if (stateWriteFailed) return;
              stateWriteFailed = true;
              c.summary.issues++;
              opts.onIssue?.(
                issue(
                  'CONNTRACK_STATE_UNWRITABLE',
                  `cannot write the state: ${(err as Error).message}; a restart will report the open flows again`,
                  { source: stateFile },
                  'warning',
                ),
              );
            });
  const toolMessages: string[] = [];
  const saveFile = opts.saveEventsFile;
  const saved =
    saveFile === undefined
      ? undefined
      : await openSaved(saveFile, (err) => {
          c.summary.issues++;
          opts.onIssue?.(
            issue(
              'CONNTRACK_SAVE_INTERRUPTED',
              `cannot write the conntrack lines: ${err.message}; the lines from here on are not saved`,
              { source: saveFile },
              'warning',
            ),
          );
        });
  // One queue for both children's lines: the collector takes one line at a time, in arrival order.
  let queue: Promise<void> = Promise.resolve();
  let pending = 0;
  const paused = new Set<NodeJS.ReadableStream>();
  const enqueue = (fn: () => Promise<void>, from?: NodeJS.ReadableStream) => {
    pending++;
    // A slow sink (Kafka, a full disk) must not make the lines pile up in memory: pause conntrack's
    // output; the kernel keeps the events in the netlink socket buffer meanwhile.
    if (from && pending > MAX_PENDING_LINES && !paused.has(from)) {
      paused.add(from);
      from.pause();
    }
    queue = queue.then(fn).finally(() => {
      pending--;
      if (pending < MAX_PENDING_LINES / 2 && paused.size > 0) {
        for (const p of paused) p.resume();
        paused.clear();
      }
    });
  };

  const eventNames = opts.events ?? 'NEW,UPDATE,DESTROY';
  const bufferBytes = opts.bufferBytes ?? DEFAULT_EVENT_BUFFER_BYTES;
  const reliable = (opts.eventSource ?? DEFAULT_CONNTRACK_EVENT_SOURCE) === 'reliable';
  const ev = reliable
    ? command(opts, reliableEventsArgs(bufferBytes, eventNames), opts.pythonPath ?? 'python3')
    : command(opts, ['-E', '-o', 'timestamp,extended,id', '-e', eventNames, '-b', String(bufferBytes)]);
  const evShown = shown(ev);
  const events = spawn(ev.file, ev.argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const evErr: string[] = [];
  events.stderr!.setEncoding('utf8').on('data', (d: string) => evErr.push(d));
  let evLine = 0;
  const evLines = createInterface({ input: events.stdout!, crlfDelay: Number.POSITIVE_INFINITY });
  evLines.on('line', (text) => {
    saved?.write(`${text}\n`);
    const n = ++evLine;
    const at = Date.now();
    enqueue(() => c.line(text, n, at), events.stdout!);
  });
  const evClosed = new Promise<void>((resolve) => evLines.once('close', resolve));
  const evExit = exited(events);

  const stop = () => {
    if (events.exitCode === null && events.signalCode === null) events.kill('SIGTERM');
  };
  if (opts.signal?.aborted) stop();
  opts.signal?.addEventListener('abort', stop, { once: true });
  /** Before the collector stops at the start: what it set up, released; the error, to throw. */
  const giveUp = (err: unknown) => {
    opts.signal?.removeEventListener('abort', stop);
    saved?.end();
    return err;
  };

  try {
    await spawned(events, 'CONNTRACK_TOOL_FAILED', evShown);
  } catch (err) {
    throw giveUp(err);
  }

  // A listener that cannot run (no permission, no such namespace, no library) exits at once:
  // conntrack -E within moments; the reliable listener says when it has subscribed, and the table is
  // listed only then, so no connection falls between the listing and the first event.
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  let readyTimer: NodeJS.Timeout | undefined;
  const waited = new Promise<'timeout'>((r) => {
    readyTimer = setTimeout(r, reliable ? startTimeoutMs : 150, 'timeout');
  });
  const subscribed = reliable
    ? new Promise<'ready'>((resolve) => {
        // Until the line is seen: the warnings that may follow need no looking through.
        const check = () => {
          if (!evErr.join('').includes(RELIABLE_READY)) return;
          events.stderr!.off('data', check);
          resolve('ready');
        };
        events.stderr!.on('data', check);
        check();
      })
    : new Promise<never>(() => undefined);
  const early = await Promise.race([evExit, subscribed, waited]);
  clearTimeout(readyTimer);
  if (typeof early === 'object' && early.code !== 0 && !opts.signal?.aborted) {
    throw giveUp(
      new AuditError(
        'CONNTRACK_TOOL_FAILED',
        `${evShown} exited with ${early.code ?? early.signal}: ${evErr.join('').trim()}`,
      ),
    );
  }
  if (reliable && early === 'timeout' && !opts.signal?.aborted) {
    stop();
    throw giveUp(
      new AuditError(
        'CONNTRACK_TOOL_FAILED',
        `${evShown} did not subscribe to conntrack events within ${startTimeoutMs / 1000} s: ${evErr.join('').trim()}`,
      ),
    );
  }

  /** Lists the table (`conntrack -L`) into the collector; the tool's failure as { code, message }. */
  const readDump = async (): Promise<{ code: number | null; message: string; argv: string }> => {
    const d = command(opts, ['-L', '-o', 'extended,id']);
    const dump = spawn(d.file, d.argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const dumpErr: string[] = [];
    dump.stderr!.setEncoding('utf8').on('data', (x: string) => dumpErr.push(x));
    await spawned(dump, 'CONNTRACK_TOOL_FAILED', `${d.file} ${d.argv.join(' ')}`);
    const dumpTime = Date.now();
    let n = 0;
    const rl = createInterface({ input: dump.stdout!, crlfDelay: Number.POSITIVE_INFINITY });
    rl.on('line', (text) => {
      saved?.write(`${text}\n`);
      const line = ++n;
      enqueue(() => c.line(text, line, dumpTime), dump.stdout!);
    });
    await new Promise<void>((resolve) => rl.once('close', resolve));
    const r = await exited(dump);
    return { code: r.code, message: dumpErr.join('').trim(), argv: `${d.file} ${d.argv.join(' ')}` };
  };

  if (opts.dump !== false && !opts.signal?.aborted) {
    const r = await readDump();
    if (r.code !== 0) {
      stop();
      throw giveUp(new AuditError('CONNTRACK_TOOL_FAILED', `${r.argv} exited with ${r.code}: ${r.message}`));
    }
    if (r.message) toolMessages.push(...r.message.split('\n'));
    await queue;
  }
  // What the previous run had open and the table no longer holds ended while no collector ran.
  if (opts.dump !== false) resumeGone = c.flows.dropUnresumed().length;
  if (save) {
    enqueue(save);
    await queue;
  }
  opts.onReady?.();

  // conntrack -E says when the kernel dropped events (its netlink buffer overran): a lost DESTROY
  // would leave a flow open here until the active timeout or the stop, a lost NEW would hide a
  // short flow. A table dump then tells which flows the kernel still holds (ConntrackFlows.beginResync).
  let resyncing: Promise<void> | undefined;
  let resyncAgain = false;
  let lastResync = 0;
  let resyncTimer: NodeJS.Timeout | undefined;
  const resync = async () => {
    const since = Date.now();
    lastResync = since;
    enqueue(async () => c.beginResync(since, reliable));
    const r = await readDump();
    if (r.code !== 0 && !opts.signal?.aborted)
      c.report(
        issue(
          'CONNTRACK_RESYNC_FAILED',
          `${r.argv} exited with ${r.code}: ${r.message}; flows whose end was lost stay open until the active timeout`,
          { source: opts.netns ? `conntrack@${opts.netns}` : 'conntrack' },
          'warning',
        ),
      );
    enqueue(() => c.endResync());
    await queue;
  };
  const requestResync = () => {
    if (opts.signal?.aborted || opts.resyncOnLoss === false) return;
    if (resyncing || resyncTimer) {
      resyncAgain = true;
      return;
    }
    const wait = Math.max(0, lastResync + (opts.resyncEveryMs ?? 5000) - Date.now());
    resyncTimer = setTimeout(() => {
      resyncTimer = undefined;
      resyncing = resync().finally(() => {
        resyncing = undefined;
        if (resyncAgain) {
          resyncAgain = false;
          requestResync();
        }
      });
    }, wait);
  };
  events.stderr!.on('data', (d: string) => {
    if (/ENOBUFS/.test(d)) {
      c.summary.eventLosses++;
      requestResync();
    }
  });

  const tick = setInterval(() => enqueue(() => c.tick(Date.now())), opts.tickMs ?? 10_000);
  // The records of a flow are written as conntrack reports it; its state follows within a second.
  // A kill in between makes the next run repeat the last record of a flow (same seq and start: the
  // store's ingestion identity keeps one), never skip one (docs/conntrack.md, "Restarts").
  const saver = save ? setInterval(() => enqueue(save), opts.stateEveryMs ?? 1000) : undefined;
  try {
    const r = await evExit;
    await evClosed;
    await queue;
    const msg = evErr
      .join('')
      .split('\n')
      .filter((l) => l !== RELIABLE_READY)
      .join('\n')
      .trim();
    if (msg) toolMessages.push(...msg.split('\n'));
    if (!opts.signal?.aborted && r.code !== 0) {
      throw new AuditError('CONNTRACK_TOOL_FAILED', `${evShown} exited with ${r.code ?? r.signal}: ${msg}`);
    }
  } finally {
    if (resyncTimer) clearTimeout(resyncTimer);
    await resyncing;
    clearInterval(tick);
    if (saver) clearInterval(saver);
    opts.signal?.removeEventListener('abort', stop);
    await queue;
    // What is still open was open when the collector stopped: that moment is its end.
    await c.end(Date.now());
    await save?.();
    if (saved) await new Promise<void>((resolve) => saved.end(resolve));
  }
  return { ...c.summary, toolMessages, resumed: c.flows.resumedCount, resumeGone };
}
