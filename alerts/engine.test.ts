import { describe, expect, it } from 'vitest';
import { AlertEngine, type AlertFlow, DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './engine.js';

const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 23, 7);

function flow(p: Partial<AlertFlow> = {}): AlertFlow {
  return {
    start: T0,
    end: T0 + 10,
    proto: 'TCP',
    port: 8080,
    srcWorkload: 'dev/debug-shell',
    dstWorkload: 'shop/cart',
    srcName: '10-244-2-40.dev.pod.cluster.local',
    dstName: '10-244-1-11.shop.pod.cluster.local',
    packets: 10,
    bytes: 1000,
    classification: 'denied-but-observed',
    policies: ['shop/default-deny-ingress'],
    ...p,
  };
}

const opts = (o: Partial<EngineOptions> = {}): EngineOptions => ({ ...DEFAULT_ENGINE_OPTIONS, ...o });

describe('AlertEngine: violations', () => {
  it('a later slice of a long flow keeps the alert firing and adds its bytes, not a flow', () => {
    const e = new AlertEngine(opts());
    e.observe(flow());
    expect(e.observe(flow({ start: T0 + 60_000, end: T0 + 120_000, flows: 0 }))).toEqual([]);
    expect(e.firing[0]).toMatchObject({ flows: 1, packets: 20, bytes: 2000, lastSeen: T0 + 120_000 });
  });

  it('the first flow of a key fires; later ones update without notifying until the repeat interval', () => {
    const e = new AlertEngine(opts());
    const first = e.observe(flow());
    expect(first.map((x) => x.type)).toEqual(['firing']);
    expect(first[0]!.alert).toMatchObject({
      kind: 'violation',
      src: 'dev/debug-shell',
      dst: 'shop/cart',
      port: 8080,
    });
    // A flow every 30 minutes keeps it firing, quietly, until 4 h after the first notification.
    for (let t = T0 + H / 2; t < T0 + 4 * H; t += H / 2)
      expect(e.observe(flow({ start: t, end: t + 5 }))).toEqual([]);
    expect(e.firing[0]).toMatchObject({ flows: 8, bytes: 8000, lastSeen: T0 + 3.5 * H + 5 });
    const repeat = e.observe(flow({ start: T0 + 4 * H, end: T0 + 4 * H }));
    expect(repeat.map((x) => [x.type, x.seq])).toEqual([['repeat', 1]]);
    expect(repeat[0]!.alert.flows).toBe(9);
  });

  it('another port, protocol or destination is another alert', () => {
    const e = new AlertEngine(opts());
    expect(e.observe(flow()).length).toBe(1);
    expect(e.observe(flow({ port: 9000 })).length).toBe(1);
    expect(e.observe(flow({ proto: 'UDP' })).length).toBe(1);
    expect(e.observe(flow({ dstWorkload: 'shop/payments' })).length).toBe(1);
    expect(e.firing).toHaveLength(4);
  });

  it('resolves after the quiet period, not before; a flow after it fires a new alert', () => {
    const e = new AlertEngine(opts());
    e.observe(flow());
    expect(e.tick(T0 + 10 + H - 1)).toEqual([]);
    const resolved = e.tick(T0 + 10 + H);
    expect(resolved.map((x) => [x.type, x.at])).toEqual([['resolved', T0 + 10 + H]]);
    expect(e.firing).toHaveLength(0);
    expect(e.observe(flow({ start: T0 + 3 * H })).map((x) => x.type)).toEqual(['firing']);
  });

  it('a flow after a quiet period resolves the old alert and fires a new one, even without a tick', () => {
    const e = new AlertEngine(opts());
    e.observe(flow());
    expect(e.observe(flow({ start: T0 + 2 * H, end: T0 + 2 * H })).map((x) => x.type)).toEqual([
      'resolved',
      'firing',
    ]);
  });

  it('allowed and ambiguous flows never alert; denied attempts only when enabled', () => {
    const e = new AlertEngine(opts({ scan: { ...DEFAULT_ENGINE_OPTIONS.scan, enabled: false } }));
    expect(e.observe(flow({ classification: 'allowed' }))).toEqual([]);
    expect(e.observe(flow({ classification: 'ambiguous' }))).toEqual([]);
    expect(e.observe(flow({ classification: 'denied-attempt' }))).toEqual([]);
    const on = new AlertEngine(opts({ deniedAttempts: true }));
    expect(on.observe(flow({ classification: 'denied-attempt' }))[0]!.alert.kind).toBe('denied-attempt');
  });

  it('restored state continues: no new firing for a key already firing', () => {
    const a = new AlertEngine(opts());
    a.observe(flow());
    const b = new AlertEngine(opts(), a.firing);
    expect(b.observe(flow({ start: T0 + 60_000 }))).toEqual([]);
    expect(b.firing[0]!.flows).toBe(2);
  });
});

describe('AlertEngine: scans', () => {
  const scanOpts = opts({ scan: { enabled: true, windowMs: 5 * 60_000, targets: 5 } });

  it('one source denied on 5 distinct destination ports within the window is a scan', () => {
    const e = new AlertEngine(scanOpts);
    const types: string[] = [];
    for (let i = 0; i < 5; i++)
      for (const ev of e.observe(
        flow({ classification: 'denied-attempt', port: 1000 + i, start: T0 + i * 1000 }),
      ))
        types.push(`${ev.alert.kind}:${ev.type}`);
    expect(types).toEqual(['scan:firing']);
    const scan = e.firing.find((a) => a.kind === 'scan')!;
    expect(scan).toMatchObject({ src: 'dev/debug-shell', targets: 5 });
  });

  it('the same targets spread wider than the window are not a scan', () => {
    const e = new AlertEngine(scanOpts);
    for (let i = 0; i < 10; i++)
      expect(
        e.observe(flow({ classification: 'denied-attempt', port: 1000 + i, start: T0 + i * 6 * 60_000 })),
      ).toEqual([]);
  });

  it('repeated attempts at one target are not a scan', () => {
    const e = new AlertEngine(scanOpts);
    for (let i = 0; i < 20; i++)
      expect(e.observe(flow({ classification: 'denied-attempt', start: T0 + i }))).toEqual([]);
  });
});
