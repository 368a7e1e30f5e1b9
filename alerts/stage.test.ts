import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditStore, type StoredFlow } from '../processor/store/index.js';
import { parseAlertsConfig } from './config.js';
import { AlertStage } from './stage.js';

const dir = mkdtempSync(join(tmpdir(), 'netpol-stage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2026, 10, 23, 7);
function violation(port: number, start = T0): StoredFlow {
  return {
    start,
    end: start + 10,
    proto: 'TCP',
    port,
    srcWorkload: 'dev/debug-shell',
    dstWorkload: 'shop/cart',
    srcName: 'a',
    dstName: 'b',
    packets: 10,
    bytes: 1000,
    result: 'denied',
    classification: 'denied-but-observed',
    rules: [],
    evidence: {
      verdict: { ingress: { isolatedBy: ['shop/default-deny-ingress'] }, egress: { isolatedBy: [] } },
    },
  };
}

const CONFIG = `receivers:
  - {name: am, type: alertmanager, urls: ["http://a:9093", "http://b:9093"]}
  - {name: hook, type: webhook, url: "http://h/x", secret: s}
`;

describe('AlertStage', () => {
  it('writes one outbox row per receiver (and per Alertmanager URL) in the store, and persists firing alerts', () => {
    const store = AuditStore.open(join(dir, 'a.db'));
    const stage = new AlertStage(parseAlertsConfig(CONFIG, 'c'), store.outbox, () => T0);
    store.transaction(() => stage.counted([violation(8080), violation(8080, T0 + 1000), violation(9000)]));
    expect(stage.counts).toMatchObject({ firing: 2, notifications: 6 });
    expect(
      store.outbox
        .list()
        .map((r) => r.receiver)
        .sort(),
    ).toEqual(['am[0]', 'am[0]', 'am[1]', 'am[1]', 'hook', 'hook']);
    // A new stage on the same store continues the firing alerts: no second notification.
    const again = new AlertStage(parseAlertsConfig(CONFIG, 'c'), store.outbox, () => T0);
    store.transaction(() => again.counted([violation(8080, T0 + 2000)]));
    expect(again.counts.notifications).toBe(0);
    store.close();
  });

  it('refreshes the firing alerts for Alertmanager only, without storing them', () => {
    const store = AuditStore.open(join(dir, 'b.db'));
    const stage = new AlertStage(parseAlertsConfig(CONFIG, 'c'), store.outbox, () => T0);
    store.transaction(() => stage.counted([violation(8080)]));
    const rows = store.outbox.list().length;
    const r = stage.refreshes();
    expect(r.map((x) => x.receiver).sort()).toEqual(['am[0]', 'am[1]']);
    expect(r[0]!.payload).toMatchObject({ status: 'firing', key: { dst: 'shop/cart', port: 8080 } });
    expect(store.outbox.list().length).toBe(rows);
    store.close();
  });
});
