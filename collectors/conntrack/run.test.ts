// collectConntrackLive against a stand-in conntrack that records how it was run.
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InputIssue } from '../../lib/errors.js';
import { ArraySink } from '../sink.js';
import { RELIABLE_READY } from './reliable.js';
import { collectConntrackLive, DEFAULT_EVENT_BUFFER_BYTES } from './run.js';
import { readConntrackState } from './state.js';

describe('collectConntrackLive', () => {
  it('by default listens with the reliable listener, through python3, with the same large buffer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-run-'));
    const fake = join(dir, 'python3');
    const log = join(dir, 'args');
    // Records the arguments after the program text, then waits until it is stopped.
    writeFileSync(
      fake,
      `#!/bin/sh\nshift 2\necho "$*" >> '${log}'\necho '${RELIABLE_READY}' >&2\nexec sleep 30\n`,
    );
    chmodSync(fake, 0o755);
    const noDump = join(dir, 'conntrack');
    writeFileSync(noDump, '#!/bin/sh\nexit 0\n');
    chmodSync(noDump, 0o755);
    const ac = new AbortController();
    await collectConntrackLive(new ArraySink(), {
      pythonPath: fake,
      conntrackPath: noDump,
      signal: ac.signal,
      onReady: () => ac.abort(),
    });
    expect(readFileSync(log, 'utf8').trim()).toBe(`-b ${DEFAULT_EVENT_BUFFER_BYTES} -e NEW,UPDATE,DESTROY`);
  });

  it('a reliable listener that cannot run, or never subscribes, is CONNTRACK_TOOL_FAILED with its words; no table is listed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-run-'));
    const calls = join(dir, 'calls');
    const noDump = join(dir, 'conntrack');
    writeFileSync(noDump, `#!/bin/sh\necho "$*" >> '${calls}'\n`);
    chmodSync(noDump, 0o755);
    const failing = join(dir, 'python3-failing');
    writeFileSync(
      failing,
      '#!/bin/sh\nsleep 0.3\necho "cannot open a conntrack netlink socket: Operation not permitted" >&2\nexit 1\n',
    );
    chmodSync(failing, 0o755);
    await expect(
      collectConntrackLive(new ArraySink(), { pythonPath: failing, conntrackPath: noDump }),
    ).rejects.toMatchObject({
      code: 'CONNTRACK_TOOL_FAILED',
      message: expect.stringMatching(
        /exited with 1: cannot open a conntrack netlink socket: Operation not permitted/,
      ),
    });
    const silent = join(dir, 'python3-silent');
    writeFileSync(silent, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(silent, 0o755);
    await expect(
      collectConntrackLive(new ArraySink(), {
        pythonPath: silent,
        conntrackPath: noDump,
        startTimeoutMs: 300,
      }),
    ).rejects.toMatchObject({
      code: 'CONNTRACK_TOOL_FAILED',
      message: expect.stringMatching(/did not subscribe to conntrack events within 0.3 s/),
    });
    expect(existsSync(calls)).toBe(false);
  });

  it('asks conntrack -E for a large netlink buffer (the lab lost events to ENOBUFS with the default)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-run-'));
    const fake = join(dir, 'conntrack');
    const log = join(dir, 'args');
    // -E waits until it is stopped; -L lists nothing.
    writeFileSync(fake, `#!/bin/sh\necho "$*" >> '${log}'\ncase "$1" in -E) exec sleep 30;; esac\n`);
    chmodSync(fake, 0o755);
    const ac = new AbortController();
    const sink = new ArraySink();
    const records = sink.records;
    const done = collectConntrackLive(sink, {
      conntrackPath: fake,
      eventSource: 'conntrack',
      signal: ac.signal,
      onReady: () => ac.abort(),
    });
    await done;
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(
      `-E -o timestamp,extended,id -e NEW,UPDATE,DESTROY -b ${DEFAULT_EVENT_BUFFER_BYTES}`,
    );
    expect(DEFAULT_EVENT_BUFFER_BYTES).toBe(8 * 1024 * 1024);
    expect(records).toEqual([]);
  });

  it('--state: an unreadable state file is a warning and the collector starts afresh; at its stop it writes the flows it reported in part', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-run-'));
    const fake = join(dir, 'conntrack');
    // -L lists one established flow; -E waits until it is stopped.
    const dump =
      'ipv4     2 tcp      6 431000 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=3 bytes=300 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=2 bytes=200 [ASSURED] mark=0 delta-time=7 use=1 id=11';
    writeFileSync(fake, `#!/bin/sh\ncase "$1" in -E) exec sleep 30;; -L) echo '${dump}';; esac\n`);
    chmodSync(fake, 0o755);
    const state = join(dir, 'conntrack.state');
    writeFileSync(state, '{"v": 1, "flows": [{"key": 3}]}');
    const issues: InputIssue[] = [];
    const sink = new ArraySink();
    const records = sink.records;
    const ac = new AbortController();
    const summary = await collectConntrackLive(sink, {
      conntrackPath: fake,
      eventSource: 'conntrack',
      stateFile: state,
      signal: ac.signal,
      onIssue: (i) => issues.push(i),
      onReady: () => ac.abort(),
    });
    expect(issues).toEqual([
      expect.objectContaining({ code: 'CONNTRACK_STATE_UNREADABLE', severity: 'warning', source: state }),
    ]);
    expect(issues[0]!.message).toMatch(/flows\[0\] is not a flow/);
    expect(records.map((r) => [r.reason, r.seq])).toEqual([['conntrack-dump', 0]]);
    expect(summary).toMatchObject({ resumed: 0, resumeGone: 0 });
    // The dump record was written, so the flow is resumable: the next run goes on at seq 1.
    const saved = readConntrackState(state);
    expect(saved.problem).toBeUndefined();
    expect(saved.flows).toEqual([
      expect.objectContaining({ seq: 1, emitted: { pf: 3, pr: 2, bf: 300, br: 200 }, continued: true }),
    ]);
    expect(saved.flows[0]!.key).toMatch(/^11\|6\|10\.0\.0\.1>10\.0\.0\.2\|40000>80/);
  });

  it('when conntrack -E reports lost events (ENOBUFS), a table dump ends the flows the kernel no longer holds and reports those it missed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-run-'));
    const fake = join(dir, 'conntrack');
    const calls = join(dir, 'calls');
    // -E: the NEW of flow A, then the warning conntrack prints when the kernel dropped events (A's
    // DESTROY among them). The first -L (at the start) lists nothing; the second (the catch-up)
    // lists flow B, whose NEW was lost, and not A.
    const flowB =
      'ipv4     2 udp      17 29 src=10.0.0.5 dst=10.0.0.6 sport=53000 dport=53 packets=1 bytes=60 src=10.0.0.6 dst=10.0.0.5 sport=53 dport=53000 packets=1 bytes=90 mark=0 use=1 id=22';
    writeFileSync(
      fake,
      `#!/bin/sh
case "$1" in
  -E)
    printf '[%s]\t    [NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 id=11\n' "$(date +%s.%06N)"
    sleep 0.3
    echo 'WARNING: We have hit ENOBUFS! We are losing events.' >&2
    exec sleep 30;;
  -L)
    echo x >> '${calls}'
    if [ "$(wc -l < '${calls}')" -ge 2 ]; then echo '${flowB}'; fi;;
esac
`,
    );
    chmodSync(fake, 0o755);
    const sink = new ArraySink();
    const records = sink.records;
    const ac = new AbortController();
    const done = collectConntrackLive(sink, {
      conntrackPath: fake,
      eventSource: 'conntrack',
      signal: ac.signal,
    });
    const until = Date.now() + 10_000;
    while (records.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const summary = await done;
    expect(records.map((r) => [r.reason, r.src.port, r.seq])).toEqual([
      ['conntrack-dump', 53000, 0],
      ['conntrack-gone', 40000, 0],
    ]);
    expect(records[1]).toMatchObject({ state: 'attempted', packets: { fwd: 0, rev: 0 } });
    expect(summary).toMatchObject({ eventLosses: 1, resyncs: 1, gone: 1 });
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(2);
  });
});
