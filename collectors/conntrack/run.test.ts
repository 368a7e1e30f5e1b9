// collectConntrackLive against a stand-in conntrack that records how it was run.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../schema/flow-record.js';
import { collectConntrackLive, DEFAULT_EVENT_BUFFER_BYTES } from './run.js';

describe('collectConntrackLive', () => {
  it('asks conntrack -E for a large netlink buffer (the lab lost events to ENOBUFS with the default)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-run-'));
    const fake = join(dir, 'conntrack');
    const log = join(dir, 'args');
    // -E waits until it is stopped; -L lists nothing.
    writeFileSync(fake, `#!/bin/sh\necho "$*" >> '${log}'\ncase "$1" in -E) exec sleep 30;; esac\n`);
    chmodSync(fake, 0o755);
    const ac = new AbortController();
    const records: FlowRecord[] = [];
    const sink = {
      write: (r: FlowRecord) => void records.push(r),
      flush: async () => {},
      close: async () => {},
    };
    const done = collectConntrackLive(sink, {
      conntrackPath: fake,
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
});
